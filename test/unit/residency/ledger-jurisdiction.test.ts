/**
 * The ledger of an `eu` workspace is always asked for in jurisdiction `eu`: admission, settlement
 * and release, on the workspace Ledger and on its LedgerShards, with or without BYOK and key
 * limits. Namespace doubles stand in for production's (working) jurisdictions.
 */
import { env } from "cloudflare:workers";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { KeyContext } from "../../../src/auth/api-keys";
import { admissionTarget } from "../../../src/billing/admission-target";
import type { AdmitInput, AdmitResult, SettleInput, SettleOutcome, SettleResult } from "../../../src/billing/ledger-schema";
import { settle, type Outcome, type SettlementContext } from "../../../src/billing/settlement";
import type { WorkspaceRegion } from "../../../src/db/schema";
import { routeAudit } from "../../../src/residency/audit";
import { residentStores } from "../../../src/residency/bindings";
import { planRoute, type Candidate } from "../../../src/routing/plan";
import { admitInput } from "../billing/ledger-helpers";
import { anyKey, catalogOf, chatRequest, modelOf, provider } from "../routing/fixtures";
import { NamespaceDouble } from "./doubles";

type Call = { jurisdiction: string | null; object: string; method: "admit" | "settle" | "settleBatch" | "release" };

/** A fake Ledger or LedgerShard stub that records each RPC with the jurisdiction it was reached in. */
function fakeStub(calls: Call[], jurisdiction: string | null, object: string) {
  return {
    admit: async (_input: AdmitInput): Promise<AdmitResult> => {
      calls.push({ jurisdiction, object, method: "admit" });
      return { ok: true, holdId: "hold-1", reservedMicros: 10, maxTokens: 100, capped: false, rate: null, headroom: { freeMicros: 1_000_000, ratesTight: false } };
    },
    settle: async (_input: SettleInput): Promise<SettleResult> => {
      calls.push({ jurisdiction, object, method: "settle" });
      return { settled: true, chargedMicros: 1, balanceMicros: 0 };
    },
    settleBatch: async (inputs: SettleInput[]): Promise<SettleOutcome[]> => {
      calls.push({ jurisdiction, object, method: "settleBatch" });
      return inputs.map(() => ({ ok: true, result: { settled: true, chargedMicros: 1, balanceMicros: 0 } }));
    },
    release: async (_holdId: string): Promise<boolean> => {
      calls.push({ jurisdiction, object, method: "release" });
      return true;
    },
  };
}

/** The app's environment with doubles for the admission namespaces. */
function doubledEnv(calls: Call[]) {
  const ledger = new NamespaceDouble((j, name) => fakeStub(calls, j, name));
  const ledgerShard = new NamespaceDouble((j, name) => fakeStub(calls, j, name));
  // Casts: the doubles implement what admission uses (getByName, jurisdiction), not all of a namespace.
  return { ...env, LEDGER: ledger as unknown as Env["LEDGER"], LEDGER_SHARD: ledgerShard as unknown as Env["LEDGER_SHARD"] };
}

const catalog = catalogOf(
  modelOf("acme/model", [
    { provider: provider("eu-host", { region: "eu" }) },
    { provider: provider("eu-byok", { region: "eu" }) },
  ]),
);

function candidates(byok: boolean): Candidate[] {
  return planRoute(catalog, ["acme/model"], chatRequest(), anyKey, { region: "eu", byok: new Map(byok ? [["eu-byok", "own-key"]] : []) }).candidates;
}

function auth(workspaceId: string, region: WorkspaceRegion, shards: number, limit: boolean): KeyContext {
  return {
    workspace: { id: workspaceId, name: workspaceId, defaultModel: null, rpm: null, tpm: null, concurrency: null, ledgerShards: shards, providerPreferences: null, region, allowNonEuIngress: false, createdAt: 0 },
    key: {
      id: "key-1",
      workspaceId,
      name: "k",
      hash: "h",
      label: "l",
      kind: "inference",
      disabled: false,
      expiresAt: null,
      limitMicros: limit ? 1_000_000 : null,
      limitReset: null,
      includeByokInLimit: false,
      rpm: null,
      tpm: null,
      concurrency: null,
      createdAt: 0,
    },
  };
}

/** Admit, settle and release one request of `who` as the chat route does; the calls made. */
async function run(region: WorkspaceRegion, who: KeyContext, byok: boolean, mayWait = false): Promise<Call[]> {
  const calls: Call[] = [];
  const testEnv = doubledEnv(calls);
  const stores = residentStores(testEnv, region);
  if (!stores.ok) throw new Error(stores.problem);
  const planned = candidates(byok);
  const target = admissionTarget(stores.value, who, planned);
  const admitted = await target.admit(admitInput());
  if (!admitted.ok) throw new Error("refused");
  const candidate = planned[0]!;
  const ctx: SettlementContext = {
    auth: who,
    holdId: admitted.holdId,
    target,
    byokTerms: { feeBps: 500, freeMonthlyMicros: 0 },
    db: stores.value.db,
    route: routeAudit({ candidates: planned, excluded: [], unknownModels: [] }, region, region),
    mayWait,
  };
  const outcome: Outcome = {
    generationId: "gen-1",
    requestId: "req-1",
    candidate,
    usage: { promptTokens: 5, completionTokens: 1, cachedTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0 },
    finishReason: "stop",
    nativeFinishReason: "stop",
    streamed: false,
    cancelled: false,
    attempts: 1,
    startedAt: 0,
    firstTokenAt: null,
    endedAt: 1,
  };
  const settling = settle(ctx, outcome);
  await settling.charge;
  await settling.done;
  await target.release(admitted.holdId);
  return calls;
}

describe("an EU workspace's ledger is asked for in jurisdiction eu", () => {
  it("unsharded: admission, settlement and release all reach the EU Ledger named by the workspace", async () => {
    const calls = await run("eu", auth("acme", "eu", 1, false), false);
    expect(calls).toEqual([
      { jurisdiction: "eu", object: "acme", method: "admit" },
      { jurisdiction: "eu", object: "acme", method: "settle" },
      { jurisdiction: "eu", object: "acme", method: "release" },
    ]);
  });

  it("a settlement that waits for its window is sent, batched, to the same EU object", async () => {
    expect(await run("eu", auth("acme", "eu", 1, false), false, true)).toEqual([
      { jurisdiction: "eu", object: "acme", method: "admit" },
      { jurisdiction: "eu", object: "acme", method: "settleBatch" },
      { jurisdiction: "eu", object: "acme", method: "release" },
    ]);
    const sharded = await run("eu", auth("acme", "eu", 4, false), false, true);
    expect(sharded.map((c) => c.method)).toEqual(["admit", "settleBatch", "release"]);
    expect(new Set(sharded.map((c) => c.object)).size).toBe(1);
    expect(sharded.every((c) => c.jurisdiction === "eu")).toBe(true);
  });

  it("sharded: the key's EU LedgerShard admits, settles and releases", async () => {
    const calls = await run("eu", auth("acme", "eu", 4, false), false);
    expect(new Set(calls.map((c) => c.object)).size).toBe(1);
    expect(calls[0]!.object).toMatch(/^acme#shard-\d$/);
    expect(calls.every((c) => c.jurisdiction === "eu")).toBe(true);
  });

  it("sharded, but with a key limit or a BYOK candidate: the EU Ledger itself", async () => {
    for (const [limit, byok] of [
      [true, false],
      [false, true],
    ] as const) {
      const calls = await run("eu", auth("acme", "eu", 4, limit), byok);
      expect(calls.map((c) => [c.jurisdiction, c.object])).toEqual([
        ["eu", "acme"],
        ["eu", "acme"],
        ["eu", "acme"],
      ]);
    }
  });

  it("for any workspace, shard count, key limit and BYOK mix (property); a global workspace's never", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.stringMatching(/^[a-zA-Z0-9_-]{1,64}$/),
        fc.integer({ min: 1, max: 64 }),
        fc.boolean(),
        fc.boolean(),
        fc.constantFrom<WorkspaceRegion>("eu", "global"),
        async (id, shards, limit, byok, region) => {
          const calls = await run(region, auth(id, region, shards, limit), byok);
          expect(calls).toHaveLength(3);
          for (const call of calls) expect(call.jurisdiction).toBe(region === "eu" ? "eu" : null);
        },
      ),
      { numRuns: 200 },
    );
  });
});
