/**
 * @module traces/schema
 * The trace of one request, version 1: what the request path hands to `enqueueTrace`, what the
 * TRACES queue carries and what every destination is built from. Versioned (`v`) because messages
 * outlive deployments: a consumer of a newer Worker can still read what an older one enqueued.
 *
 * Content (input messages, output text) is optional by design: it is absent when the request was
 * zero-retention, and replaced by `content_ref` (an R2 key) when it would not fit in a queue
 * message (traces/content.ts). Everything else is metadata and always present.
 */
import { z } from "zod";

export const TRACE_VERSION = 1;

const id = z.string().min(1).max(256);
const count = z.number().int().nonnegative();

/** The request's `trace` object (OpenRouter Broadcast): the known keys, any other key as metadata. */
export const traceContextSchema = z.object({
  trace_id: id.optional(),
  trace_name: z.string().max(256).optional(),
  span_name: z.string().max(256).optional(),
  generation_name: z.string().max(256).optional(),
  parent_span_id: id.optional(),
  metadata: z.record(z.string(), z.unknown()).optional(),
});
export type TraceContext = z.infer<typeof traceContextSchema>;

/** What the model was asked and what it answered. Messages are kept as the client sent them. */
export const traceContentSchema = z.object({
  input: z.array(z.looseObject({ role: z.string() })),
  output: z.object({
    text: z.string().nullable(),
    reasoning: z.string().nullable().optional(),
    tool_calls: z.array(z.unknown()).optional(),
  }),
});
export type TraceContent = z.infer<typeof traceContentSchema>;

/** Where content that did not fit in the message lives: a key in the `TRACE_CONTENT` bucket. */
export const contentRefSchema = z.object({ key: z.string().min(1).max(1024), bytes: count });
export type ContentRef = z.infer<typeof contentRefSchema>;

/** One upstream attempt, in order; the last one answered unless the request failed. */
export const traceAttemptSchema = z.object({
  provider: z.string().max(128),
  model: z.string().max(256).optional(),
  /** Upstream HTTP status, or null when no response arrived. */
  status: z.number().int().nullable(),
  /** Why it failed (OpenRouter's `error_type`), null for the attempt that answered. */
  error_type: z.string().max(64).nullable(),
  ms: count,
});

export const traceSchema = z.object({
  v: z.literal(TRACE_VERSION),
  generation_id: id,
  request_id: id,
  trace: traceContextSchema,
  session_id: z.string().max(256).nullable(),
  user: z.string().max(128).nullable(),
  workspace_id: id,
  key_id: id,
  /** The model the client asked for (catalog slug, e.g. `openai/gpt-4o-mini`). */
  model: z.string().min(1).max(256),
  /** The endpoint that served the request; null when no upstream answered. */
  endpoint: z
    .object({
      id,
      /** Provider slug, e.g. `openai`, `azure-eu`. */
      provider: z.string().max(128),
      provider_name: z.string().max(256),
      upstream_model: z.string().max(256),
      region: z.string().max(32),
    })
    .nullable(),
  /** Region that processed the request (`eu` | `global`). */
  region: z.string().max(32),
  /** Epoch milliseconds of the request's arrival. */
  started_at: count,
  timings: z.object({
    /** Arrival to last byte. */
    latency_ms: count,
    /** Arrival to first content; null when none arrived. */
    ttft_ms: count.nullable(),
    /** First content to last byte. */
    generation_ms: count.nullable(),
  }),
  tokens: z.object({ prompt: count, completion: count, cached: count, cache_write: count, reasoning: count }),
  /** Integers in micro-dollars, like every amount of money in Switchyard. */
  cost: z.object({ charged_micros: z.number().int(), upstream_micros: z.number().int() }),
  finish_reason: z.string().max(64).nullable(),
  native_finish_reason: z.string().max(256).nullable(),
  streamed: z.boolean(),
  cancelled: z.boolean(),
  byok: z.boolean(),
  /** HTTP status the client received (200 for a stream that failed after its first byte). */
  status: z.number().int(),
  error: z.object({ type: z.string().max(64), message: z.string().max(4096) }).nullable(),
  attempts: z.array(traceAttemptSchema).max(64),
  /** The request asked for zero data retention: its content is never enqueued nor delivered. */
  zero_retention: z.boolean(),
  content: traceContentSchema.optional(),
  content_ref: contentRefSchema.optional(),
});
export type Trace = z.infer<typeof traceSchema>;

/** The trace's id in observability tools: the client's `trace.trace_id`, else the generation id. */
export function traceIdOf(trace: Trace): string {
  return trace.trace.trace_id ?? trace.generation_id;
}

/** Epoch milliseconds of the last byte. */
export function endedAt(trace: Trace): number {
  return trace.started_at + trace.timings.latency_ms;
}
