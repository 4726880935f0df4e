/**
 * Credit leases: LedgerShard objects of one workspace admit against credit leased from its Ledger.
 * Concurrent spending across two and four shards never overdraws (Σ leases ≤ balance whenever it
 * is looked at, the journal explains every µ$); a dry lease refills from the ledger; a dry ledger
 * makes the shard refuse exactly as the ledger would; returned leases are spendable again; and a
 * property over random interleavings keeps the books of shards and ledger in step.
 */
import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import type { Ledger } from "../../../src/billing/ledger";
import type { AdmitInput, AdmitResult } from "../../../src/billing/ledger-schema";
import type { LedgerShard } from "../../../src/billing/ledger-shard";
import { IDLE_RETURN_MS, KEY_STATUS_MAX_AGE_MS, shardForKey, shardName, splitLimits } from "../../../src/billing/ledger-shard-policy";
import { T0, admitInput, expectBalanced, keyConfig, settleInput, type LedgerStub } from "./ledger-helpers";

type ShardStub = DurableObjectStub<LedgerShard>;

interface Workspace {
  id: string;
  ledger: LedgerStub;
  shards: ShardStub[];
}

const opened: DurableObjectStub<Ledger | LedgerShard>[] = [];

afterEach(async () => {
  for (const stub of opened.splice(0)) await runInDurableObject(stub, (_, state) => state.storage.deleteAlarm());
});

/** A workspace nobody else uses, with `count` shards and `start` µ$ of credit. */
async function workspace(count: number, start: number): Promise<Workspace> {
  const id = crypto.randomUUID();
  const ledger = env.LEDGER.getByName(id);
  const shards = Array.from({ length: count }, (_, i) => env.LEDGER_SHARD.getByName(shardName(id, i)));
  opened.push(ledger, ...shards);
  if (start > 0) await ledger.topUp(start, 0);
  return { id, ledger, shards };
}

function shardInput(ws: Workspace, index: number, overrides: Partial<AdmitInput> = {}) {
  return { ...admitInput(overrides), shard: { workspaceId: ws.id, index, count: ws.shards.length } };
}

/** Balance, live holds and Σ leases read in one synchronous step inside the ledger. */
function ledgerSnapshot(ws: Workspace, now = T0): Promise<{ balance: number; held: number; leased: number }> {
  return runInDurableObject(ws.ledger, (instance: Ledger) => {
    const view = instance.balance(now);
    const leased = instance.leases(now).reduce((sum, lease) => sum + lease.leasedMicros, 0);
    return { balance: view.balanceMicros, held: view.heldMicros, leased };
  });
}

/** Σ leases + holds ≤ balance, and each shard's books plus what it has not reported equal its lease. */
async function expectInvariants(ws: Workspace, now = T0): Promise<void> {
  const snap = await ledgerSnapshot(ws, now);
  expect(snap.leased + snap.held).toBeLessThanOrEqual(snap.balance);
  const leases = new Map((await ws.ledger.leases(now)).map((l) => [l.shardId, l.leasedMicros]));
  for (const [i, shard] of ws.shards.entries()) {
    const books = await shard.lease(now);
    expect(books.leaseMicros + books.unreportedChargesMicros + books.unreportedReturnsMicros).toBe(leases.get(shardName(ws.id, i)) ?? 0);
    expect(books.freeMicros).toBeGreaterThanOrEqual(0);
  }
  await expectBalanced(ws.ledger);
}

/** Give every shard's unused credit back and report everything. */
async function drain(ws: Workspace, now = T0): Promise<void> {
  for (const shard of ws.shards) await shard.returnUnused(now);
}

/** Each request reserves 1,000 µ$ of prompt + 1,000 tokens at 1 µ$ and is charged exactly that. */
const COST = 2_000;

describe("concurrent spending across shards", () => {
  it.each([2, 4])("never overdraws with %i shards, and the journal explains every µ$", async (count) => {
    const afforded = 60;
    const start = afforded * COST;
    const ws = await workspace(count, start);
    const observed: Promise<void>[] = [];
    const outcomes = await Promise.all(
      Array.from({ length: 240 }, async (_, i) => {
        const shard = ws.shards[i % count]!;
        const admitted = await shard.admit(shardInput(ws, i % count, { requestId: `req-${i}`, key: keyConfig({ id: `key-${i % 7}` }) }));
        if (i % 10 === 0) observed.push(ledgerSnapshot(ws).then((s) => expect(s.leased + s.held).toBeLessThanOrEqual(s.balance)));
        if (!admitted.ok) return { admitted, charged: 0 };
        const settled = await shard.settle(settleInput(admitted.holdId, COST));
        return { admitted, charged: settled.chargedMicros };
      }),
    );
    await Promise.all(observed);

    const admitted = outcomes.filter((o) => o.admitted.ok);
    expect(admitted.length).toBeLessThanOrEqual(afforded);
    expect(admitted.length).toBeGreaterThan(0);
    for (const o of outcomes) if (!o.admitted.ok) expect(o.admitted.reason).toBe("insufficient_credits");
    const charged = outcomes.reduce((sum, o) => sum + o.charged, 0);
    expect(charged).toBe(admitted.length * COST);
    await expectInvariants(ws);

    // Every charge reaches the journal once, named by its generation.
    await drain(ws);
    expect(await expectBalanced(ws.ledger)).toBe(start - charged);
    const charges = (await ws.ledger.journal(1000)).filter((e) => e.kind === "charge");
    expect(charges).toHaveLength(admitted.length);
    expect(new Set(charges.map((e) => e.reference))).toEqual(new Set(admitted.map((o) => `gen-${(o.admitted as { holdId: string }).holdId}`)));
    expect((await ws.ledger.leases(T0)).every((l) => l.leasedMicros === 0)).toBe(true);
    await expectInvariants(ws);

    // Whatever a shard's idle lease kept from the others is spendable once returned: in all,
    // exactly what the balance afforded is admitted.
    let more = 0;
    for (let i = 0; i < afforded; i++) {
      const result = await ws.shards[0]!.admit(shardInput(ws, 0, { requestId: `again-${i}` }));
      if (!result.ok) break;
      await ws.shards[0]!.settle(settleInput(result.holdId, COST));
      more++;
    }
    expect(admitted.length + more).toBe(afforded);
    await drain(ws);
    expect(await expectBalanced(ws.ledger)).toBe(0);
  });
});

describe("refills and refusals", () => {
  it("refills a dry lease from the ledger inside the admission", async () => {
    const ws = await workspace(1, 100_000);
    const [shard] = ws.shards as [ShardStub];
    const first = await shard.admit(shardInput(ws, 0, { requestId: "a" }));
    expect(first).toMatchObject({ ok: true, reservedMicros: COST });
    // No spend history yet: the first grant is exactly the shortfall.
    expect(await ws.ledger.leases(T0)).toMatchObject([{ leasedMicros: COST, availableMicros: 100_000 - COST }]);
    expect(await shard.lease(T0)).toMatchObject({ leaseMicros: COST, heldMicros: COST, freeMicros: 0 });

    const second = await shard.admit(shardInput(ws, 0, { requestId: "b" }));
    expect(second.ok).toBe(true);
    const [lease] = await ws.ledger.leases(T0);
    // The second refill also asked for LEASE_SECONDS of recent reservations.
    expect(lease?.leasedMicros).toBeGreaterThan(2 * COST);
    expect((await ws.ledger.balance(T0)).balanceMicros).toBe(100_000);
    await expectInvariants(ws);
  });

  it("refuses with insufficient_credits exactly as the ledger would once the ledger has nothing left", async () => {
    const ws = await workspace(2, 1_500);
    const plain = env.LEDGER.getByName(crypto.randomUUID());
    opened.push(plain);
    await plain.topUp(1_500, 0);
    const input = { requestId: "too-big" };
    const fromLedger = await plain.admit(admitInput(input));
    const fromShard = await ws.shards[0]!.admit(shardInput(ws, 0, input));
    expect(fromLedger).toEqual({ ok: false, reason: "insufficient_credits", requestedTokens: 1_000, affordableTokens: 500, balanceMicros: 1_500 });
    expect(fromShard).toEqual(fromLedger);
    // Without max_tokens both cap the answer to what is left.
    const capped = { requestId: "capped", requestedMaxTokens: null, floorTokens: 100 };
    const ledgerCap = await plain.admit(admitInput(capped));
    const shardCap = await ws.shards[0]!.admit(shardInput(ws, 0, capped));
    expect(ledgerCap).toMatchObject({ ok: true, maxTokens: 500, capped: true, reservedMicros: 1_500 });
    // The same decision; each issues a receipt naming itself (holds live in memory in both).
    const { receipt, ...ledgerDecision } = ledgerCap as Extract<AdmitResult, { ok: true }>;
    const { receipt: shardReceipt, ...shardDecision } = shardCap as Extract<AdmitResult, { ok: true }>;
    expect(receipt).toMatchObject({ issuer: "ledger", keyId: "key-1", byok: false });
    expect(shardReceipt).toMatchObject({ issuer: "shard", keyId: "key-1", byok: false });
    expect(shardDecision).toEqual(ledgerDecision);
    // The other shard finds nothing left anywhere.
    const other = await ws.shards[1]!.admit(shardInput(ws, 1, { requestId: "other" }));
    expect(other).toEqual({ ok: false, reason: "insufficient_credits", requestedTokens: 1_000, affordableTokens: 0, balanceMicros: 1_500 });
    await expectInvariants(ws);
  });

  it("keeps leased credit out of the ledger's own admissions until it is returned", async () => {
    const ws = await workspace(1, 2_000);
    const held = await ws.shards[0]!.admit(shardInput(ws, 0, { requestId: "leased" }));
    expect(held.ok).toBe(true);
    expect(await ws.ledger.admit(admitInput({ requestId: "direct" }))).toMatchObject({ ok: false, reason: "insufficient_credits" });

    await ws.shards[0]!.release("leased", T0);
    expect(await ws.shards[0]!.returnUnused(T0)).toBe(2_000);
    expect(await ws.ledger.leases(T0)).toMatchObject([{ leasedMicros: 0, availableMicros: 2_000 }]);
    expect(await ws.ledger.admit(admitInput({ requestId: "direct-2" }))).toMatchObject({ ok: true });
    await expectBalanced(ws.ledger);
  });

  it("asks the other shards to give idle credit back when one is refused", async () => {
    const ws = await workspace(2, 4_000);
    const [a, b] = ws.shards as [ShardStub, ShardStub];
    // A takes all the credit (its second refill asks for more than is left), then goes quiet.
    for (const id of ["a1", "a2"]) expect(await a.admit(shardInput(ws, 0, { requestId: id }))).toMatchObject({ ok: true });
    for (const id of ["a1", "a2"]) await a.release(id, T0);
    expect(await a.lease(T0)).toMatchObject({ leaseMicros: 4_000, freeMicros: 4_000 });

    // B is short: the ledger has nothing to grant, B refuses, and the ledger flags A.
    expect(await b.admit(shardInput(ws, 1, { requestId: "b1" }))).toMatchObject({ ok: false, reason: "insufficient_credits", affordableTokens: 0 });
    expect((await ws.ledger.leases(T0)).find((l) => l.shardId === shardName(ws.id, 0))?.reclaim).toBe(true);
    // A hears it on its next contact and gives back on its next alarm, though not idle.
    await a.flush(T0);
    await a.tick(T0 + 1);
    expect((await a.lease(T0 + 1)).leaseMicros).toBe(0);
    expect(await b.admit(shardInput(ws, 1, { requestId: "b2", now: T0 + 1 }))).toMatchObject({ ok: true });
    await expectInvariants(ws, T0 + 1);
  });

  it("gives the whole unused lease back after IDLE_RETURN_MS without admissions", async () => {
    const ws = await workspace(1, 50_000);
    const shard = ws.shards[0]!;
    const admitted = await shard.admit(shardInput(ws, 0, { requestId: "x" }));
    if (!admitted.ok) throw new Error("expected admission");
    await shard.tick(T0 + IDLE_RETURN_MS - 1);
    expect((await ws.ledger.leases(T0))[0]?.leasedMicros).toBe(COST);
    // Still holding: the hold's credit stays leased, nothing else was.
    await shard.tick(T0 + IDLE_RETURN_MS);
    expect((await ws.ledger.leases(T0))[0]?.leasedMicros).toBe(COST);
    await shard.settle(settleInput("x", 1_200, T0 + IDLE_RETURN_MS));
    await shard.tick(T0 + IDLE_RETURN_MS + 1);
    expect((await ws.ledger.leases(T0))[0]?.leasedMicros).toBe(0);
    expect(await expectBalanced(ws.ledger)).toBe(50_000 - 1_200);
  });
});

describe("reporting to the ledger", () => {
  it("journals a shard's charges once, even when a batch is sent twice", async () => {
    const ws = await workspace(1, 10_000);
    const shard = ws.shards[0]!;
    const admitted = await shard.admit(shardInput(ws, 0, { requestId: "r" }));
    if (!admitted.ok) throw new Error("expected admission");
    expect(await shard.settle(settleInput("r", 1_500))).toEqual({ settled: true, chargedMicros: 1_500, balanceMicros: 8_500 });
    expect(await shard.settle(settleInput("r", 1_500))).toMatchObject({ settled: false, chargedMicros: 0 });
    // The batch the shard will send, sent once more by hand first (as after a lost acknowledgement).
    // The outbox is the shard's journal: the entry's id is its charge's journal id (a fresh shard has no offset).
    const [queued] = await runInDurableObject(shard, (_, state) =>
      state.storage.sql.exec<{ id: number }>("SELECT id FROM journal WHERE kind = 'charge' AND reference = 'gen-r'").toArray(),
    );
    const entries = [{ id: queued!.id, kind: "charge" as const, keyId: "key-1", amountMicros: 1_500, byokUsageMicros: 0, reference: "gen-r", at: T0 }];
    const name = shardName(ws.id, 0);
    const once = await ws.ledger.settleLease(name, entries, T0);
    const twice = await ws.ledger.settleLease(name, entries, T0);
    expect(twice).toEqual(once);
    await shard.flush(T0);
    const charges = (await ws.ledger.journal()).filter((e) => e.kind === "charge");
    expect(charges).toEqual([expect.objectContaining({ amountMicros: -1_500, keyId: "key-1", reference: "gen-r", at: T0 })]);
    expect(await ws.ledger.keyUsage("key-1", T0)).toMatchObject({ usageMicros: 1_500 });
    await expectInvariants(ws);
  });

  it("admits keys with a credit limit at the ledger, and settles them there", async () => {
    const ws = await workspace(2, 10_000);
    const key = keyConfig({ id: "limited", limitMicros: 3_000 });
    const admitted = await ws.shards[1]!.admit(shardInput(ws, 1, { requestId: "lim", key }));
    expect(admitted).toMatchObject({ ok: true, holdId: "lim" });
    expect(await ws.ledger.balance(T0)).toMatchObject({ heldMicros: COST });
    expect(await ws.ledger.leases(T0)).toEqual([]);
    expect(await ws.shards[1]!.settle(settleInput("lim", 1_000))).toEqual({ settled: true, chargedMicros: 1_000, balanceMicros: 9_000 });
    expect(await ws.ledger.keyUsage("limited", T0)).toMatchObject({ limitRemainingMicros: 2_000 });
  });
});

describe("restarts", () => {
  it("charges a hold its shard lost with a restart once, from the shard's receipt, which the Ledger never honours", async () => {
    const ws = await workspace(1, 50_000);
    const shard = ws.shards[0]!;
    const admitted = await shard.admit(shardInput(ws, 0, { requestId: "lost" }));
    if (!admitted.ok || !admitted.receipt) throw new Error("expected an admission with a receipt");
    expect(admitted.receipt).toMatchObject({ issuer: "shard", keyId: "key-1" });
    const input = { ...settleInput("lost", 1_500), receipt: admitted.receipt };
    // Sent to the wrong object, the receipt charges nothing: the hold is on the shard's lease.
    expect(await ws.ledger.settle(input)).toMatchObject({ settled: false, chargedMicros: 0 });
    await evictDurableObject(shard);
    expect(await shard.settle(input)).toMatchObject({ settled: true, chargedMicros: 1_500 });
    expect(await shard.settle(input)).toMatchObject({ settled: false, chargedMicros: 0 });
    // Another restart: the charge is found in the journal after the receipt's mark.
    await evictDurableObject(shard);
    expect(await shard.settle(input)).toMatchObject({ settled: false, chargedMicros: 0 });
    await shard.returnUnused(T0);
    const charges = (await ws.ledger.journal()).filter((e) => e.kind === "charge");
    expect(charges).toEqual([expect.objectContaining({ amountMicros: -1_500, reference: "gen-lost" })]);
    await expectInvariants(ws);
  });

  it("delivers a charge journalled before a restart to the ledger, and only once", async () => {
    const ws = await workspace(1, 50_000);
    const shard = ws.shards[0]!;
    for (const id of ["a", "b"]) {
      const admitted = await shard.admit(shardInput(ws, 0, { requestId: id }));
      if (!admitted.ok) throw new Error("expected admission");
      expect(await shard.settle(settleInput(id, 1_500))).toMatchObject({ settled: true });
    }
    await evictDurableObject(shard);
    // The outbox is rebuilt from the journal.
    expect(await shard.lease(T0)).toMatchObject({ unreportedChargesMicros: 3_000, unreportedReturnsMicros: 0 });
    await shard.flush(T0);
    expect(await shard.lease(T0)).toMatchObject({ unreportedChargesMicros: 0 });
    // What the ledger acknowledged stays acknowledged across the next restart.
    await evictDurableObject(shard);
    expect(await shard.lease(T0)).toMatchObject({ unreportedChargesMicros: 0 });
    await shard.returnUnused(T0);
    const charges = (await ws.ledger.journal()).filter((e) => e.kind === "charge").map((e) => e.reference);
    expect(charges).toEqual(["gen-a", "gen-b"]);
    expect(await expectBalanced(ws.ledger)).toBe(50_000 - 3_000);
    await expectInvariants(ws);
  });
});

describe("key status and rate limits", () => {
  it(`refuses a key disabled at the ledger within ${KEY_STATUS_MAX_AGE_MS} ms`, async () => {
    const ws = await workspace(1, 100_000);
    const shard = ws.shards[0]!;
    expect(await shard.admit(shardInput(ws, 0, { requestId: "k1" }))).toMatchObject({ ok: true });
    await ws.ledger.setKey(keyConfig({ disabled: true }));
    // The shard's copy is fresh enough not to ask: the documented staleness window.
    expect(await shard.admit(shardInput(ws, 0, { requestId: "k2", now: T0 + KEY_STATUS_MAX_AGE_MS - 1 }))).toMatchObject({ ok: true });
    expect(await shard.admit(shardInput(ws, 0, { requestId: "k3", now: T0 + KEY_STATUS_MAX_AGE_MS }))).toEqual({ ok: false, reason: "key_disabled" });
  });

  it("splits workspace limits evenly among shards and routes a key to one shard", async () => {
    expect(splitLimits({ rpm: 100, tpm: null, concurrency: 3 }, 4)).toEqual({ rpm: 25, tpm: null, concurrency: 1 });
    expect(shardForKey("key-abc", 4)).toBe(shardForKey("key-abc", 4));
    const ws = await workspace(2, 1_000_000);
    const limits = { rpm: 4, tpm: null, concurrency: null };
    const results: AdmitResult[] = [];
    for (let i = 0; i < 4; i++) results.push(await ws.shards[0]!.admit(shardInput(ws, 0, { requestId: `w${i}`, workspaceLimits: limits, now: T0 + 30_000 })));
    expect(results.map((r) => r.ok)).toEqual([true, true, false, false]);
    expect(results[2]).toMatchObject({ reason: "rate_limited", scope: "workspace", limit: "rpm", limitValue: 2 });
  });
});

type Command =
  | { kind: "admit"; shard: number; maxTokens: number | null }
  | { kind: "settle"; target: number; percent: number }
  | { kind: "release"; target: number }
  | { kind: "return"; shard: number }
  | { kind: "flush"; shard: number }
  | { kind: "tick"; shard: number }
  | { kind: "topUp"; amount: number };

const SHARDS = 3;
const shardIndex = fc.integer({ min: 0, max: SHARDS - 1 });
const command: fc.Arbitrary<Command> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant("admit" as const), shard: shardIndex, maxTokens: fc.option(fc.integer({ min: 1, max: 3_000 }), { nil: null }) }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("settle" as const), target: fc.nat(), percent: fc.integer({ min: 0, max: 100 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("release" as const), target: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("return" as const), shard: shardIndex }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("flush" as const), shard: shardIndex }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("tick" as const), shard: shardIndex }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("topUp" as const), amount: fc.integer({ min: 1, max: 10_000 }) }) },
);

interface Run {
  ws: Workspace;
  /** Admitted holds not yet ended: id → shard and reservation. */
  live: Map<string, { shard: number; reserved: number }>;
  ids: string[];
  credited: number;
  charged: number;
}

async function run(state: Run, cmd: Command, n: number): Promise<void> {
  const { ws } = state;
  switch (cmd.kind) {
    case "admit": {
      const id = `h-${n}`;
      const result = await ws.shards[cmd.shard]!.admit(shardInput(ws, cmd.shard, { requestId: id, requestedMaxTokens: cmd.maxTokens }));
      if (result.ok) {
        state.live.set(id, { shard: cmd.shard, reserved: result.reservedMicros });
        state.ids.push(id);
      } else expect(result.reason).toBe("insufficient_credits");
      return;
    }
    case "settle":
    case "release": {
      if (state.ids.length === 0) return;
      const id = state.ids[cmd.target % state.ids.length]!;
      const hold = state.live.get(id);
      if (!hold) return;
      state.live.delete(id);
      if (cmd.kind === "release") {
        expect(await ws.shards[hold.shard]!.release(id, T0)).toBe(true);
        return;
      }
      const cost = Math.floor((hold.reserved * cmd.percent) / 100);
      const settled = await ws.shards[hold.shard]!.settle(settleInput(id, cost));
      expect(settled).toMatchObject({ settled: true, chargedMicros: cost });
      state.charged += cost;
      return;
    }
    case "return":
      await ws.shards[cmd.shard]!.returnUnused(T0);
      return;
    case "flush":
      await ws.shards[cmd.shard]!.flush(T0);
      return;
    case "tick":
      await ws.shards[cmd.shard]!.tick(T0);
      return;
    case "topUp":
      state.credited += cmd.amount;
      await ws.ledger.topUp(cmd.amount, 0);
      return;
  }
}

describe("lease invariants under random interleavings", () => {
  it("keeps Σ leases + holds ≤ balance, shard books equal to their leases, and balance = credits − charges", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 30_000 }),
        fc.array(fc.array(command, { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 12 }),
        async (start, batches) => {
          const ws = await workspace(SHARDS, start);
          const state: Run = { ws, live: new Map(), ids: [], credited: start, charged: 0 };
          let n = 0;
          for (const batch of batches) {
            // A batch runs concurrently: its commands interleave at every await.
            await Promise.all(batch.map((cmd) => run(state, cmd, n++)));
            await expectInvariants(ws);
          }
          for (const [id, hold] of state.live) await ws.shards[hold.shard]!.release(id, T0);
          await drain(ws);
          expect(await expectBalanced(ws.ledger)).toBe(state.credited - state.charged);
          expect(await ledgerSnapshot(ws)).toMatchObject({ leased: 0, held: 0 });
          await expectInvariants(ws);
        },
      ),
      { numRuns: 12 },
    );
    // Twelve random workspaces of five objects each: seconds on a quiet machine, more on a busy one.
  }, 30_000);
});
