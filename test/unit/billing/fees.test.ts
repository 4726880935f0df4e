import { describe, expect, it } from "vitest";
import { purchaseFeeMicros } from "../../../src/billing/fees";

describe("purchaseFeeMicros", () => {
  it("charges the $0.80 minimum on small purchases", () => {
    expect(purchaseFeeMicros(10_000_000)).toBe(800_000); // 5.5 % of $10 is $0.55
    expect(purchaseFeeMicros(1)).toBe(800_000);
    expect(purchaseFeeMicros(0)).toBe(800_000);
  });

  it("charges 5.5 % above the minimum", () => {
    expect(purchaseFeeMicros(100_000_000)).toBe(5_500_000); // $100 → $5.50
    expect(purchaseFeeMicros(14_550_000)).toBe(800_250); // $14.55 → $0.80025
  });

  it("rounds up to the whole µ$", () => {
    expect(purchaseFeeMicros(14_550_001)).toBe(800_251); // 800,250.055 µ$
    expect(purchaseFeeMicros(14_549_999)).toBe(800_250); // 800,249.945 µ$
    expect(purchaseFeeMicros(20_000_002, 550, 0)).toBe(1_100_001); // 1,100,000.11 µ$
  });

  it("takes another rate and minimum", () => {
    expect(purchaseFeeMicros(100_000_000, 300, 1_000_000)).toBe(3_000_000);
    expect(purchaseFeeMicros(10_000_000, 300, 1_000_000)).toBe(1_000_000);
  });

  it("stays exact for amounts whose product exceeds 2^53", () => {
    expect(purchaseFeeMicros(Number.MAX_SAFE_INTEGER, 550, 0)).toBe(Number((BigInt(Number.MAX_SAFE_INTEGER) * 550n + 9_999n) / 10_000n));
  });

  it("refuses negative or fractional input", () => {
    expect(() => purchaseFeeMicros(-1)).toThrow(RangeError);
    expect(() => purchaseFeeMicros(1.5)).toThrow(RangeError);
    expect(() => purchaseFeeMicros(100, -1)).toThrow(RangeError);
  });
});
