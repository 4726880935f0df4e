/**
 * The Ledger's BYOK settlement: the fee is computed inside the settlement transaction from the
 * request's platform-equivalent cost and what is left of the workspace's free allowance for the
 * UTC month, so concurrent settlements never share the same allowance.
 */
import { describe, expect, it } from "vitest";
import { T0, admitInput, expectBalanced, freshLedger, settleInput, type LedgerStub } from "./ledger-helpers";

const BPS = 500;

async function funded(micros: number): Promise<LedgerStub> {
  const stub = freshLedger();
  await stub.topUp(micros, 0);
  return stub;
}

async function byokHold(stub: LedgerStub, now = T0): Promise<string> {
  const admitted = await stub.admit(admitInput({ byok: true, now }));
  if (!admitted.ok) throw new Error(`expected admission, got ${JSON.stringify(admitted)}`);
  return admitted.holdId;
}

function byokSettle(holdId: string, usageMicros: number, freeMonthlyMicros: number, now = T0) {
  return { ...settleInput(holdId, 0, now), byokUsageMicros: usageMicros, byokFeeBps: BPS, byokFreeMonthlyMicros: freeMonthlyMicros };
}

describe("BYOK fee with a monthly free allowance", () => {
  it("charges nothing inside the allowance, then only on the part above it, then 5 % of everything", async () => {
    const stub = await funded(1_000_000);
    const charged: number[] = [];
    for (let i = 0; i < 3; i++) {
      const holdId = await byokHold(stub);
      charged.push((await stub.settle(byokSettle(holdId, 4_500, 6_000))).chargedMicros);
    }
    // 4,500 of 6,000 free; then 1,500 free and 3,000 × 5 % = 150; then 4,500 × 5 % = 225.
    expect(charged).toEqual([0, 150, 225]);
    expect(await stub.keyUsage("key-1", T0)).toMatchObject({ usageMicros: 375, byokUsageMicros: 13_500 });
    expect(await expectBalanced(stub)).toBe(1_000_000 - 375);
  });

  it("rounds the fee up to the µ$", async () => {
    const stub = await funded(1_000_000);
    expect((await stub.settle(byokSettle(await byokHold(stub), 451, 0))).chargedMicros).toBe(23);
  });

  it("starts a fresh allowance each UTC month", async () => {
    const stub = await funded(1_000_000);
    const lastOfJanuary = Date.UTC(2030, 0, 31, 23, 59, 59);
    const firstOfFebruary = Date.UTC(2030, 1, 1, 0, 0, 0);
    expect((await stub.settle(byokSettle(await byokHold(stub, lastOfJanuary), 6_000, 6_000, lastOfJanuary))).chargedMicros).toBe(0);
    expect((await stub.settle(byokSettle(await byokHold(stub, lastOfJanuary), 1_000, 6_000, lastOfJanuary))).chargedMicros).toBe(50);
    expect((await stub.settle(byokSettle(await byokHold(stub, firstOfFebruary), 1_000, 6_000, firstOfFebruary))).chargedMicros).toBe(0);
  });

  it("lets two concurrent settlements use the allowance only once", async () => {
    const stub = await funded(1_000_000);
    const [a, b] = [await byokHold(stub), await byokHold(stub)];
    // 5,000 free; two requests of 4,000 each: together 3,000 above the allowance → 150 in fees.
    const results = await Promise.all([stub.settle(byokSettle(a, 4_000, 5_000)), stub.settle(byokSettle(b, 4_000, 5_000))]);
    expect(results.map((r) => r.chargedMicros).sort((x, y) => x - y)).toEqual([0, 150]);
    expect(await expectBalanced(stub)).toBe(1_000_000 - 150);
  });

  it("shares the allowance among 50 concurrent settlements to the µ$", async () => {
    const stub = await funded(10_000_000);
    const holds = await Promise.all(Array.from({ length: 50 }, () => byokHold(stub)));
    // 50 × 1,000 = 50,000 of platform-equivalent spend, 20,000 free: 30,000 × 5 % = 1,500.
    const results = await Promise.all(holds.map((holdId) => stub.settle(byokSettle(holdId, 1_000, 20_000))));
    expect(results.reduce((sum, r) => sum + r.chargedMicros, 0)).toBe(1_500);
    expect(results.filter((r) => r.chargedMicros === 0)).toHaveLength(20);
    expect(await expectBalanced(stub)).toBe(10_000_000 - 1_500);
  });

  it("counts a fixed-fee BYOK settlement (no rate given) against the allowance too", async () => {
    const stub = await funded(1_000_000);
    const fixed = await stub.settle({ ...settleInput(await byokHold(stub), 0), byokFeeMicros: 90, byokUsageMicros: 5_000 });
    expect(fixed.chargedMicros).toBe(90);
    expect((await stub.settle(byokSettle(await byokHold(stub), 2_000, 6_000))).chargedMicros).toBe(50);
  });

  it("does not count a settlement of an unknown hold", async () => {
    const stub = await funded(1_000_000);
    const holdId = await byokHold(stub);
    await stub.settle(byokSettle(holdId, 4_000, 5_000));
    expect(await stub.settle(byokSettle(holdId, 4_000, 5_000))).toMatchObject({ settled: false, chargedMicros: 0 });
    expect((await stub.settle(byokSettle(await byokHold(stub), 1_000, 5_000))).chargedMicros).toBe(0);
  });

  it("settles a platform-keyed hold as BYOK when the request was served with the workspace's key", async () => {
    const stub = await funded(1_000_000);
    const admitted = await stub.admit(admitInput({ byok: false }));
    if (!admitted.ok) throw new Error("expected admission");
    const settled = await stub.settle({ ...byokSettle(admitted.holdId, 4_500, 0), costMicros: 4_500, byok: true });
    expect(settled.chargedMicros).toBe(225);
    expect(await stub.keyUsage("key-1", T0)).toMatchObject({ usageMicros: 225, byokUsageMicros: 4_500 });
  });

  it("charges the cost, not a fee, for a platform-keyed request even when BYOK terms are passed", async () => {
    const stub = await funded(1_000_000);
    const admitted = await stub.admit(admitInput({ byok: false }));
    if (!admitted.ok) throw new Error("expected admission");
    const settled = await stub.settle({ ...settleInput(admitted.holdId, 1_800), byokFeeBps: BPS, byokFreeMonthlyMicros: 10_000 });
    expect(settled.chargedMicros).toBe(1_800);
  });
});
