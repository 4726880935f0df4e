/**
 * The pure health core with an injected clock: uptime, percentiles and the 30-minute window, the
 * circuit breaker's whole cycle (threshold, cool-down, one probe, probe timeout, backoff) and
 * Retry-After.
 */
import { describe, expect, it } from "vitest";
import type { UpstreamErrorType } from "../../../src/errors";
import { BREAKER_MIN_OUTAGES, COOL_DOWN_MS, MAX_COOL_DOWN_MS, PROBE_TIMEOUT_MS, coolDownMs } from "../../../src/routing/health-breaker";
import { HEALTH_WINDOW_MS, HealthBook, MAX_RETRY_AFTER_MS, classifyOutcome } from "../../../src/routing/health-book";
import type { AttemptOutcome, EndpointHealth } from "../../../src/routing/health-types";

/** 2030-01-07 12:00:00 UTC: a minute boundary, so bucket edges fall on round offsets. */
const T0 = Date.UTC(2030, 0, 7, 12, 0, 0);
const E = "openai/gpt-4o@openai";

const ok = (at: number, extra: Partial<AttemptOutcome> = {}): AttemptOutcome => ({ endpointId: E, at, ok: true, ...extra });
const fail = (at: number, errorType: UpstreamErrorType = "server", extra: Partial<AttemptOutcome> = {}): AttemptOutcome => ({
  endpointId: E,
  at,
  ok: false,
  errorType,
  ...extra,
});

function health(book: HealthBook, now: number): EndpointHealth {
  const h = book.health(E, now);
  if (!h) throw new Error("expected the endpoint to be known");
  return h;
}

/** A book whose breaker for E opened at `at` (three outages). */
function opened(at = T0): HealthBook {
  const book = new HealthBook();
  book.record([fail(at), fail(at), fail(at)], at);
  expect(health(book, at)).toMatchObject({ breaker: "open", openUntil: at + COOL_DOWN_MS });
  return book;
}

function expectWithin(actual: number, expected: number, relative: number): void {
  expect(Math.abs(actual - expected)).toBeLessThanOrEqual(expected * relative);
}

describe("uptime", () => {
  it("counts successes against outages only: rate limits and the caller's errors are left out", () => {
    const book = new HealthBook();
    const neutral: UpstreamErrorType[] = ["rate_limit_exceeded", "rate_limit_exceeded", "invalid_request", "content_filter", "context_length_exceeded", "authentication", "not_found"];
    book.record([ok(T0), ok(T0 + 1), ok(T0 + 2), fail(T0 + 3, "timeout"), ...neutral.map((t, i) => fail(T0 + 10 + i, t))], T0 + 100);
    expect(health(book, T0 + 100)).toMatchObject({ uptime: 75, breaker: "closed", lastOutageAt: T0 + 3 });
  });

  it("classifies every failure type, and a failure without a type as an outage", () => {
    const outages: UpstreamErrorType[] = ["server", "timeout", "provider_overloaded", "provider_unavailable", "invalid_response"];
    for (const t of outages) expect(classifyOutcome(fail(T0, t))).toBe("outage");
    expect(classifyOutcome({ endpointId: E, at: T0, ok: false })).toBe("outage");
    expect(classifyOutcome(fail(T0, "rate_limit_exceeded"))).toBe("neutral");
    expect(classifyOutcome(ok(T0))).toBe("success");
  });

  it("is null with no conclusive attempt, e.g. only rate limits", () => {
    const book = new HealthBook();
    book.record([fail(T0, "rate_limit_exceeded")], T0);
    expect(health(book, T0)).toMatchObject({ uptime: null, lastOutageAt: null, latencyMs: null, throughputTps: null });
  });
});

describe("percentiles", () => {
  it("estimates p50/p75/p90/p99 within the histogram's 4.4 % on known samples", () => {
    const book = new HealthBook();
    // 1..1000 ms in a scrambled order, tokens/s 1..1000 likewise.
    const values = Array.from({ length: 1000 }, (_, i) => ((i * 337) % 1000) + 1);
    book.record(
      values.map((v, i) => ok(T0 + i, { latencyMs: v, tokensPerSecond: v })),
      T0 + 1000,
    );
    const h = health(book, T0 + 1000);
    for (const [p, expected] of [["p50", 500], ["p75", 750], ["p90", 900], ["p99", 990]] as const) {
      expectWithin(h.latencyMs?.[p] ?? Number.NaN, expected, 0.045);
      expectWithin(h.throughputTps?.[p] ?? Number.NaN, expected, 0.045);
    }
  });

  it("is exact when every sample is equal, and for a single sample", () => {
    const book = new HealthBook();
    book.record([ok(T0, { latencyMs: 237, tokensPerSecond: 41.5 }), ok(T0, { latencyMs: 237 })], T0);
    expect(health(book, T0).latencyMs).toEqual({ p50: 237, p75: 237, p90: 237, p99: 237 });
    expect(health(book, T0).throughputTps).toEqual({ p50: 41.5, p75: 41.5, p90: 41.5, p99: 41.5 });
  });

  it("weights by count: a few slow answers move p99, not p50", () => {
    const book = new HealthBook();
    book.record([...Array.from({ length: 95 }, () => ok(T0, { latencyMs: 100 })), ...Array.from({ length: 5 }, () => ok(T0, { latencyMs: 8000 }))], T0);
    const latency = health(book, T0).latencyMs;
    expectWithin(latency?.p50 ?? 0, 100, 0.045);
    expectWithin(latency?.p90 ?? 0, 100, 0.045);
    expectWithin(latency?.p99 ?? 0, 8000, 0.045);
  });

  it("keeps latency and throughput of successes only, and only when given", () => {
    const book = new HealthBook();
    book.record([ok(T0), fail(T0, "server", { latencyMs: 5 })], T0);
    expect(health(book, T0)).toMatchObject({ latencyMs: null, throughputTps: null, uptime: 50 });
  });
});

describe("the 30-minute window", () => {
  it("forgets a minute 30 minutes after it began, and the endpoint once nothing is left", () => {
    const book = new HealthBook();
    book.record([ok(T0 + 5_000, { latencyMs: 50 })], T0 + 5_000);
    expect(book.snapshot(T0 + HEALTH_WINDOW_MS - 1).get(E)?.uptime).toBe(100);
    expect(book.snapshot(T0 + HEALTH_WINDOW_MS).has(E)).toBe(false);
    expect(book.size).toBe(0);
  });

  it("drops expired outages and samples from the running totals", () => {
    const book = new HealthBook();
    book.record([fail(T0), ok(T0, { latencyMs: 9_000, tokensPerSecond: 1 })], T0);
    book.record([ok(T0 + 20 * 60_000, { latencyMs: 100, tokensPerSecond: 80 })], T0 + 20 * 60_000);
    expect(health(book, T0 + 29 * 60_000)).toMatchObject({ uptime: (100 * 2) / 3 });
    const later = health(book, T0 + 31 * 60_000);
    expect(later).toMatchObject({ uptime: 100, lastOutageAt: T0 });
    expect(later.latencyMs).toEqual({ p50: 100, p75: 100, p90: 100, p99: 100 });
    expect(later.throughputTps).toEqual({ p50: 80, p75: 80, p90: 80, p99: 80 });
    // And a bucket slot reused a window later holds only its new minute.
    book.record([ok(T0 + HEALTH_WINDOW_MS + 10, { latencyMs: 300 })], T0 + HEALTH_WINDOW_MS + 10);
    expectWithin(health(book, T0 + HEALTH_WINDOW_MS + 10).latencyMs?.p99 ?? 0, 300, 0.045);
  });

  it("ignores outcomes older than the window and dates future ones at now", () => {
    const book = new HealthBook();
    book.record([ok(T0 - HEALTH_WINDOW_MS - 60_000)], T0);
    expect(book.snapshot(T0).has(E)).toBe(false);
    book.record([fail(T0 + 60_000)], T0);
    expect(health(book, T0)).toMatchObject({ lastOutageAt: T0, uptime: 0 });
  });
});

describe("circuit breaker", () => {
  it("opens at the third outage in a minute, not before, and says so to be persisted", () => {
    const book = new HealthBook();
    expect(book.record([fail(T0, "timeout"), fail(T0 + 1_000, "provider_unavailable")], T0 + 1_000)).toEqual([]);
    expect(health(book, T0 + 1_000)).toMatchObject({ breaker: "closed", openUntil: null });
    expect(book.claimProbe(E, T0 + 1_000)).toBe(true);
    const changes = book.record([fail(T0 + 2_000, "provider_overloaded")], T0 + 2_000);
    expect(changes).toEqual([{ endpointId: E, saved: { openedAt: T0 + 2_000, openUntil: T0 + 2_000 + COOL_DOWN_MS, failedProbes: 0 } }]);
    expect(health(book, T0 + 2_000)).toMatchObject({ breaker: "open", openUntil: T0 + 12_000, lastOutageAt: T0 + 2_000 });
    expect(BREAKER_MIN_OUTAGES).toBe(3);
  });

  it("does not open on one slow timeout, nor on a few outages among many successes", () => {
    const book = new HealthBook();
    book.record([...Array.from({ length: 10 }, (_, i) => ok(T0 + i)), fail(T0 + 20, "timeout")], T0 + 20);
    expect(health(book, T0 + 20).breaker).toBe("closed");
    book.record([fail(T0 + 30, "timeout"), fail(T0 + 40, "server"), fail(T0 + 50, "server")], T0 + 50);
    // 4 outages against 10 successes: under half.
    expect(health(book, T0 + 50).breaker).toBe("closed");
  });

  it("does not open on outages spread wider than its one-minute window", () => {
    const book = new HealthBook();
    for (const at of [T0, T0 + 40_000, T0 + 80_000, T0 + 120_000]) book.record([fail(at)], at);
    expect(health(book, T0 + 120_000).breaker).toBe("closed");
  });

  it("ignores rate limits and client errors", () => {
    const book = new HealthBook();
    book.record(Array.from({ length: 10 }, (_, i) => fail(T0 + i, i % 2 ? "rate_limit_exceeded" : "invalid_request")), T0 + 10);
    expect(health(book, T0 + 10).breaker).toBe("closed");
  });

  it("cools down for 10 s, refusing every claim, then turns half-open", () => {
    const book = opened();
    expect(book.claimProbe(E, T0 + COOL_DOWN_MS - 1)).toBe(false);
    expect(health(book, T0 + COOL_DOWN_MS - 1).breaker).toBe("open");
    expect(health(book, T0 + COOL_DOWN_MS)).toMatchObject({ breaker: "half_open", openUntil: T0 + COOL_DOWN_MS });
  });

  it("grants exactly one probe among many claims, until the probe times out", () => {
    const book = opened();
    const t = T0 + COOL_DOWN_MS;
    const grants = Array.from({ length: 20 }, () => book.claimProbe(E, t));
    expect(grants.filter(Boolean)).toHaveLength(1);
    expect(grants[0]).toBe(true);
    expect(book.claimProbe(E, t + PROBE_TIMEOUT_MS - 1)).toBe(false);
    // The probe never reported back: the next caller may probe.
    expect(book.claimProbe(E, t + PROBE_TIMEOUT_MS)).toBe(true);
    expect(book.claimProbe(E, t + PROBE_TIMEOUT_MS)).toBe(false);
  });

  it("closes on a probe success, forgets the backoff and starts a fresh count", () => {
    const book = opened();
    const t = T0 + COOL_DOWN_MS + 500;
    expect(book.claimProbe(E, t)).toBe(true);
    expect(book.record([ok(t + 200)], t + 300)).toEqual([{ endpointId: E, saved: null }]);
    expect(health(book, t + 300)).toMatchObject({ breaker: "closed", openUntil: null });
    expect(book.claimProbe(E, t + 300)).toBe(true);
    // The outages that opened it no longer count: two new ones are not three.
    book.record([fail(t + 400), fail(t + 500)], t + 500);
    expect(health(book, t + 500).breaker).toBe("closed");
    const reopened = book.record([fail(t + 600)], t + 600);
    expect(reopened[0]?.saved).toEqual({ openedAt: t + 600, openUntil: t + 600 + COOL_DOWN_MS, failedProbes: 0 });
  });

  it("re-opens on a probe failure with a doubled cool-down, up to 5 minutes", () => {
    const book = opened();
    let now = T0;
    const coolDowns: number[] = [];
    for (let i = 0; i < 7; i++) {
      const openUntil = health(book, now).openUntil ?? 0;
      now = openUntil;
      expect(book.claimProbe(E, now)).toBe(true);
      const [change] = book.record([fail(now + 5, "timeout")], now + 5);
      now += 5;
      coolDowns.push((change?.saved?.openUntil ?? 0) - now);
    }
    expect(coolDowns).toEqual([20_000, 40_000, 80_000, 160_000, MAX_COOL_DOWN_MS, MAX_COOL_DOWN_MS, MAX_COOL_DOWN_MS]);
    expect(coolDownMs(0)).toBe(COOL_DOWN_MS);
    // A success after all that closes it, and the next opening starts at 10 s again.
    const openUntil = health(book, now).openUntil ?? 0;
    book.record([ok(openUntil)], openUntil);
    const [change] = book.record([fail(openUntil + 1), fail(openUntil + 2), fail(openUntil + 3)], openUntil + 3);
    expect(change?.saved).toEqual({ openedAt: openUntil + 3, openUntil: openUntil + 3 + COOL_DOWN_MS, failedProbes: 0 });
  });

  it("lets outcomes from the cool-down decide nothing: only attempts made after it count", () => {
    const book = opened();
    const t = T0 + COOL_DOWN_MS;
    // Isolates that had not heard yet: their answers are from before the cool-down ended.
    expect(book.record([ok(T0 + 5_000), fail(T0 + 6_000)], t + 100)).toEqual([]);
    expect(health(book, t + 100).breaker).toBe("half_open");
    // A rate-limited probe is inconclusive: the grant is freed for another caller.
    expect(book.claimProbe(E, t + 100)).toBe(true);
    book.record([fail(t + 150, "rate_limit_exceeded")], t + 150);
    expect(book.claimProbe(E, t + 160)).toBe(true);
  });

  it("restores a persisted breaker, with its backoff and its opening as the last outage", () => {
    const book = new HealthBook();
    book.restore(E, { openedAt: T0, openUntil: T0 + 40_000, failedProbes: 2 });
    expect(health(book, T0 + 1)).toMatchObject({ breaker: "open", openUntil: T0 + 40_000, lastOutageAt: T0, uptime: null });
    expect(book.snapshot(T0 + HEALTH_WINDOW_MS * 2).has(E)).toBe(true);
    expect(book.claimProbe(E, T0 + 40_000)).toBe(true);
    const [change] = book.record([fail(T0 + 40_001)], T0 + 40_001);
    expect(change?.saved?.failedProbes).toBe(3);
    expect(change?.saved?.openUntil).toBe(T0 + 40_001 + 80_000);
  });
});

describe("Retry-After", () => {
  it("sets retryAfterUntil from a 429, keeps the later of two, and caps it at 5 minutes", () => {
    const book = new HealthBook();
    book.record([fail(T0, "rate_limit_exceeded", { retryAfterSeconds: 30 })], T0);
    expect(health(book, T0)).toMatchObject({ retryAfterUntil: T0 + 30_000, breaker: "closed", uptime: null, lastOutageAt: null });
    book.record([fail(T0 + 1, "rate_limit_exceeded", { retryAfterSeconds: 2 })], T0 + 1);
    expect(health(book, T0 + 1).retryAfterUntil).toBe(T0 + 30_000);
    book.record([fail(T0 + 2, "rate_limit_exceeded", { retryAfterSeconds: 86_400 })], T0 + 2);
    expect(health(book, T0 + 2).retryAfterUntil).toBe(T0 + 2 + MAX_RETRY_AFTER_MS);
    expect(health(book, T0 + 2 + MAX_RETRY_AFTER_MS).retryAfterUntil).toBeNull();
  });

  it("ignores a Retry-After that has already passed, or one on another kind of failure", () => {
    const book = new HealthBook();
    book.record([fail(T0, "rate_limit_exceeded", { retryAfterSeconds: 1 }), fail(T0, "server", { retryAfterSeconds: 60 })], T0 + 5_000);
    expect(health(book, T0 + 5_000).retryAfterUntil).toBeNull();
  });
});
