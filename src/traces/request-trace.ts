/**
 * @module traces/request-trace
 * One request's trace, built from what the chat route knows when the request ends: the client's
 * request (ids, `trace` object, messages), the endpoint that answered, usage and charge, timings,
 * every attempt and — unless the request asked for zero data retention — what was said.
 * Destinations strip content again in privacy mode; this is only the producer's side.
 */
import type { KeyContext } from "../auth/api-keys";
import type { Charge } from "../billing/settlement";
import type { FinishReason, Usage } from "../providers/types";
import type { AttemptRecord } from "../routing/failover";
import type { Candidate } from "../routing/plan";
import type { ChatRequest } from "../schemas/openai";
import { TRACE_VERSION, traceContextSchema, type Trace, type TraceContent, type TraceContext } from "./schema";

export interface RequestTraceInput {
  req: ChatRequest;
  auth: KeyContext;
  generationId: string;
  requestId: string;
  /** The `x-session-id` header, used when the body has no `session_id`. */
  headerSessionId: string | null;
  /** Region that processed the request. */
  region: string;
  startedAt: number;
  endedAt: number;
  /** When the first content reached the client; null when none did. */
  firstTokenAt: number | null;
  /** Failed (or skipped) attempts, in order. */
  attempts: readonly AttemptRecord[];
  /** The endpoint that answered and when its attempt started; null when none did. */
  served: { candidate: Candidate; attemptStartedAt: number } | null;
  usage: Usage | null;
  charge: Charge | null;
  finishReason: FinishReason | null;
  nativeFinishReason: string | null;
  streamed: boolean;
  cancelled: boolean;
  /** HTTP status the client got (200 for a stream that failed after its first byte). */
  status: number;
  error: { type: string; message: string } | null;
  /** What the model said; null when nothing is kept (zero retention) or nothing was said. */
  output: TraceContent["output"] | null;
}

/** The request asked that its content be kept nowhere: `provider.zdr`. */
export function isZeroRetention(req: ChatRequest): boolean {
  return req.provider?.zdr === true;
}

/** The client's `trace` object (OpenRouter Broadcast), or an empty one when absent or malformed. */
function traceContext(req: ChatRequest): TraceContext {
  const raw: unknown = (req as Record<string, unknown>).trace;
  const parsed = traceContextSchema.safeParse(raw ?? {});
  return parsed.success ? parsed.data : {};
}

const NO_USAGE = { prompt: 0, completion: 0, cached: 0, cache_write: 0, reasoning: 0 };

export function requestTrace(input: RequestTraceInput): Trace {
  const { req, served, usage, charge } = input;
  const zeroRetention = isZeroRetention(req);
  const attempts: Trace["attempts"] = input.attempts.map((a) => ({ provider: a.provider, model: a.model, status: a.status, error_type: a.errorType, ms: a.ms }));
  if (served) {
    attempts.push({
      provider: served.candidate.endpoint.provider.name,
      model: served.candidate.model.id,
      status: 200,
      error_type: null,
      ms: Math.max(0, input.endedAt - served.attemptStartedAt),
    });
  }
  const trace: Trace = {
    v: TRACE_VERSION,
    generation_id: input.generationId,
    request_id: input.requestId,
    trace: traceContext(req),
    session_id: req.session_id ?? input.headerSessionId?.slice(0, 256) ?? null,
    user: req.user ?? null,
    workspace_id: input.auth.workspace.id,
    key_id: input.auth.key.id,
    model: served?.candidate.model.id ?? req.model ?? req.models?.[0] ?? "unknown",
    endpoint: served
      ? {
          id: served.candidate.endpoint.id,
          provider: served.candidate.endpoint.providerSlug,
          provider_name: served.candidate.endpoint.provider.name,
          upstream_model: served.candidate.endpoint.upstreamModel,
          region: served.candidate.endpoint.effectiveRegion,
        }
      : null,
    region: input.region,
    started_at: input.startedAt,
    timings: {
      latency_ms: Math.max(0, input.endedAt - input.startedAt),
      ttft_ms: input.firstTokenAt === null ? null : Math.max(0, input.firstTokenAt - input.startedAt),
      generation_ms: input.firstTokenAt === null ? null : Math.max(0, input.endedAt - input.firstTokenAt),
    },
    tokens: usage
      ? { prompt: usage.promptTokens, completion: usage.completionTokens, cached: usage.cachedTokens, cache_write: usage.cacheWriteTokens, reasoning: usage.reasoningTokens }
      : NO_USAGE,
    cost: { charged_micros: charge?.chargedMicros ?? 0, upstream_micros: charge?.upstreamMicros ?? 0 },
    finish_reason: input.finishReason,
    native_finish_reason: input.nativeFinishReason,
    streamed: input.streamed,
    cancelled: input.cancelled,
    byok: charge?.byok ?? false,
    status: input.status,
    error: input.error ? { type: input.error.type, message: input.error.message.slice(0, 4096) } : null,
    attempts: attempts.slice(0, 64),
    zero_retention: zeroRetention,
  };
  if (!zeroRetention) {
    trace.content = {
      input: req.messages.map((m) => ({ ...m })),
      output: input.output ?? { text: null },
    };
  }
  return trace;
}
