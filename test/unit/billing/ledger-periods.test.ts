/** The Ledger's pure arithmetic: UTC periods, spend counters, reservation sizing, sliding windows. */
import { describe, expect, it } from "vitest";
import { affordableTokens, fitBudget, reservationMicros } from "../../../src/billing/ledger-budget";
import { addUsage, dayStart, emptyUsage, limitUsage, monthStart, usageAt, weekStart } from "../../../src/billing/ledger-periods";
import { checkRate, countInWindow, rollWindow } from "../../../src/billing/ledger-rate";

describe("UTC periods", () => {
  it("starts days at UTC midnight", () => {
    expect(dayStart(Date.UTC(2030, 0, 7, 23, 59, 59, 999))).toBe(Date.UTC(2030, 0, 7));
    expect(dayStart(Date.UTC(2030, 0, 8))).toBe(Date.UTC(2030, 0, 8));
  });

  it("starts weeks on Monday 00:00 UTC, whatever the weekday", () => {
    const monday = Date.UTC(2030, 0, 7);
    for (let day = 0; day < 7; day++) expect(weekStart(monday + day * 86_400_000 + 3_600_000)).toBe(monday);
    expect(weekStart(Date.UTC(2030, 0, 14))).toBe(Date.UTC(2030, 0, 14));
    expect(weekStart(Date.UTC(1970, 0, 1))).toBe(Date.UTC(1969, 11, 29));
  });

  it("starts months on the 1st, 00:00 UTC, across years and leap days", () => {
    expect(monthStart(Date.UTC(2030, 11, 31, 23, 59))).toBe(Date.UTC(2030, 11, 1));
    expect(monthStart(Date.UTC(2028, 1, 29, 12))).toBe(Date.UTC(2028, 1, 1));
    expect(monthStart(Date.UTC(2031, 0, 1))).toBe(Date.UTC(2031, 0, 1));
  });
});

describe("spend counters", () => {
  const monday = Date.UTC(2030, 0, 7, 10);

  it("restarts a period's sum when the period has ended, keeping the total", () => {
    let usage = addUsage(emptyUsage(monday), 100, 40, monday);
    usage = addUsage(usage, 50, 0, Date.UTC(2030, 0, 8, 1));
    expect(usage.total).toBe(150);
    expect(usage.byokTotal).toBe(40);
    expect(usage.day).toEqual({ start: Date.UTC(2030, 0, 8), usage: 50, byok: 0 });
    expect(usage.week.usage).toBe(150);
    expect(usageAt(usage, Date.UTC(2030, 0, 14)).week.usage).toBe(0);
  });

  it("counts a late timestamp from an ended period in the total only", () => {
    const usage = addUsage(addUsage(emptyUsage(monday), 100, 0, Date.UTC(2030, 0, 8)), 7, 0, Date.UTC(2030, 0, 7, 23, 59));
    expect(usage.total).toBe(107);
    expect(usage.day.usage).toBe(100);
  });

  it("adds BYOK usage to the limit only when the key includes it", () => {
    const usage = addUsage(emptyUsage(monday), 100, 1_000, monday);
    expect(limitUsage(usage, "daily", true, monday)).toBe(1_100);
    expect(limitUsage(usage, "daily", false, monday)).toBe(100);
    expect(limitUsage(usage, null, true, Date.UTC(2040, 0, 1))).toBe(1_100);
  });
});

describe("reservation sizing", () => {
  it("rounds the completion part up and affordable tokens down", () => {
    expect(reservationMicros(10, 3, 333_333)).toBe(11);
    expect(reservationMicros(10, 3_000_000, 333_333)).toBe(999_999 + 10);
    expect(affordableTokens(11, 10, 333_333, 99)).toBe(3);
    expect(affordableTokens(9, 10, 333_333, 99)).toBe(0);
    expect(affordableTokens(10, 10, 0, 99)).toBe(99);
  });

  it("stays exact for balances whose product with a million exceeds 2^53", () => {
    const balance = 9_000_000_000_000; // $9M
    expect(affordableTokens(balance, 0, 1_000_000, 1)).toBe(balance);
  });

  it("fits a request without max_tokens under an earlier cap and the floor", () => {
    const size = { promptMicros: 0, completionPrice: 1_000_000, requestedMaxTokens: null, modelMaxTokens: 1_000, floorTokens: 100 };
    expect(fitBudget(500, size, 1_000)).toEqual({ ok: true, maxTokens: 500 });
    expect(fitBudget(5_000, size, 300)).toEqual({ ok: true, maxTokens: 300 });
    expect(fitBudget(99, size, 1_000)).toEqual({ ok: false, requestedTokens: 1_000, affordableTokens: 99 });
    expect(fitBudget(-5, size, 1_000)).toEqual({ ok: false, requestedTokens: 1_000, affordableTokens: 0 });
  });
});

describe("sliding windows", () => {
  const minute = Date.UTC(2030, 0, 7, 12, 0);

  it("rolls the current minute into the previous one, and clears after two", () => {
    const w = countInWindow(null, minute + 5_000, 4, 100);
    expect(rollWindow(w, minute + 59_999)).toBe(w);
    expect(rollWindow(w, minute + 60_000)).toMatchObject({ requests: 0, prevRequests: 4, prevTokens: 100 });
    expect(rollWindow(w, minute + 120_000)).toMatchObject({ requests: 0, prevRequests: 0 });
  });

  it("weights the previous minute by the share of it still inside the sliding minute", () => {
    const w = rollWindow(countInWindow(null, minute, 10, 0), minute + 60_000 + 30_000); // 10 requests, half a minute ago
    expect(checkRate(w, minute + 90_000, "requests", 6, 1)).toMatchObject({ ok: true, remaining: 0 });
    expect(checkRate(w, minute + 90_000, "requests", 5, 1)).toMatchObject({ ok: false, remaining: 0, resetAt: (minute + 120_000) / 1000 });
  });

  it("asks for a retry once the previous minute's weight has decayed enough", () => {
    // 10 requests in the previous minute, 1 now, 20 s in, limit 6: 1 + 10 × (60 − t)/60 + 1 ≤ 6 at t = 36 s.
    const w = countInWindow(rollWindow(countInWindow(null, minute, 10, 0), minute + 80_000), minute + 80_000, 1, 0);
    expect(checkRate(w, minute + 80_000, "requests", 6, 1)).toMatchObject({ ok: false, retryAfterSeconds: 16 });
    expect(checkRate(w, minute + 96_000, "requests", 6, 1).ok).toBe(true);
    expect(checkRate(w, minute + 95_999, "requests", 6, 1).ok).toBe(false);
  });

  it("never promises a cost above the limit, but says when both minutes are clear", () => {
    const w = countInWindow(null, minute + 15_000, 0, 500);
    expect(checkRate(w, minute + 15_000, "tokens", 1_000, 2_000)).toMatchObject({ ok: false, remaining: 500, retryAfterSeconds: 105 });
  });
});
