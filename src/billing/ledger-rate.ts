/**
 * @module billing/ledger-rate
 * Sliding-window rate limits. Each scope keeps the counts of the current and the previous minute;
 * the rate at `now` is the current count plus the previous count weighted by how much of the
 * previous minute still lies inside the sliding minute (Cloudflare's rate-limiting estimate). The
 * comparison is done scaled by the minute's milliseconds, so it stays in integers.
 */
import { MINUTE_MS, minuteOf } from "./ledger-periods";

/** Requests and tokens of one scope's current and previous minute. */
export interface RateWindow {
  /** Epoch minute the current counts belong to. */
  minute: number;
  requests: number;
  tokens: number;
  prevRequests: number;
  prevTokens: number;
}

/** The window as it stands at `now`, rolled forward to now's minute. */
export function rollWindow(window: RateWindow | null, now: number): RateWindow {
  const minute = minuteOf(now);
  if (window === null || minute > window.minute + 1) return { minute, requests: 0, tokens: 0, prevRequests: 0, prevTokens: 0 };
  if (minute === window.minute + 1) return { minute, requests: 0, tokens: 0, prevRequests: window.requests, prevTokens: window.tokens };
  // Same minute, or a clock slightly behind the stored minute: count in the stored minute.
  return window;
}

/** Count a request's requests and tokens in the window rolled to `now`. */
export function countInWindow(window: RateWindow | null, now: number, requests: number, tokens: number): RateWindow {
  const rolled = rollWindow(window, now);
  return { ...rolled, requests: rolled.requests + requests, tokens: rolled.tokens + tokens };
}

/** Which count a limit reads. */
export type Measure = "requests" | "tokens";

export interface RateCheck {
  ok: boolean;
  /** Whole units left under the limit after this request (or now, when refused); never negative. */
  remaining: number;
  /** Epoch seconds of the next minute boundary. */
  resetAt: number;
  /** Seconds until a request of the same cost would fit, assuming no other traffic; at least 1. */
  retryAfterSeconds: number;
}

/** Milliseconds into the window's minute; 0 when the clock is behind it. */
function elapsedMs(window: RateWindow, now: number): number {
  return Math.min(MINUTE_MS - 1, Math.max(0, now - window.minute * MINUTE_MS));
}

function counts(window: RateWindow, measure: Measure): { current: number; previous: number } {
  return measure === "requests"
    ? { current: window.requests, previous: window.prevRequests }
    : { current: window.tokens, previous: window.prevTokens };
}

/** The sliding-minute count scaled by MINUTE_MS: current × 60000 + previous × (60000 − elapsed). */
function scaledRate(current: number, previous: number, elapsed: number): number {
  return current * MINUTE_MS + previous * (MINUTE_MS - elapsed);
}

/**
 * Would `cost` more fit under `limit` in `window` (already rolled to `now`)? On success the
 * remaining count is what is left once the cost is counted.
 */
export function checkRate(window: RateWindow, now: number, measure: Measure, limit: number, cost: number): RateCheck {
  const elapsed = elapsedMs(window, now);
  const { current, previous } = counts(window, measure);
  const scaled = scaledRate(current, previous, elapsed);
  const ok = scaled + cost * MINUTE_MS <= limit * MINUTE_MS;
  const used = ok ? scaled + cost * MINUTE_MS : scaled;
  const remaining = Math.max(0, Math.floor((limit * MINUTE_MS - used) / MINUTE_MS));
  const resetAt = (window.minute + 1) * (MINUTE_MS / 1000);
  const wait = ok ? 0 : msUntilFits(limit, current, previous, cost, elapsed);
  return { ok, remaining, resetAt, retryAfterSeconds: Math.max(1, Math.ceil(wait / 1000)) };
}

/**
 * How long until `cost` fits, if nothing else is counted meanwhile: first while the previous
 * minute's weight decays, then in the next minute while this minute's count decays, else once
 * both minutes have passed (or never, for a cost above the limit: the answer is then that time).
 */
function msUntilFits(limit: number, current: number, previous: number, cost: number, elapsed: number): number {
  const room = limit - current - cost;
  if (room >= 0 && previous > 0) {
    // previous × (60000 − t) ≤ room × 60000  ⇔  t ≥ 60000 − ⌊room × 60000 / previous⌋
    const t = MINUTE_MS - Math.floor((room * MINUTE_MS) / previous);
    if (t < MINUTE_MS) return Math.max(0, t - elapsed);
  }
  const toBoundary = MINUTE_MS - elapsed;
  const nextRoom = limit - cost;
  if (nextRoom >= 0 && current === 0) return toBoundary;
  if (nextRoom >= 0) {
    const t = MINUTE_MS - Math.floor((nextRoom * MINUTE_MS) / current);
    if (t < MINUTE_MS) return toBoundary + Math.max(0, t);
  }
  return toBoundary + MINUTE_MS;
}
