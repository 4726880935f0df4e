/**
 * 200 requests at once against one Ledger: whichever limit binds (credits, a key's credit limit,
 * requests per minute, concurrency), exactly as many are admitted as it allows, and the money adds
 * up to the µ$.
 */
import { describe, expect, it } from "vitest";
import type { AdmitResult, SettleResult } from "../../../src/billing/ledger-schema";
import { T0, admitInput, expectBalanced, freshLedger, keyConfig, settleInput, type LedgerStub } from "./ledger-helpers";

const REQUESTS = 200;
const AFFORDED = 50;
/** Each request reserves 1,000 µ$ of prompt + 1,000 tokens at 1 µ$ and is charged exactly that. */
const COST = 2_000;

interface Outcome {
  admitted: AdmitResult;
  settled: SettleResult | null;
}

/** Fire every admission at once; each admitted request settles as soon as it is admitted. */
function admitAndSettleAll(stub: LedgerStub, overrides: Parameters<typeof admitInput>[0] = {}): Promise<Outcome[]> {
  return Promise.all(
    Array.from({ length: REQUESTS }, async (_, i): Promise<Outcome> => {
      const admitted = await stub.admit(admitInput({ requestId: `req-${i}`, ...overrides }));
      if (!admitted.ok) return { admitted, settled: null };
      return { admitted, settled: await stub.settle(settleInput(admitted.holdId, COST)) };
    }),
  );
}

/** Exactly AFFORDED admitted and charged; the others refused for `reason`; the balance never negative. */
async function expectExactlyAfforded(stub: LedgerStub, outcomes: Outcome[], start: number, reason: string): Promise<void> {
  const admitted = outcomes.filter((o) => o.admitted.ok);
  expect(admitted).toHaveLength(AFFORDED);
  expect(new Set(outcomes.filter((o) => !o.admitted.ok).map((o) => (o.admitted.ok ? "ok" : o.admitted.reason)))).toEqual(new Set([reason]));
  for (const { settled } of admitted) {
    expect(settled).toMatchObject({ settled: true, chargedMicros: COST });
    expect(settled?.balanceMicros).toBeGreaterThanOrEqual(0);
  }
  const charged = admitted.reduce((sum, o) => sum + (o.settled?.chargedMicros ?? 0), 0);
  expect(await expectBalanced(stub)).toBe(start - charged);
  const charges = (await stub.journal(1000)).filter((e) => e.kind === "charge");
  expect(charges).toHaveLength(AFFORDED);
  expect((await stub.balance()).heldMicros).toBe(0);
}

describe("200 concurrent requests", () => {
  it("admits exactly the 50 the balance affords and never overdraws", async () => {
    const stub = freshLedger();
    const start = AFFORDED * COST;
    await stub.topUp(start, 0);
    const outcomes = await admitAndSettleAll(stub);
    await expectExactlyAfforded(stub, outcomes, start, "insufficient_credits");
    expect((await stub.balance()).balanceMicros).toBe(0);
  });

  it("admits exactly the 50 a key's credit limit affords", async () => {
    const stub = freshLedger();
    const start = 10_000_000;
    await stub.topUp(start, 0);
    const key = keyConfig({ limitMicros: AFFORDED * COST, limitReset: "monthly" });
    const outcomes = await admitAndSettleAll(stub, { key });
    await expectExactlyAfforded(stub, outcomes, start, "key_limit");
    expect(await stub.keyUsage(key.id, T0)).toMatchObject({ usageMonthlyMicros: AFFORDED * COST, limitRemainingMicros: 0 });
  });

  it.each(["key", "workspace"] as const)("admits exactly 50 under a %s limit of 50 requests per minute", async (scope) => {
    const stub = freshLedger();
    const start = 10_000_000;
    await stub.topUp(start, 0);
    const rpm = { rpm: AFFORDED, tpm: null, concurrency: null };
    const overrides = scope === "key" ? { key: keyConfig({ limits: rpm }) } : { workspaceLimits: rpm };
    const outcomes = await admitAndSettleAll(stub, { ...overrides, now: T0 + 30_000 });
    await expectExactlyAfforded(stub, outcomes, start, "rate_limited");
    for (const { admitted } of outcomes) if (!admitted.ok) expect(admitted).toMatchObject({ scope, limit: "rpm", remaining: 0 });
  });

  it.each(["key", "workspace"] as const)("holds at most 50 open requests under a %s concurrency of 50", async (scope) => {
    const stub = freshLedger();
    const start = 10_000_000;
    await stub.topUp(start, 0);
    const concurrency = { rpm: null, tpm: null, concurrency: AFFORDED };
    const overrides = scope === "key" ? { key: keyConfig({ limits: concurrency }) } : { workspaceLimits: concurrency };
    const admissions = await Promise.all(Array.from({ length: REQUESTS }, (_, i) => stub.admit(admitInput({ requestId: `req-${i}`, ...overrides }))));
    const open = admissions.filter((a) => a.ok);
    expect(open).toHaveLength(AFFORDED);
    for (const a of admissions) if (!a.ok) expect(a).toMatchObject({ reason: "rate_limited", scope, limit: "concurrency" });
    expect((await stub.balance()).heldMicros).toBe(AFFORDED * COST);

    const settled = await Promise.all(open.map((a) => (a.ok ? stub.settle(settleInput(a.holdId, COST)) : null)));
    expect(settled.every((s) => s?.settled === true)).toBe(true);
    expect(await expectBalanced(stub)).toBe(start - AFFORDED * COST);
    expect(await stub.admit(admitInput({ ...overrides }))).toMatchObject({ ok: true });
  });
});
