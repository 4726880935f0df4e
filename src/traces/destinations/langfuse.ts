/**
 * @module traces/destinations/langfuse
 * Langfuse's native ingestion API: `POST <base>/api/public/ingestion` with basic auth (public key
 * : secret key) and a batch of a `trace-create` and a `generation-create` event per trace. Event
 * and object ids derive from the generation id, so a retried delivery updates what the first one
 * wrote instead of duplicating it. Langfuse answers 207 with per-event errors; a trace is
 * delivered when neither of its events failed.
 */
import { z } from "zod";
import { endedAt, traceIdOf, type Trace } from "../schema";
import { DELIVERY_TIMEOUT_MS, isRetryableStatus, networkFailure, outcomeOf, type DeliveryOutcome } from "./http";

export interface LangfuseTarget {
  baseUrl: string;
  publicKey: string;
  secretKey: string;
}

export interface LangfuseEvent {
  id: string;
  timestamp: string;
  type: "trace-create" | "generation-create";
  body: Record<string, unknown>;
}

const iso = (ms: number) => new Date(ms).toISOString();

function metadataOf(trace: Trace): Record<string, unknown> {
  return {
    ...trace.trace.metadata,
    workspace_id: trace.workspace_id,
    key_id: trace.key_id,
    request_id: trace.request_id,
    region: trace.region,
    provider: trace.endpoint?.provider ?? null,
    endpoint_id: trace.endpoint?.id ?? null,
    byok: trace.byok,
    streamed: trace.streamed,
    cancelled: trace.cancelled,
    status: trace.status,
    finish_reason: trace.finish_reason,
    native_finish_reason: trace.native_finish_reason,
    charged_micros: trace.cost.charged_micros,
    upstream_micros: trace.cost.upstream_micros,
    attempts: trace.attempts,
  };
}

/** The two events of one trace. */
export function langfuseEvents(trace: Trace): LangfuseEvent[] {
  const traceId = traceIdOf(trace);
  const name = `chat ${trace.model}`;
  const input = trace.content?.input;
  const answer = trace.content?.output;
  const output = answer
    ? { role: "assistant", content: answer.text, ...(answer.reasoning ? { reasoning: answer.reasoning } : {}), ...(answer.tool_calls?.length ? { tool_calls: answer.tool_calls } : {}) }
    : undefined;
  const timestamp = iso(trace.started_at);
  return [
    {
      id: `${trace.generation_id}-trace`,
      timestamp,
      type: "trace-create",
      body: {
        id: traceId,
        timestamp,
        name: trace.trace.trace_name ?? name,
        ...(trace.user ? { userId: trace.user } : {}),
        ...(trace.session_id ? { sessionId: trace.session_id } : {}),
        ...(input !== undefined ? { input, output } : {}),
        metadata: { workspace_id: trace.workspace_id, ...trace.trace.metadata },
      },
    },
    {
      id: `${trace.generation_id}-generation`,
      timestamp,
      type: "generation-create",
      body: {
        id: trace.generation_id,
        traceId,
        ...(trace.trace.parent_span_id ? { parentObservationId: trace.trace.parent_span_id } : {}),
        name: trace.trace.generation_name ?? name,
        startTime: timestamp,
        endTime: iso(endedAt(trace)),
        ...(trace.timings.ttft_ms !== null ? { completionStartTime: iso(trace.started_at + trace.timings.ttft_ms) } : {}),
        model: trace.endpoint?.upstream_model ?? trace.model,
        ...(input !== undefined ? { input, output } : {}),
        usageDetails: {
          input: trace.tokens.prompt,
          output: trace.tokens.completion,
          total: trace.tokens.prompt + trace.tokens.completion,
          cache_read_input_tokens: trace.tokens.cached,
          cache_creation_input_tokens: trace.tokens.cache_write,
          reasoning_tokens: trace.tokens.reasoning,
        },
        // What the provider charges for the call; what the workspace paid is in the metadata.
        costDetails: { total: trace.cost.upstream_micros / 1_000_000 },
        level: trace.error ? "ERROR" : "DEFAULT",
        ...(trace.error ? { statusMessage: `${trace.error.type}: ${trace.error.message}` } : {}),
        metadata: metadataOf(trace),
      },
    },
  ];
}

const multiStatusSchema = z.looseObject({
  errors: z.array(z.looseObject({ id: z.string(), status: z.number(), message: z.string().optional(), error: z.unknown().optional() })).default([]),
});

export function ingestionUrl(baseUrl: string): string {
  return `${baseUrl.replace(/\/+$/, "")}/api/public/ingestion`;
}

export async function deliverLangfuse(target: LangfuseTarget, traces: readonly Trace[]): Promise<DeliveryOutcome[]> {
  const url = ingestionUrl(target.baseUrl);
  const what = `Langfuse ${new URL(url).host}`;
  const batch = traces.flatMap(langfuseEvents);
  // A 207 body is read for per-event errors, so this request does not go through `post`.
  let response: Response;
  try {
    response = await fetch(url, {
      method: "POST",
      headers: { authorization: `Basic ${btoa(`${target.publicKey}:${target.secretKey}`)}`, "content-type": "application/json" },
      body: JSON.stringify({ batch }),
      signal: AbortSignal.timeout(DELIVERY_TIMEOUT_MS),
    });
  } catch (error) {
    const outcome = networkFailure(what, error);
    return traces.map(() => outcome);
  }
  if (response.status !== 207) {
    const outcome = await outcomeOf(response, what);
    return traces.map(() => outcome);
  }
  const parsed = multiStatusSchema.safeParse(await response.json().catch(() => null));
  const errors = new Map((parsed.success ? parsed.data.errors : []).map((e) => [e.id, e]));
  return traces.map((trace): DeliveryOutcome => {
    const failed = [errors.get(`${trace.generation_id}-trace`), errors.get(`${trace.generation_id}-generation`)].filter((e) => e !== undefined);
    if (failed.length === 0) return { ok: true, status: 207 };
    const worst = failed.reduce((a, b) => (isRetryableStatus(b.status) ? b : a));
    return {
      ok: false,
      retryable: failed.some((e) => isRetryableStatus(e.status)),
      error: `${what} refused event ${worst.id}: HTTP ${worst.status}${worst.message ? ` ${worst.message}` : ""}`.slice(0, 500),
      status: worst.status,
      retryAfterSeconds: null,
    };
  });
}
