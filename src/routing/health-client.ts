/**
 * @module routing/health-client
 * The isolate's side of the Health object: a cached snapshot, a reporter, and the probe claim.
 *
 * The request path keeps one Durable Object round trip (the ledger's admission), so health never
 * makes a request wait once the isolate holds any snapshot: a snapshot older than 2 s is still
 * returned, and one refresh goes out in the background through `waitUntil`. A cold isolate routes
 * on `EMPTY_HEALTH` (every endpoint healthy) for its first request. A failed refresh keeps the old
 * snapshot and waits a TTL before trying again, so a sick Health object is asked once per 2 s per
 * isolate, not once per request.
 *
 * Reports: a failure is sent at once (breakers across the region should open fast), as is a
 * success that closed this isolate's breaker (a probe), each carrying the successes waiting, so
 * the object sees this isolate's outcomes in order; successes alone are sent as one batch at most
 * a second after the first of them. Every outcome also feeds
 * a local `HealthBook` (states only, no samples) that health-merge lays over the snapshot, so the
 * next request here sees a local outage, breaker or Retry-After before the shared snapshot does.
 *
 * State is per isolate and per region (one Health object per region).
 */
import { HealthBook } from "./health-book";
import { mergeHealth } from "./health-merge";
import { EMPTY_HEALTH, type AttemptOutcome, type HealthSnapshot, type SerializedHealthSnapshot } from "./health-types";

/** A snapshot younger than this is served without asking the Health object. */
export const HEALTH_TTL_MS = 2_000;
/** A refresh still unanswered after this is presumed lost (its request context ended), and another may start. */
export const REFRESH_ABANDON_MS = 10_000;
/** Successes wait at most this long to be sent, as one batch. */
export const SUCCESS_BATCH_MS = 1_000;
/** …or less, when this many are waiting (an isolate past 500 successes a second). */
export const MAX_SUCCESS_BATCH = 500;

/** The RPC surface used here; `DurableObjectStub<Health>` has it, and tests can wrap or fake it. */
export interface HealthRpc {
  report(outcomes: AttemptOutcome[]): Promise<unknown>;
  snapshot(): Promise<SerializedHealthSnapshot>;
  claimProbe(endpointId: string): Promise<boolean>;
}

export interface HealthEnv {
  HEALTH: { getByName(name: string): HealthRpc };
}

export type WaitUntil = (promise: Promise<unknown>) => void;

interface RegionState {
  /** The Health object's last snapshot (empty until the first refresh lands). */
  remote: HealthSnapshot;
  nextRefreshAt: number;
  refresh: { seq: number; startedAt: number } | null;
  /** Sequence of the last refresh started, and of the last one applied (an abandoned one may land late). */
  startedSeq: number;
  appliedSeq: number;
  /** This isolate's own outcomes, for the overlay. */
  local: HealthBook;
  /** The merge of `remote` and `local`, valid from `mergedAt` until `mergedUntil`; null: redo. */
  merged: HealthSnapshot | null;
  mergedAt: number;
  mergedUntil: number;
  pending: AttemptOutcome[];
  flushScheduled: boolean;
}

const regions = new Map<string, RegionState>();

function regionState(region: string): RegionState {
  let state = regions.get(region);
  if (!state) {
    state = {
      remote: EMPTY_HEALTH,
      nextRefreshAt: Number.NEGATIVE_INFINITY,
      refresh: null,
      startedSeq: 0,
      appliedSeq: 0,
      local: new HealthBook(),
      merged: null,
      mergedAt: 0,
      mergedUntil: 0,
      pending: [],
      flushScheduled: false,
    };
    regions.set(region, state);
  }
  return state;
}

/**
 * Endpoint health for routing in `region`, without waiting: the cached snapshot (however old)
 * merged with this isolate's own recent failures. Starts a background refresh when the cache is
 * older than `HEALTH_TTL_MS` and none is in flight.
 */
export function healthSnapshot(env: HealthEnv, region: string, waitUntil: WaitUntil, now = Date.now()): HealthSnapshot {
  const state = regionState(region);
  if (now >= state.nextRefreshAt) startRefresh(env, region, state, waitUntil, now);
  if (!state.merged || now < state.mergedAt || now >= state.mergedUntil) {
    const { snapshot, validUntil } = mergeHealth(state.remote, state.local.snapshot(now), now);
    state.merged = snapshot;
    state.mergedAt = now;
    state.mergedUntil = validUntil;
  }
  return state.merged;
}

function startRefresh(env: HealthEnv, region: string, state: RegionState, waitUntil: WaitUntil, now: number): void {
  if (state.refresh && now - state.refresh.startedAt < REFRESH_ABANDON_MS) return;
  const seq = ++state.startedSeq;
  state.refresh = { seq, startedAt: now };
  // Success or failure, the next refresh waits a TTL: a failing object is not asked per request.
  state.nextRefreshAt = now + HEALTH_TTL_MS;
  const task = (async () => {
    try {
      const fresh = await env.HEALTH.getByName(region).snapshot();
      if (seq > state.appliedSeq) {
        state.appliedSeq = seq;
        state.remote = new Map(fresh.endpoints.map((e) => [e.endpointId, e.health]));
        state.merged = null;
      }
    } catch (error) {
      console.warn(`health: snapshot refresh for region ${region} failed, keeping the old one:`, error);
    } finally {
      if (state.refresh?.seq === seq) state.refresh = null;
    }
  })();
  waitUntil(task);
}

/**
 * Report one attempt's outcome. Never throws and never makes the caller wait: the RPC runs in
 * `waitUntil`. A failure is sent now (with any successes waiting); a success joins the batch.
 */
export function reportOutcome(env: HealthEnv, region: string, outcome: AttemptOutcome, waitUntil: WaitUntil, now = Date.now()): void {
  const state = regionState(region);
  // The overlay needs states, not samples: keep latency and throughput out of the local book.
  const { latencyMs: _latency, tokensPerSecond: _throughput, ...bare } = outcome;
  const changes = state.local.record([bare], now);
  if (!outcome.ok || changes.length > 0) state.merged = null;

  // A failure goes at once (breakers should open fast), and so does a success that changed a
  // breaker here (a probe that closed it): the object must not keep refusing probes meanwhile.
  if (!outcome.ok || changes.length > 0) {
    waitUntil(send(env, region, [...state.pending.splice(0), outcome]));
    return;
  }
  state.pending.push(outcome);
  if (state.pending.length >= MAX_SUCCESS_BATCH) {
    waitUntil(send(env, region, state.pending.splice(0)));
  } else if (!state.flushScheduled) {
    state.flushScheduled = true;
    // The timer lives in this request's waitUntil, so the batch goes out even if no request follows.
    const flush = new Promise<void>((resolve) => setTimeout(resolve, SUCCESS_BATCH_MS)).then(() => {
      state.flushScheduled = false;
      return state.pending.length > 0 ? send(env, region, state.pending.splice(0)) : undefined;
    });
    waitUntil(flush);
  }
}

/** One `report` RPC; resolves either way (statistics are best effort). */
async function send(env: HealthEnv, region: string, outcomes: AttemptOutcome[]): Promise<void> {
  try {
    await env.HEALTH.getByName(region).report(outcomes);
  } catch (error) {
    // The local overlay still holds this isolate's failures; the batch is dropped, not retried.
    console.warn(`health: reporting ${outcomes.length} outcome(s) for region ${region} failed:`, error);
  }
}

/**
 * Ask the Health object whether this request may go to `endpointId` (call it when the snapshot
 * shows the endpoint's breaker half-open). One RPC; false when the object cannot be reached, so a
 * dead endpoint is not hammered because its breaker could not be consulted.
 */
export async function claimProbe(env: HealthEnv, region: string, endpointId: string): Promise<boolean> {
  try {
    return await env.HEALTH.getByName(region).claimProbe(endpointId);
  } catch (error) {
    console.warn(`health: probe claim for ${endpointId} in region ${region} failed:`, error);
    return false;
  }
}

/** Forget every cached snapshot, overlay and pending report of this isolate (tests). */
export function forgetHealth(): void {
  regions.clear();
}
