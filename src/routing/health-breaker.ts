/**
 * @module routing/health-breaker
 * One endpoint's circuit breaker, as a pure state machine driven by an explicit clock.
 *
 * closed → open: at least 3 outage-class failures in the last minute that are also at least half
 * of the conclusive attempts (successes and outages) in it. A rate with a floor, not a run of
 * consecutive failures, because outcomes reach the Health object out of order: isolates send
 * failures at once and batch successes for up to a second, so "3 in a row" as the object sees them
 * would trip on a busy endpoint failing 1 % of the time. The floor of 3 keeps one slow timeout from
 * opening it; the minute keeps a quiet endpoint that fails every call from being tried forever.
 *
 * open → half-open: after a cool-down of 10 s, doubled after every failed probe up to 5 minutes.
 * half-open: one caller is granted a probe; a probe that never reports back (its isolate died)
 * frees the grant after 30 s (past the connect timeout, so a live probe has answered by then).
 * The first conclusive outcome that happened after the cool-down decides: a success closes the
 * breaker and forgets the backoff, an outage opens it again for twice as long. Outcomes that
 * happened during the cool-down (isolates that had not heard yet) decide nothing.
 */
import type { BreakerState } from "./health-types";

/** How an attempt counts: rate limits and the caller's own errors are neither up nor down. */
export type OutcomeClass = "success" | "outage" | "neutral";

/** The window the failure rate is measured over, in slices so it costs six counters. */
export const BREAKER_WINDOW_MS = 60_000;
const SLICE_MS = 10_000;
const SLICES = BREAKER_WINDOW_MS / SLICE_MS;
/** Outage-class failures in the window before the breaker may open. */
export const BREAKER_MIN_OUTAGES = 3;
/** …and the share of conclusive attempts in the window they must reach. */
export const BREAKER_OUTAGE_SHARE = 0.5;
/** First cool-down; doubles after each failed probe. */
export const COOL_DOWN_MS = 10_000;
export const MAX_COOL_DOWN_MS = 5 * 60_000;
/** A granted probe that has not reported back by then is presumed lost. */
export const PROBE_TIMEOUT_MS = 30_000;

/** What is persisted of an open breaker: small, and written only when the breaker changes. */
export interface SavedBreaker {
  openedAt: number;
  openUntil: number;
  /** Probes that failed since the breaker last closed: the cool-down's exponent. */
  failedProbes: number;
}

export type BreakerTransition = "opened" | "closed" | null;

/** The cool-down after `failedProbes` failed probes: 10 s, 20 s, 40 s … capped at 5 minutes. */
export function coolDownMs(failedProbes: number): number {
  return Math.min(MAX_COOL_DOWN_MS, COOL_DOWN_MS * 2 ** failedProbes);
}

export class Breaker {
  #open: SavedBreaker | null = null;
  #probeClaimedAt: number | null = null;
  /** Outcomes before this instant (the last close) say nothing about the current run. */
  #since = Number.NEGATIVE_INFINITY;
  readonly #slice = new Array<number>(SLICES).fill(Number.NEGATIVE_INFINITY);
  readonly #successes = new Array<number>(SLICES).fill(0);
  readonly #outages = new Array<number>(SLICES).fill(0);

  /** A breaker as persisted: open until `saved.openUntil` (half-open after it). */
  static restore(saved: SavedBreaker): Breaker {
    const breaker = new Breaker();
    breaker.#open = { ...saved };
    return breaker;
  }

  /** What to persist: the open state, or null when closed (delete the row). */
  saved(): SavedBreaker | null {
    return this.#open ? { ...this.#open } : null;
  }

  state(now: number): BreakerState {
    if (!this.#open) return "closed";
    return now < this.#open.openUntil ? "open" : "half_open";
  }

  get openUntil(): number | null {
    return this.#open?.openUntil ?? null;
  }

  /**
   * Count one attempt that ended at `at` (≤ now). Returns the transition it caused, which the
   * caller persists.
   */
  observe(kind: OutcomeClass, at: number, now: number): BreakerTransition {
    const open = this.#open;
    if (open) {
      if (now < open.openUntil || at < open.openUntil) return null;
      // Half-open, and this attempt happened after the cool-down: it is the probe, or as good as one.
      if (kind === "neutral") {
        this.#probeClaimedAt = null;
        return null;
      }
      this.#probeClaimedAt = null;
      if (kind === "success") {
        this.#open = null;
        this.#since = now;
        this.#clearWindow();
        return "closed";
      }
      const failedProbes = open.failedProbes + 1;
      this.#open = { openedAt: now, openUntil: now + coolDownMs(failedProbes), failedProbes };
      return "opened";
    }

    if (kind === "neutral" || at < this.#since) return null;
    const slice = Math.floor(at / SLICE_MS);
    const current = Math.floor(now / SLICE_MS);
    if (slice <= current - SLICES) return null;
    const i = slice % SLICES;
    if (this.#slice[i] !== slice) {
      this.#slice[i] = slice;
      this.#successes[i] = 0;
      this.#outages[i] = 0;
    }
    if (kind === "success") {
      this.#successes[i] = (this.#successes[i] ?? 0) + 1;
      return null;
    }
    this.#outages[i] = (this.#outages[i] ?? 0) + 1;

    let outages = 0;
    let conclusive = 0;
    for (let j = 0; j < SLICES; j++) {
      const s = this.#slice[j] ?? Number.NEGATIVE_INFINITY;
      if (s <= current - SLICES || s > current) continue;
      outages += this.#outages[j] ?? 0;
      conclusive += (this.#outages[j] ?? 0) + (this.#successes[j] ?? 0);
    }
    if (outages < BREAKER_MIN_OUTAGES || outages < BREAKER_OUTAGE_SHARE * conclusive) return null;
    this.#open = { openedAt: now, openUntil: now + coolDownMs(0), failedProbes: 0 };
    this.#clearWindow();
    return "opened";
  }

  /**
   * Whether a caller may send a request now. Closed: yes, nothing to claim. Open: no. Half-open:
   * yes to the first caller only, until its probe reports or times out.
   */
  claimProbe(now: number): boolean {
    const open = this.#open;
    if (!open) return true;
    if (now < open.openUntil) return false;
    if (this.#probeClaimedAt !== null && now - this.#probeClaimedAt < PROBE_TIMEOUT_MS) return false;
    this.#probeClaimedAt = now;
    return true;
  }

  /** Closed, with no backoff to remember: nothing would be lost by forgetting it. */
  get closed(): boolean {
    return this.#open === null;
  }

  #clearWindow(): void {
    this.#slice.fill(Number.NEGATIVE_INFINITY);
    this.#successes.fill(0);
    this.#outages.fill(0);
  }
}
