/**
 * @module traces/producer
 * The request path's one call into tracing: `enqueueTrace(env, trace)`. One `send` to the TRACES
 * queue; content that would push the message past the queue's limit goes to R2 first. It never
 * throws: a trace is worth less than the request it describes, so every failure is logged and
 * swallowed. The caller hands the returned promise to `waitUntil` (or awaits it in a stream's
 * flush), never to the client's critical path.
 */
import { offloadContent, withoutContent } from "./content";
import { getDestinations } from "./destination-store";
import { jsonBytes, MAX_TRACE_MESSAGE_BYTES } from "./messages";
import { traceSchema, type Trace } from "./schema";

/** The bindings the producer uses: the queue, and the bucket for content too large for it. */
export type ProducerEnv = Pick<Env, "TRACES"> & Partial<Pick<Env, "TRACE_CONTENT">>;

/** Validate, fit and send one trace; resolves once it is enqueued (or dropped and logged). */
export async function enqueueTrace(env: ProducerEnv, trace: Trace): Promise<void> {
  try {
    const parsed = traceSchema.safeParse(trace);
    if (!parsed.success) {
      log("error", "trace does not match the schema; dropped", trace, { issues: parsed.error.issues.slice(0, 5) });
      return;
    }
    const message = await fitForQueue(env, parsed.data);
    if (message) await env.TRACES.send(message, { contentType: "json" });
  } catch (error) {
    log("error", "trace could not be enqueued; dropped", trace, { error: error instanceof Error ? error.message : String(error) });
  }
}

/**
 * Enqueue `trace` if its workspace has any destination: a workspace that exports nowhere pays no
 * queue operations. The destinations come from the isolate cache (a D1 read on a miss, here in
 * `waitUntil`, never on the request's path). Never throws.
 */
export async function enqueueWantedTrace(env: ProducerEnv & Pick<Env, "DB" | "MASTER_KEY">, trace: Trace): Promise<void> {
  let wanted: boolean;
  try {
    wanted = (await getDestinations(env, trace.workspace_id)).some((d) => d.enabled);
  } catch (error) {
    // Unknown: enqueue anyway, the consumer decides (a lost trace is worse than a wasted message).
    log("warn", "trace destinations could not be read; enqueued anyway", trace, { error: error instanceof Error ? error.message : String(error) });
    wanted = true;
  }
  if (wanted) await enqueueTrace(env, trace);
}

/**
 * The message to send, measured by its real serialized size: content dropped for zero-retention
 * requests, moved to R2 when too large, and the client's custom trace metadata dropped as a last
 * resort (it is the only unbounded field left). Null when even that does not fit.
 */
async function fitForQueue(env: ProducerEnv, trace: Trace): Promise<Trace | null> {
  const { content_ref: _callerRef, ...fresh } = trace;
  let message: Trace = trace.zero_retention ? withoutContent(trace) : fresh;
  if (jsonBytes(message) <= MAX_TRACE_MESSAGE_BYTES) return message;
  if (message.content) {
    if (env.TRACE_CONTENT) {
      message = await offloadContent(env.TRACE_CONTENT, message, message.content);
    } else {
      log("warn", "trace content too large for a message and TRACE_CONTENT is not bound; sent without content", trace);
      message = withoutContent(message);
    }
    if (jsonBytes(message) <= MAX_TRACE_MESSAGE_BYTES) return message;
  }
  const { metadata: _metadata, ...context } = message.trace;
  message = { ...message, trace: context };
  log("warn", "trace metadata too large for a message; sent without it", trace);
  if (jsonBytes(message) <= MAX_TRACE_MESSAGE_BYTES) return message;
  log("error", "trace too large for a message even without content; dropped", trace);
  return null;
}

function log(level: "warn" | "error", msg: string, trace: Partial<Trace> | null | undefined, extra: Record<string, unknown> = {}): void {
  // The trace may be anything here (a caller's bug): read its ids defensively, never throw.
  const line = JSON.stringify({ level, msg, generationId: trace?.generation_id, workspaceId: trace?.workspace_id, ...extra });
  if (level === "error") console.error(line);
  else console.warn(line);
}
