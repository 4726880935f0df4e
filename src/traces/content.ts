/**
 * @module traces/content
 * Trace content (input messages, output text) and where it lives. Inline in the message when the
 * whole trace fits; otherwise in the `TRACE_CONTENT` R2 bucket under
 * `traces/<workspace>/<yyyy-mm-dd>/<generation id>.json`, with the message carrying only the key.
 * Destinations that send content read it back when they deliver; private destinations never see
 * it, inline or referenced. Objects are left to the bucket's lifecycle rule (README), which must
 * keep them longer than deliveries can be retried or replayed.
 */
import { traceContentSchema, type Trace, type TraceContent } from "./schema";

/** The R2 key of a trace's content: under its workspace and UTC day, so lifecycle and deletion work by prefix. */
export function contentKey(trace: Pick<Trace, "workspace_id" | "started_at" | "generation_id">): string {
  const day = new Date(trace.started_at).toISOString().slice(0, 10);
  return `traces/${trace.workspace_id}/${day}/${trace.generation_id}.json`;
}

/** The trace without any content field: what privacy mode and zero-retention requests deliver. */
export function withoutContent(trace: Trace): Trace {
  const { content: _content, content_ref: _ref, ...rest } = trace;
  return rest;
}

/** Store the content in R2 and return the trace that refers to it instead of carrying it. */
export async function offloadContent(bucket: R2Bucket, trace: Trace, content: TraceContent): Promise<Trace> {
  const key = contentKey(trace);
  const body = JSON.stringify(content);
  const stored = await bucket.put(key, body, { httpMetadata: { contentType: "application/json" } });
  return { ...withoutContent(trace), content_ref: { key, bytes: stored.size } };
}

/**
 * The trace as one destination receives it: private → no content at all; otherwise with its
 * content inline, read back from R2 when referenced. A missing object (expired by the lifecycle
 * rule before a late replay) delivers the metadata without content; an R2 error throws, so the
 * delivery is retried.
 */
export async function traceForDelivery(bucket: R2Bucket | undefined, trace: Trace, privacy: boolean): Promise<Trace> {
  if (privacy) return withoutContent(trace);
  if (!trace.content_ref) return trace;
  const ref = trace.content_ref;
  const object = bucket ? await bucket.get(ref.key) : null;
  const parsed = object ? traceContentSchema.safeParse(await object.json<unknown>()) : null;
  if (!parsed?.success) {
    console.warn(JSON.stringify({ level: "warn", msg: "trace content not found in R2; delivering without it", key: ref.key, bound: bucket !== undefined }));
    return withoutContent(trace);
  }
  return { ...withoutContent(trace), content: parsed.data };
}
