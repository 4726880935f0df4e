/** The BYOK fee arithmetic and the deployment's BYOK terms. */
import { describe, expect, it } from "vitest";
import { byokTerms } from "../../../src/billing/byok";
import { basisPointsMicros, byokFeeMicros } from "../../../src/billing/fees";

describe("byokFeeMicros", () => {
  it.each([
    { name: "5 % of the whole cost without an allowance", usage: 4_500, remaining: 0, bps: 500, fee: 225 },
    { name: "rounds up to the µ$", usage: 450, remaining: 0, bps: 500, fee: 23 },
    { name: "nothing while the allowance covers the cost", usage: 4_500, remaining: 6_000, bps: 500, fee: 0 },
    { name: "exactly the allowance left", usage: 4_500, remaining: 4_500, bps: 500, fee: 0 },
    { name: "only the part above the allowance (straddling)", usage: 4_500, remaining: 1_500, bps: 500, fee: 150 },
    { name: "an overdrawn allowance counts as none", usage: 4_500, remaining: -3_000, bps: 500, fee: 225 },
    { name: "a zero rate", usage: 4_500, remaining: 0, bps: 0, fee: 0 },
    { name: "a free request", usage: 0, remaining: 0, bps: 500, fee: 0 },
  ])("$name", ({ usage, remaining, bps, fee }) => {
    expect(byokFeeMicros(usage, remaining, bps)).toBe(fee);
  });

  it("stays exact for amounts beyond 2^53 / 10,000", () => {
    expect(basisPointsMicros(Number.MAX_SAFE_INTEGER, 500)).toBe(Number((BigInt(Number.MAX_SAFE_INTEGER) * 500n + 9_999n) / 10_000n));
  });
});

describe("byokTerms", () => {
  it("reads the rate and the monthly allowance", () => {
    expect(byokTerms({ BYOK_FEE_BPS: "500", BYOK_FREE_MONTHLY_USD: "12.5" })).toEqual({ feeBps: 500, freeMonthlyMicros: 12_500_000 });
  });

  it("falls back to 5 % and no allowance when misconfigured: never waives a fee by mistake", () => {
    expect(byokTerms({})).toEqual({ feeBps: 500, freeMonthlyMicros: 0 });
    expect(byokTerms({ BYOK_FEE_BPS: "5%", BYOK_FREE_MONTHLY_USD: "lots" })).toEqual({ feeBps: 500, freeMonthlyMicros: 0 });
    expect(byokTerms({ BYOK_FEE_BPS: "20000", BYOK_FREE_MONTHLY_USD: "-1" })).toEqual({ feeBps: 500, freeMonthlyMicros: 0 });
  });
});
