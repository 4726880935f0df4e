/**
 * @module routing/failover
 * The attempt loop: try candidates in order until one answers, as long as nothing has reached the
 * client. Each attempt has its own abort controller (connect timeout, first-token timeout, client
 * disconnect) and leaves a record, so a final failure names every endpoint that was tried.
 */
import { GatewayError, type UpstreamErrorType } from "../errors";
import { adapterFor } from "../providers/registry";
import type { ChatRequest } from "../schemas/openai";
import type { Candidate } from "./plan";

export interface AttemptRecord {
  provider: string;
  model: string;
  /** Upstream HTTP status, or null when no response arrived. */
  status: number | null;
  errorType: UpstreamErrorType;
  message: string;
  /** Seconds, from a 429's Retry-After. */
  retryAfter?: number;
  ms: number;
}

export interface OpenedUpstream {
  candidate: Candidate;
  response: Response;
  /** Aborting it cancels this attempt's fetch and body. */
  controller: AbortController;
}

export interface FailoverOptions {
  stream: boolean;
  connectTimeoutMs: number;
  /** The client's request signal: when it aborts, the loop stops and the upstream is cancelled. */
  clientSignal: AbortSignal;
  fetcher?: typeof fetch;
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
  for (const candidate of candidates) {
    if (opts.clientSignal.aborted) throw new GatewayError("request_timeout", "Client closed the request");
    const adapter = adapterFor(candidate.target.family);
    // A request the family cannot express is the client's error, not the endpoint's.
    const request = adapter.buildRequest(req, candidate.target, opts.stream);
    const controller = new AbortController();
    const signal = AbortSignal.any([controller.signal, opts.clientSignal]);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort(new DOMException("connect timeout", "TimeoutError"));
    }, opts.connectTimeoutMs);
    const started = Date.now();
    const record = (r: Omit<AttemptRecord, "provider" | "model" | "ms">) =>
      attempts.push({ provider: candidate.endpoint.provider.name, model: candidate.model.id, ms: Date.now() - started, ...r });

    let response: Response;
    try {
      response = await fetcher(request.url, { method: "POST", headers: request.headers, body: request.body, signal });
    } catch (error) {
      clearTimeout(timer);
      if (opts.clientSignal.aborted) throw new GatewayError("request_timeout", "Client closed the request");
      record({
        status: null,
        ...(timedOut ? { errorType: "timeout", message: "Upstream did not respond in time" } : describeError(error)),
      });
      continue;
    }
    clearTimeout(timer);

    if (!response.ok) {
      const failure = adapter.parseError(response.status, await readErrorBody(response));
      const retryAfter = response.status === 429 ? retryAfterSeconds(response) : undefined;
      record({ status: response.status, ...failure, ...(retryAfter !== undefined ? { retryAfter } : {}) });
      if (!isRetryable(failure.errorType)) return null;
      continue;
    }

    const opened: OpenedUpstream = { candidate, response, controller };
    onOpened?.(opened);
    try {
      return { value: await consume(opened, signal), opened };
    } catch (error) {
      controller.abort();
      if (opts.clientSignal.aborted) throw new GatewayError("request_timeout", "Client closed the request");
      record({ status: response.status, ...describeError(error) });
    }
  }
  return null;
}

/**
 * The client-facing error once every attempt failed: 429 when every endpoint was rate limited,
 * 408 when every one timed out, 400/403 for a request the provider refused, otherwise 502; the
 * message names the provider and keeps its own words.
 */
export function failureError(attempts: readonly AttemptRecord[]): GatewayError {
  const last = attempts.at(-1);
  if (!last) return new GatewayError("no_endpoints", "No endpoint was available for this request");
  const previous_errors = attempts.map((a) => ({
    provider: a.provider,
    model: a.model,
    code: a.status,
    error_type: a.errorType,
    message: a.message,
  }));
  const metadata = { error_type: last.errorType, provider_name: last.provider, raw: last.message, previous_errors };
  const message =
    attempts.length === 1
      ? `${last.provider}: ${last.message}`
      : `All ${attempts.length} attempts failed. ${attempts.map((a) => `${a.provider} (${a.status ?? a.errorType}): ${a.message}`).join("; ")}`;
  if (attempts.every((a) => a.errorType === "rate_limit_exceeded")) {
    const wait = Math.max(1, ...attempts.map((a) => a.retryAfter ?? 1));
    return new GatewayError("rate_limited", message, { metadata, headers: { "retry-after": String(wait) } });
  }
  if (attempts.every((a) => a.errorType === "timeout")) return new GatewayError("request_timeout", message, { metadata });
  if (last.errorType === "content_filter") return new GatewayError("forbidden", message, { metadata });
  if (last.errorType === "invalid_request") return new GatewayError("bad_request", message, { metadata });
  return new GatewayError("upstream_error", message, { metadata });
}
