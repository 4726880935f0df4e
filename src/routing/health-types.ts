/**
 * @module routing/health-types
 * What routing knows about an endpoint's recent behaviour, and what each upstream attempt
 * reports. Shared by the planner (pure, orders by it), the failover loop (reports outcomes,
 * asks for a probe when a breaker is half-open) and the Health Durable Object (keeps the
 * numbers across isolates).
 */
import type { UpstreamErrorType } from "../errors";

export interface Percentiles {
  p50: number;
  p75: number;
  p90: number;
  p99: number;
}

export type BreakerState = "closed" | "open" | "half_open";

/** One endpoint's health, keyed by catalog endpoint id in a snapshot. */
export interface EndpointHealth {
  /** Epoch ms of the last failure that counts as an outage (5xx, timeout, connection), or null. */
  lastOutageAt: number | null;
  /**
   * Circuit breaker. `open`: do not send requests until `openUntil`; `half_open`: the cool-down
   * has passed and one probe request may go (granted by the Health object to one caller).
   */
  breaker: BreakerState;
  /** Epoch ms when an open breaker's cool-down ends; null when closed. */
  openUntil: number | null;
  /** Epoch ms until which the endpoint asked not to be called (a 429's Retry-After); null: none. */
  retryAfterUntil: number | null;
  /** Share of successful attempts over the last 30 minutes, 0–100; null without data. */
  uptime: number | null;
  /** Time to first token over the last 30 minutes, milliseconds; null without data. */
  latencyMs: Percentiles | null;
  /** Output tokens per second over the last 30 minutes; null without data. */
  throughputTps: Percentiles | null;
}

/** Endpoint id → health. An endpoint missing from the snapshot has no recent data: healthy. */
export type HealthSnapshot = ReadonlyMap<string, EndpointHealth>;

export const EMPTY_HEALTH: HealthSnapshot = new Map();

/** What one upstream attempt tells the Health object. */
export interface AttemptOutcome {
  endpointId: string;
  /** Epoch ms when the attempt ended (or first content arrived, for successes). */
  at: number;
  ok: boolean;
  /** Why it failed; only for failures. */
  errorType?: UpstreamErrorType;
  /** Seconds from a 429's Retry-After. */
  retryAfterSeconds?: number;
  /** Time to first token (or to the whole answer when not streamed), ms; only for successes. */
  latencyMs?: number;
  /** Output tokens per second of generation; only when measurable. */
  tokensPerSecond?: number;
}

/**
 * A snapshot as the Health Durable Object returns it over RPC: a plain array of entries rather
 * than a Map (so it survives any serialiser, JSON included), and entries as objects rather than
 * `[id, health]` tuples, because the RPC stub types widen a tuple to `(string | EndpointHealth)[]`.
 * `at` is the object's clock when the numbers were computed.
 */
export interface SerializedHealthSnapshot {
  at: number;
  endpoints: HealthEntry[];
}

export interface HealthEntry {
  endpointId: string;
  health: EndpointHealth;
}
