/**
 * @module routing/failover
 * The attempt loop: try candidates in order until one answers, as long as nothing has reached the
 * client. Each attempt has its own abort controller (connect timeout, first-token timeout, client
 * disconnect) and leaves a record, so a final failure names every endpoint that was tried.
 *
 * Health decides what is not tried at all: an endpoint whose circuit breaker is open, or whose
 * Retry-After has not passed, is skipped (and named in the records); a half-open one is tried only
 * by the one request the Health object grants the probe to. So an endpoint that is down costs one
 * failed attempt per cool-down window, not one per request. Every attempt's outcome is reported.
 * The loop is bounded: at most `maxAttempts` upstream calls and no new attempt after `deadline`.
 */
import { GatewayError, type UpstreamErrorType } from "../errors";
import { adapterFor } from "../providers/registry";
import type { ChatRequest } from "../schemas/openai";
import { AttemptDeadline } from "./attempt-deadline";
import type { AttemptOutcome } from "./health-types";
import type { Candidate } from "./plan";

export interface AttemptRecord {
  provider: string;
  model: string;
  /** Upstream HTTP status, or null when no response arrived. */
  status: number | null;
  errorType: UpstreamErrorType;
  message: string;
  /** Seconds, from a 429's Retry-After (or until a skipped endpoint may be called again). */
  retryAfter?: number;
  ms: number;
  /** Not called: its breaker was open, its probe taken, or its Retry-After still running. */
  skipped?: boolean;
}

/** Why the loop that filled an attempts list stopped before its last candidate (the budget). */
const budgets = new WeakMap<readonly AttemptRecord[], string>();

/** Upstream calls actually made (skipped endpoints are named in the records but cost nothing). */
export function callsMade(attempts: readonly AttemptRecord[]): number {
  return attempts.reduce((n, a) => (a.skipped ? n : n + 1), 0);
}

export interface OpenedUpstream {
  candidate: Candidate;
  response: Response;
  /** Aborting it cancels this attempt's fetch and body. */
  controller: AbortController;
  /**
   * The attempt's time limit, still the connect timeout when the headers arrive: `consume` moves
   * it to its own limit and, when a read fails, asks it whether the failure was the clock.
   */
  deadline: AttemptDeadline;
  /** Epoch ms the attempt started, and when `consume` returned (first content, or the whole answer). */
  startedAt: number;
  consumedAt: number | null;
}

/** The failover loop's line to the Health object (routing/health-client). */
export interface HealthHooks {
  /** Whether this request may call an endpoint whose breaker is half-open (one probe per window). */
  claimProbe(endpointId: string): Promise<boolean>;
  report(outcome: AttemptOutcome): void;
}

export interface FailoverOptions {
  stream: boolean;
  connectTimeoutMs: number;
  /** The client's request signal: when it aborts, the loop stops and the upstream is cancelled. */
  clientSignal: AbortSignal;
  fetcher?: typeof fetch;
  health?: HealthHooks;
  /** At most this many upstream calls (skipped endpoints do not count). */
  maxAttempts?: number;
  /** Epoch ms after which no attempt starts, and no attempt's connect timeout runs past. */
  deadline?: number;
  /**
   * Report successes here (non-streamed answers). A stream reports its success when it ends, with
   * its throughput (api/chat), so the loop reports only its failures.
   */
  reportSuccess?: boolean;
}

/** Failures worth another endpoint: the next one may well succeed. */
function isRetryable(errorType: UpstreamErrorType): boolean {
  return errorType !== "invalid_request" && errorType !== "content_filter";
}

const MAX_ERROR_BODY = 64 * 1024;

async function readErrorBody(response: Response): Promise<string> {
  const text = await response.text().catch(() => "");
  return text.length > MAX_ERROR_BODY ? text.slice(0, MAX_ERROR_BODY) : text;
}

/** Why `candidate` is not called at all now, with the seconds until it may be; null: call it. */
async function skipReason(candidate: Candidate, now: number, health: HealthHooks | undefined): Promise<Omit<AttemptRecord, "provider" | "model" | "ms"> | null> {
  const h = candidate.health;
  if (!h || !health) return null;
  if (h.retryAfterUntil !== null && h.retryAfterUntil > now) {
    const retryAfter = Math.ceil((h.retryAfterUntil - now) / 1000);
    return { status: null, errorType: "rate_limit_exceeded", message: `Skipped: the provider asked for no requests for another ${retryAfter} s (Retry-After)`, retryAfter, skipped: true };
  }
  if (h.breaker === "closed") return null;
  if (h.breaker === "open" && h.openUntil !== null && h.openUntil > now) {
    const retryAfter = Math.ceil((h.openUntil - now) / 1000);
    return { status: null, errorType: "provider_unavailable", message: `Skipped: circuit open after repeated failures; next probe in ${retryAfter} s`, retryAfter, skipped: true };
  }
  // Half-open (or open with its cool-down over): one request in the region probes it.
  if (await health.claimProbe(candidate.endpoint.id)) return null;
  return { status: null, errorType: "provider_unavailable", message: "Skipped: circuit half-open and another request is probing the endpoint", retryAfter: 1, skipped: true };
}

function retryAfterSeconds(response: Response): number | undefined {
  const header = response.headers.get("retry-after");
  if (!header) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return Math.ceil(seconds);
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, Math.ceil((date - Date.now()) / 1000));
}

/** A failure thrown by `consume`, recorded like an HTTP failure. */
export function attemptFailure(errorType: UpstreamErrorType, message: string): GatewayError {
  return new GatewayError("upstream_error", message, { metadata: { error_type: errorType } });
}

/** The error type and message of anything thrown while talking to an upstream. */
export function describeError(error: unknown): { errorType: UpstreamErrorType; message: string } {
  if (error instanceof GatewayError) {
    const type = error.metadata?.error_type;
    return { errorType: typeof type === "string" ? (type as UpstreamErrorType) : "server", message: error.message };
  }
  const message = error instanceof Error ? error.message : String(error);
  return { errorType: "provider_unavailable", message: `Connection to upstream failed: ${message}` };
}

/**
 * Try `candidates` from `from` on. `consume` turns a 2xx response into a value (reading the body,
 * or the first events of a stream); if it throws, the attempt is recorded and the next candidate
 * is tried. `onOpened` runs when an upstream answers 2xx headers (the stream commits there).
 * Returns null when every candidate failed; throws only for client errors and client disconnects.
 */
export async function withFailover<T>(
  req: ChatRequest,
  candidates: readonly Candidate[],
  attempts: AttemptRecord[],
  opts: FailoverOptions,
  consume: (opened: OpenedUpstream, signal: AbortSignal) => Promise<T>,
  onOpened?: (opened: OpenedUpstream) => void,
): Promise<{ value: T; opened: OpenedUpstream } | null> {
  const fetcher = opts.fetcher ?? fetch;
  budgets.delete(attempts);
  const maxAttempts = opts.maxAttempts ?? Infinity;
  const deadline = opts.deadline ?? Infinity;
  for (const candidate of candidates) {
    if (opts.clientSignal.aborted) throw new GatewayError("request_timeout", "Client closed the request");
    if (callsMade(attempts) >= maxAttempts || Date.now() >= deadline) {
      const left = candidates.length - candidates.indexOf(candidate);
      budgets.set(
        attempts,
        callsMade(attempts) >= maxAttempts
          ? `Stopped after ${maxAttempts} upstream calls (the attempt budget); ${left} more endpoint(s) not tried.`
          : `Stopped: the request's time budget ran out; ${left} more endpoint(s) not tried.`,
      );
      break;
    }
    const skip = await skipReason(candidate, Date.now(), opts.health);
    if (skip) {
      attempts.push({ provider: candidate.endpoint.provider.name, model: candidate.model.id, ms: 0, ...skip });
      continue;
    }
    const adapter = adapterFor(candidate.target.family);
    // A request the family cannot express is the client's error, not the endpoint's.
    const request = adapter.buildRequest(req, candidate.target, opts.stream);
    const controller = new AbortController();
    const signal = AbortSignal.any([controller.signal, opts.clientSignal]);
    const timer = new AttemptDeadline(Math.max(1, Math.min(opts.connectTimeoutMs, deadline - Date.now())), () => controller.abort(new DOMException("upstream timeout", "TimeoutError")));
    const started = Date.now();
    const record = (r: Omit<AttemptRecord, "provider" | "model" | "ms">) => {
      const at = Date.now();
      attempts.push({ provider: candidate.endpoint.provider.name, model: candidate.model.id, ms: at - started, ...r });
      opts.health?.report({
        endpointId: candidate.endpoint.id,
        at,
        ok: false,
        errorType: r.errorType,
        ...(r.retryAfter !== undefined ? { retryAfterSeconds: r.retryAfter } : {}),
      });
    };

    let response: Response;
    try {
      response = await fetcher(request.url, { method: "POST", headers: request.headers, body: request.body, signal });
    } catch (error) {
      timer.clear();
      if (opts.clientSignal.aborted) throw new GatewayError("request_timeout", "Client closed the request");
      record({
        status: null,
        ...(timer.expired ? { errorType: "timeout", message: "Upstream did not respond in time" } : describeError(error)),
      });
      continue;
    }

    if (!response.ok) {
      // An error body that never ends is bounded by what is left of the connect timeout.
      const body = await timer.within(readErrorBody(response)).catch(() => "");
      timer.clear();
      const failure = adapter.parseError(response.status, body);
      const retryAfter = response.status === 429 ? retryAfterSeconds(response) : undefined;
      record({ status: response.status, ...failure, ...(retryAfter !== undefined ? { retryAfter } : {}) });
      if (!isRetryable(failure.errorType)) return null;
      continue;
    }

    const opened: OpenedUpstream = { candidate, response, controller, deadline: timer, startedAt: started, consumedAt: null };
    onOpened?.(opened);
    try {
      const value = await consume(opened, signal);
      timer.clear();
      opened.consumedAt = Date.now();
      if (opts.reportSuccess) opts.health?.report({ endpointId: candidate.endpoint.id, at: opened.consumedAt, ok: true, latencyMs: opened.consumedAt - started });
      return { value, opened };
    } catch (error) {
      timer.clear();
      controller.abort();
      if (opts.clientSignal.aborted) throw new GatewayError("request_timeout", "Client closed the request");
      record({ status: response.status, ...describeError(error) });
    }
  }
  return null;
}

/**
 * The client-facing error once every attempt failed: 429 when every endpoint was rate limited
 * (Retry-After: the soonest any of them frees up), 503 when every endpoint was skipped for an
 * open circuit, 408 when every call timed out, 400/403 for a request the provider refused,
 * otherwise 502. The message names each provider and keeps its own words; a loop cut short by
 * its attempt budget says so.
 */
export function failureError(attempts: readonly AttemptRecord[]): GatewayError {
  const budget = budgets.get(attempts) ?? null;
  const last = attempts.at(-1);
  if (!last) return new GatewayError("no_endpoints", budget ?? "No endpoint was available for this request");
  const previous_errors = attempts.map((a) => ({
    provider: a.provider,
    model: a.model,
    code: a.status,
    error_type: a.errorType,
    message: a.message,
    ...(a.skipped ? { skipped: true } : {}),
  }));
  const metadata = { error_type: last.errorType, provider_name: last.provider, raw: last.message, previous_errors, ...(budget ? { budget } : {}) };
  const calls = callsMade(attempts);
  const summary =
    attempts.length === 1
      ? `${last.provider}: ${last.message}`
      : `${calls === attempts.length ? `All ${calls} attempts failed.` : `${calls} of ${attempts.length} endpoints called, none answered.`} ${attempts
          .map((a) => `${a.provider} (${a.skipped ? "skipped" : (a.status ?? a.errorType)}): ${a.message}`)
          .join("; ")}`;
  const message = budget ? `${summary} ${budget}` : summary;
  const soonest = () => String(Math.max(1, Math.min(...attempts.map((a) => a.retryAfter ?? 1))));
  if (attempts.every((a) => a.errorType === "rate_limit_exceeded")) {
    return new GatewayError("rate_limited", message, { metadata, headers: { "retry-after": soonest() } });
  }
  if (attempts.every((a) => a.skipped)) return new GatewayError("unavailable", message, { metadata, headers: { "retry-after": soonest() } });
  if (attempts.every((a) => a.errorType === "timeout")) return new GatewayError("request_timeout", message, { metadata });
  if (last.errorType === "content_filter") return new GatewayError("forbidden", message, { metadata });
  if (last.errorType === "invalid_request") return new GatewayError("bad_request", message, { metadata });
  return new GatewayError("upstream_error", message, { metadata });
}
