import { describe, expect, it } from "vitest";
import { costMicros, perTokenUsdString, usdToMicros } from "../../../src/billing/pricing";
import { emptyUsage, type Usage } from "../../../src/providers/types";

const usage = (u: Partial<Usage>): Usage => ({ ...emptyUsage(), ...u });

describe("usdToMicros", () => {
  it("parses decimal strings exactly", () => {
    expect(usdToMicros("0.15")).toBe(150_000);
    expect(usdToMicros("0.0825")).toBe(82_500);
    expect(usdToMicros("18.75")).toBe(18_750_000);
    expect(usdToMicros("3")).toBe(3_000_000);
    expect(usdToMicros(0.165)).toBe(165_000);
  });

  it("refuses amounts it would have to round", () => {
    expect(() => usdToMicros("0.0000001")).toThrow(RangeError);
    expect(() => usdToMicros("-1")).toThrow(RangeError);
    expect(() => usdToMicros("1e3")).toThrow(RangeError);
  });
});

describe("costMicros", () => {
  const gpt4oMini = { promptPrice: 150_000, completionPrice: 600_000, cacheReadPrice: 75_000, cacheWritePrice: null, requestPrice: 0 };

  it("prices prompt and completion tokens per million", () => {
    // 1,000 × $0.15/M + 500 × $0.60/M = $0.00015 + $0.0003 = 450 µ$
    expect(costMicros(usage({ promptTokens: 1000, completionTokens: 500 }), gpt4oMini)).toBe(450);
  });

  it("prices cached tokens at the cache rate and never again as input", () => {
    // 600 uncached × 0.15 + 400 cached × 0.075 = 90 + 30 = 120 µ$
    expect(costMicros(usage({ promptTokens: 1000, cachedTokens: 400 }), gpt4oMini)).toBe(120);
  });

  it("prices cache writes at their own rate", () => {
    const sonnet = { promptPrice: 3_000_000, completionPrice: 15_000_000, cacheReadPrice: 300_000, cacheWritePrice: 3_750_000, requestPrice: 0 };
    // 100 × 3 + 200 × 0.3 + 700 × 3.75 + 10 × 15 (µ$ per token) = 300 + 60 + 2625 + 150
    expect(costMicros(usage({ promptTokens: 1000, cachedTokens: 200, cacheWriteTokens: 700, completionTokens: 10 }), sonnet)).toBe(3135);
  });

  it("rounds once per request, half up", () => {
    // 3 × 0.15 µ$ = 0.45 µ$ → 0; 4 × 0.15 = 0.6 → 1; 10 × 0.15 = 1.5 → 2
    expect(costMicros(usage({ promptTokens: 3 }), gpt4oMini)).toBe(0);
    expect(costMicros(usage({ promptTokens: 4 }), gpt4oMini)).toBe(1);
    expect(costMicros(usage({ promptTokens: 10 }), gpt4oMini)).toBe(2);
  });

  it("adds the per-request price", () => {
    expect(costMicros(usage({}), { ...gpt4oMini, requestPrice: 5000 })).toBe(5000);
  });

  it("stays exact for very large requests", () => {
    const opus = { promptPrice: 15_000_000, completionPrice: 75_000_000, cacheReadPrice: null, cacheWritePrice: null, requestPrice: 0 };
    expect(costMicros(usage({ promptTokens: 2_000_000, completionTokens: 128_000 }), opus)).toBe(30_000_000 + 9_600_000);
  });
});

describe("perTokenUsdString", () => {
  it("prints OpenRouter's per-token strings", () => {
    expect(perTokenUsdString(150_000)).toBe("0.00000015");
    expect(perTokenUsdString(82_500)).toBe("0.0000000825");
    expect(perTokenUsdString(75_000_000)).toBe("0.000075");
    expect(perTokenUsdString(0)).toBe("0");
  });
});
