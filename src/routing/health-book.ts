/**
 * @module routing/health-book
 * The pure core of endpoint health: per endpoint, the last 30 minutes of attempt outcomes in minute
 * buckets, the circuit breaker (routing/health-breaker), the last outage and a 429's Retry-After,
 * summarised as an `EndpointHealth`. Every method takes `now`, so the same inputs always give the
 * same answer; the Health Durable Object passes its clock, tests pass theirs.
 *
 * Uptime counts only conclusive attempts: successes against outages (5xx, overload, timeouts,
 * connection failures, malformed answers). Rate limits and errors caused by the caller's request
 * or key say nothing about whether the endpoint is up, so they are left out of both sides.
 *
 * Memory per endpoint is bounded whatever its traffic: 30 minute buckets, each with two
 * log-scale histograms (routing/health-histogram) allocated on the bucket's first sample, and
 * running 30-minute totals kept beside them so a snapshot costs one pass over the bins, not thirty.
 * An endpoint with nothing in its window and a closed breaker is forgotten by `snapshot`.
 */
import type { UpstreamErrorType } from "../errors";
import { Breaker, type OutcomeClass, type SavedBreaker } from "./health-breaker";
import { LATENCY_SCALE, LogHistogram, THROUGHPUT_SCALE, type HistogramScale } from "./health-histogram";
import type { AttemptOutcome, EndpointHealth, Percentiles } from "./health-types";

/** The window uptime and percentiles cover. */
export const HEALTH_WINDOW_MS = 30 * 60_000;
const MINUTE_MS = 60_000;
const MINUTES = HEALTH_WINDOW_MS / MINUTE_MS;
/** A Retry-After longer than this is read as this: a typo or a daily quota should not bench an endpoint for hours. */
export const MAX_RETRY_AFTER_MS = 5 * 60_000;

/** Failures that say nothing about the endpoint: the caller's request, key or quota. */
const NEUTRAL_ERRORS: ReadonlySet<UpstreamErrorType> = new Set<UpstreamErrorType>([
  "rate_limit_exceeded",
  "invalid_request",
  "content_filter",
  "context_length_exceeded",
  // A rejected key or unknown model is configuration (often a workspace's own BYOK key): it must
  // not open the breaker for every other workspace.
  "authentication",
  "not_found",
]);

/** Whether an attempt counts as up, down, or neither. A failure without a type counts as down. */
export function classifyOutcome(outcome: AttemptOutcome): OutcomeClass {
  if (outcome.ok) return "success";
  return outcome.errorType !== undefined && NEUTRAL_ERRORS.has(outcome.errorType) ? "neutral" : "outage";
}

/** Values of one metric in one minute: a histogram plus the exact extremes that clamp it. */
class Samples {
  readonly histogram: LogHistogram;
  min = Number.POSITIVE_INFINITY;
  max = Number.NEGATIVE_INFINITY;

  constructor(scale: HistogramScale) {
    this.histogram = new LogHistogram(scale);
  }

  add(value: number): void {
    this.histogram.add(value);
    this.min = Math.min(this.min, value);
    this.max = Math.max(this.max, value);
  }
}

class MinuteBucket {
  minute = Number.NEGATIVE_INFINITY;
  successes = 0;
  outages = 0;
  latency: Samples | null = null;
  throughput: Samples | null = null;
}

/** One metric over the whole window: the running sum of its minute histograms. */
class WindowMetric {
  readonly #scale: HistogramScale;
  readonly #pick: (bucket: MinuteBucket) => Samples | null;
  #total: LogHistogram | null = null;

  constructor(scale: HistogramScale, pick: (bucket: MinuteBucket) => Samples | null) {
    this.#scale = scale;
    this.#pick = pick;
  }

  add(bucket: MinuteBucket, value: number, set: (samples: Samples) => void): void {
    let samples = this.#pick(bucket);
    if (!samples) {
      samples = new Samples(this.#scale);
      set(samples);
    }
    samples.add(value);
    this.#total ??= new LogHistogram(this.#scale);
    this.#total.add(value);
  }

  expire(bucket: MinuteBucket): void {
    const samples = this.#pick(bucket);
    if (samples && this.#total) this.#total.merge(samples.histogram, -1);
  }

  percentiles(buckets: readonly MinuteBucket[]): Percentiles | null {
    const total = this.#total;
    if (!total || total.count === 0) return null;
    let lowest = Number.POSITIVE_INFINITY;
    let highest = Number.NEGATIVE_INFINITY;
    for (const bucket of buckets) {
      const samples = this.#pick(bucket);
      if (!samples) continue;
      lowest = Math.min(lowest, samples.min);
      highest = Math.max(highest, samples.max);
    }
    const at = (q: number) => total.quantile(q, lowest, highest);
    return { p50: at(0.5), p75: at(0.75), p90: at(0.9), p99: at(0.99) };
  }
}

class EndpointRecord {
  readonly buckets: MinuteBucket[] = Array.from({ length: MINUTES }, () => new MinuteBucket());
  successes = 0;
  outages = 0;
  readonly latency = new WindowMetric(LATENCY_SCALE, (b) => b.latency);
  readonly throughput = new WindowMetric(THROUGHPUT_SCALE, (b) => b.throughput);
  lastOutageAt: number | null = null;
  retryAfterUntil: number | null = null;
  breaker: Breaker;

  constructor(breaker = new Breaker()) {
    this.breaker = breaker;
  }

  /** Drop the minutes that left the window at `now`. */
  advance(now: number): void {
    const oldest = Math.floor(now / MINUTE_MS) - MINUTES + 1;
    for (const bucket of this.buckets) {
      if (bucket.minute >= oldest || bucket.minute === Number.NEGATIVE_INFINITY) continue;
      this.successes -= bucket.successes;
      this.outages -= bucket.outages;
      this.latency.expire(bucket);
      this.throughput.expire(bucket);
      bucket.minute = Number.NEGATIVE_INFINITY;
      bucket.successes = 0;
      bucket.outages = 0;
      bucket.latency = null;
      bucket.throughput = null;
    }
  }

  /** The bucket for `at`, or null when `at` is already outside the window (call `advance` first). */
  bucket(at: number, now: number): MinuteBucket | null {
    const minute = Math.floor(at / MINUTE_MS);
    if (minute <= Math.floor(now / MINUTE_MS) - MINUTES) return null;
    const bucket = this.buckets[minute % MINUTES];
    if (!bucket) return null;
    bucket.minute = minute;
    return bucket;
  }

  live(now: number): MinuteBucket[] {
    const oldest = Math.floor(now / MINUTE_MS) - MINUTES + 1;
    return this.buckets.filter((b) => b.minute >= oldest);
  }

  /** Nothing in the window, no pending Retry-After, breaker closed: as good as unknown. */
  empty(now: number): boolean {
    return (
      this.breaker.closed &&
      (this.retryAfterUntil === null || this.retryAfterUntil <= now) &&
      this.buckets.every((b) => b.minute === Number.NEGATIVE_INFINITY)
    );
  }
}

/** A breaker that opened or closed: what the Health object persists (null: delete the row). */
export interface BreakerChange {
  endpointId: string;
  saved: SavedBreaker | null;
}

export class HealthBook {
  readonly #endpoints = new Map<string, EndpointRecord>();

  /** Endpoints currently tracked (tests and memory checks). */
  get size(): number {
    return this.#endpoints.size;
  }

  /** Forget one endpoint (or every one): its statistics, outage, Retry-After and breaker. */
  forget(endpointId?: string): void {
    if (endpointId === undefined) this.#endpoints.clear();
    else this.#endpoints.delete(endpointId);
  }

  /**
   * Count attempt outcomes. An outcome dated after `now` (clock skew between isolates) counts as
   * `now`; one older than the window changes only `lastOutageAt`. Returns the breakers that opened
   * or closed, in order, for the caller to persist.
   */
  record(outcomes: readonly AttemptOutcome[], now: number): BreakerChange[] {
    const changes: BreakerChange[] = [];
    for (const outcome of outcomes) {
      const record = this.#record(outcome.endpointId);
      record.advance(now);
      const at = Math.min(outcome.at, now);
      const kind = classifyOutcome(outcome);
      if (kind === "outage") record.lastOutageAt = Math.max(record.lastOutageAt ?? at, at);
      if (outcome.errorType === "rate_limit_exceeded" && outcome.retryAfterSeconds !== undefined) {
        const until = at + Math.min(outcome.retryAfterSeconds * 1000, MAX_RETRY_AFTER_MS);
        if (until > now) record.retryAfterUntil = Math.max(record.retryAfterUntil ?? until, until);
      }
      const bucket = record.bucket(at, now);
      if (bucket) {
        if (kind === "success") {
          bucket.successes += 1;
          record.successes += 1;
          if (outcome.latencyMs !== undefined) record.latency.add(bucket, outcome.latencyMs, (s) => (bucket.latency = s));
          if (outcome.tokensPerSecond !== undefined) record.throughput.add(bucket, outcome.tokensPerSecond, (s) => (bucket.throughput = s));
        } else if (kind === "outage") {
          bucket.outages += 1;
          record.outages += 1;
        }
      }
      const transition = record.breaker.observe(kind, at, now);
      if (transition) changes.push({ endpointId: outcome.endpointId, saved: record.breaker.saved() });
    }
    return changes;
  }

  /** One endpoint's health at `now`, or null when nothing is known of it. */
  health(endpointId: string, now: number): EndpointHealth | null {
    const record = this.#endpoints.get(endpointId);
    if (!record) return null;
    record.advance(now);
    return summarise(record, now);
  }

  /** Every tracked endpoint's health at `now`; forgets endpoints with nothing left to say. */
  snapshot(now: number): Map<string, EndpointHealth> {
    const out = new Map<string, EndpointHealth>();
    for (const [id, record] of this.#endpoints) {
      record.advance(now);
      if (record.empty(now)) {
        this.#endpoints.delete(id);
        continue;
      }
      out.set(id, summarise(record, now));
    }
    return out;
  }

  /**
   * Whether a caller may send to `endpointId` now: always when its breaker is closed, never while
   * it cools down, and to exactly one caller when it is half-open (until that probe reports or
   * times out).
   */
  claimProbe(endpointId: string, now: number): boolean {
    const record = this.#endpoints.get(endpointId);
    return record ? record.breaker.claimProbe(now) : true;
  }

  /** Reinstate a persisted open breaker (after the object was evicted). */
  restore(endpointId: string, saved: SavedBreaker): void {
    const record = new EndpointRecord(Breaker.restore(saved));
    record.lastOutageAt = saved.openedAt;
    this.#endpoints.set(endpointId, record);
  }

  #record(endpointId: string): EndpointRecord {
    let record = this.#endpoints.get(endpointId);
    if (!record) {
      record = new EndpointRecord();
      this.#endpoints.set(endpointId, record);
    }
    return record;
  }
}

function summarise(record: EndpointRecord, now: number): EndpointHealth {
  const conclusive = record.successes + record.outages;
  const live = record.live(now);
  return {
    lastOutageAt: record.lastOutageAt,
    breaker: record.breaker.state(now),
    openUntil: record.breaker.openUntil,
    retryAfterUntil: record.retryAfterUntil !== null && record.retryAfterUntil > now ? record.retryAfterUntil : null,
    uptime: conclusive > 0 ? (100 * record.successes) / conclusive : null,
    latencyMs: record.latency.percentiles(live),
    throughputTps: record.throughput.percentiles(live),
  };
}
