/**
 * Settlements in windows (billing/settlement-window): a Ledger or LedgerShard settles a batch
 * exactly as it settles each request alone, each in its own transaction; an isolate's platform-
 * keyed settlements to one object within a window share one `settleBatch` call, and each request
 * still learns its own answer.
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it } from "vitest";
import type { AdmissionTarget } from "../../../src/billing/admission-target";
import { admissionTarget } from "../../../src/billing/admission-target";
import type { LedgerShard } from "../../../src/billing/ledger-shard";
import type { SettleInput, SettleOutcome } from "../../../src/billing/ledger-schema";
import { shardName } from "../../../src/billing/ledger-shard-policy";
import { settleInWindow, settlementWindows } from "../../../src/billing/settlement-window";
import type { KeyContext } from "../../../src/auth/api-keys";
import { T0, admitInput, expectBalanced, freshLedger, keyConfig, settleInput, thrown } from "./ledger-helpers";

const shards: DurableObjectStub<LedgerShard>[] = [];
afterEach(async () => {
  for (const stub of shards.splice(0)) await runInDurableObject(stub, (_, state) => state.storage.deleteAlarm());
});

describe("settleBatch on the ledger objects", () => {
  it("charges every hold of the batch exactly as settle would, answering in order", async () => {
    const ledger = freshLedger();
    await ledger.topUp(1_000_000, 0);
    for (const id of ["a", "b", "c"]) expect(await ledger.admit(admitInput({ requestId: id }))).toMatchObject({ ok: true });
    const outcomes = await ledger.settleBatch([settleInput("a", 100), settleInput("b", 200), settleInput("c", 300)]);
    expect(outcomes).toEqual([
      { ok: true, result: { settled: true, chargedMicros: 100, balanceMicros: 999_900 } },
      { ok: true, result: { settled: true, chargedMicros: 200, balanceMicros: 999_700 } },
      { ok: true, result: { settled: true, chargedMicros: 300, balanceMicros: 999_400 } },
    ]);
    expect(await ledger.balance()).toMatchObject({ balanceMicros: 999_400, heldMicros: 0 });
    // Settled again (a re-sent window): nothing is charged twice.
    expect(await ledger.settleBatch([settleInput("a", 100)])).toEqual([{ ok: true, result: { settled: false, chargedMicros: 0, balanceMicros: 999_400 } }]);
    await expectBalanced(ledger);
  });

  it("lets one bad settlement fail alone: the others of its batch are charged", async () => {
    const ledger = freshLedger();
    await ledger.topUp(1_000_000, 0);
    for (const id of ["a", "b"]) await ledger.admit(admitInput({ requestId: id }));
    const bad = { ...settleInput("a", 100), costMicros: -5 };
    const outcomes = await ledger.settleBatch([bad, settleInput("b", 200)]);
    expect(outcomes[0]).toMatchObject({ ok: false, error: expect.stringMatching(/costMicros|too small|>=0/i) });
    expect(outcomes[1]).toEqual({ ok: true, result: { settled: true, chargedMicros: 200, balanceMicros: 999_800 } });
    // The bad one's hold is untouched, and a good settlement of it still works.
    expect(await ledger.balance()).toMatchObject({ heldMicros: 2_000 });
    expect(await ledger.settle(settleInput("a", 100))).toMatchObject({ settled: true, chargedMicros: 100 });
    await expectBalanced(ledger);
  });

  it("refuses an empty or oversized batch as a whole", async () => {
    const ledger = freshLedger();
    expect(await thrown(ledger.settleBatch([]))).toBeInstanceOf(Error);
    expect(await thrown(ledger.settleBatch(Array.from({ length: 101 }, (_, i) => settleInput(`h${i}`, 1))))).toBeInstanceOf(Error);
  });

  it("settles a shard's holds in a batch, and forwards the ones it does not know to the ledger", async () => {
    const workspaceId = crypto.randomUUID();
    const ledger = env.LEDGER.getByName(workspaceId);
    await ledger.topUp(1_000_000, 0);
    const shard = env.LEDGER_SHARD.getByName(shardName(workspaceId, 0));
    shards.push(shard);
    const shardInfo = { workspaceId, index: 0, count: 1 };
    expect(await shard.admit({ ...admitInput({ requestId: "s1" }), shard: shardInfo })).toMatchObject({ ok: true });
    expect(await shard.admit({ ...admitInput({ requestId: "s2" }), shard: shardInfo })).toMatchObject({ ok: true });
    // A hold the ledger made itself (a request routed to it), settled through the shard.
    expect(await ledger.admit(admitInput({ requestId: "l1" }))).toMatchObject({ ok: true });
    const outcomes = await shard.settleBatch([settleInput("s1", 10), settleInput("l1", 30), settleInput("s2", 20)]);
    expect(outcomes.map((o) => (o.ok ? o.result.chargedMicros : o.error))).toEqual([10, 30, 20]);
    await shard.returnUnused(T0);
    expect(await ledger.balance()).toMatchObject({ balanceMicros: 1_000_000 - 60 });
    await expectBalanced(ledger);
  });
});

/** A target whose `settleBatch` calls are recorded, and answered by `answer`. */
function recordingTarget(objectKey: string, answer: (inputs: SettleInput[]) => Promise<SettleOutcome[]>): AdmissionTarget & { calls: string[][] } {
  const calls: string[][] = [];
  const unused = () => Promise.reject(new Error("not used here"));
  return {
    name: objectKey,
    objectKey,
    calls,
    admit: unused,
    settle: unused,
    release: unused,
    settleBatch: (inputs) => {
      calls.push(inputs.map((i) => i.holdId));
      return answer(inputs);
    },
  };
}

const charged = (inputs: SettleInput[]): Promise<SettleOutcome[]> => Promise.resolve(inputs.map((i) => ({ ok: true, result: { settled: true, chargedMicros: i.costMicros, balanceMicros: 0 } })));

describe("settlement windows in the isolate", () => {
  it("sends the settlements of one window to one object in one call, each request getting its own answer", async () => {
    const windows = settlementWindows(20);
    const a = recordingTarget("ledger:a", charged);
    const b = recordingTarget("ledger:b", charged);
    const results = await Promise.all([
      settleInWindow(a, settleInput("a1", 1), windows),
      settleInWindow(b, settleInput("b1", 2), windows),
      settleInWindow(a, settleInput("a2", 3), windows),
      settleInWindow(a, settleInput("a3", 4), windows),
    ]);
    expect(results.map((r) => r.chargedMicros)).toEqual([1, 2, 3, 4]);
    expect(a.calls).toEqual([["a1", "a2", "a3"]]);
    expect(b.calls).toEqual([["b1"]]);
  });

  it("sends a full window at once", async () => {
    const windows = settlementWindows(1_000, 2);
    const a = recordingTarget("ledger:full", charged);
    const started = Date.now();
    const first = settleInWindow(a, settleInput("x", 1), windows);
    // The settlement that fills the window sends it and has its answer long before the window ends.
    expect(await settleInWindow(a, settleInput("y", 1), windows)).toMatchObject({ chargedMicros: 1 });
    expect(Date.now() - started).toBeLessThan(500);
    expect(a.calls).toEqual([["x", "y"]]);
    // The first learns its answer on its own timer, from the same call.
    await first;
    expect(a.calls).toHaveLength(1);
  });

  it("rejects every settlement of a call that failed, and only the one the object refused", async () => {
    const windows = settlementWindows(10);
    const down = recordingTarget("ledger:down", () => Promise.reject(new Error("Durable Object reset")));
    const settled = await Promise.allSettled([settleInWindow(down, settleInput("d1", 1), windows), settleInWindow(down, settleInput("d2", 1), windows)]);
    expect(settled.map((s) => s.status)).toEqual(["rejected", "rejected"]);
    const picky = recordingTarget("ledger:picky", async (inputs) => inputs.map((i) => (i.holdId === "p2" ? { ok: false, error: "bad input" } : { ok: true, result: { settled: true, chargedMicros: 1, balanceMicros: 0 } })));
    const mixed = await Promise.allSettled([settleInWindow(picky, settleInput("p1", 1), windows), settleInWindow(picky, settleInput("p2", 1), windows)]);
    expect(mixed.map((s) => s.status)).toEqual(["fulfilled", "rejected"]);
    expect(String((mixed[1] as PromiseRejectedResult).reason)).toContain("bad input");
  });

  it("gets a stub of its own for each call, so the request that sends a window needs no other's stub", async () => {
    const auth = { workspace: { id: "ws-window", ledgerShards: 1 }, key: { id: "key-1", limitMicros: null } } as unknown as KeyContext;
    const target = admissionTarget({ ledger: env.LEDGER, ledgerShard: env.LEDGER_SHARD }, auth, []);
    const same = admissionTarget({ ledger: env.LEDGER, ledgerShard: env.LEDGER_SHARD }, auth, []);
    // Two requests' targets name the same object, so their settlements share a window.
    expect(target.objectKey).toBe(same.objectKey);
    const ws = env.LEDGER.getByName("ws-window");
    await ws.topUp(1_000_000, 0);
    for (const id of ["w1", "w2"]) await ws.admit(admitInput({ requestId: id, key: keyConfig() }));
    const windows = settlementWindows(10);
    const results = await Promise.all([settleInWindow(target, settleInput("w1", 5), windows), settleInWindow(same, settleInput("w2", 7), windows)]);
    expect(results.map((r) => r.chargedMicros)).toEqual([5, 7]);
    expect(await ws.balance()).toMatchObject({ balanceMicros: 1_000_000 - 12, heldMicros: 0 });
  });
});
