/**
 * @module traces/producer
 * The request path's one call into tracing: `enqueueTrace(env, trace)`. The trace is fitted to a
 * queue message (content that would push it past the limit goes to R2 first, per
 * trace) and handed to the isolate's batcher, which sends it to the TRACES queue together with
 * the other traces of its 50 ms window (traces/batcher.ts). It never throws: a trace is worth less
 * than the request it describes, so every failure is logged and swallowed. The caller hands the
 * returned promise to `waitUntil` (or awaits it in a stream's flush), never to the client's
 * critical path; it resolves once the message carrying this trace was sent.
 *
 * The trace is not validated here: it is built by typed code from a request already validated at
 * the edge, and the consumer validates every trace it reads (one at a time, so a bad one never
 * costs its batch neighbours). Parsing it here too cost more CPU per request than enqueueing it.
 */
import { traceBatcher, type TraceBatcher } from "./batcher";
import { offloadContent, withoutContent } from "./content";
import { getDestinations } from "./destination-store";
import { jsonBytes, MAX_TRACE_MESSAGE_BYTES } from "./messages";
import type { Trace } from "./schema";

/** The bindings the producer uses: the queue, and the bucket for content too large for it. */
export type ProducerEnv = Pick<Env, "TRACES"> & Partial<Pick<Env, "TRACE_CONTENT">>;

/**
 * Fit and enqueue one trace; resolves once it is enqueued (or dropped and logged).
 * `batcher`: the isolate's, unless a test brings its own window.
 */
export async function enqueueTrace(env: ProducerEnv, trace: Trace, batcher: TraceBatcher = traceBatcher): Promise<void> {
  try {
    const fitted = await fitForQueue(env, trace);
    if (fitted) await batcher.add(env.TRACES, fitted.trace, fitted.bytes);
  } catch (error) {
    log("error", "trace could not be enqueued; dropped", trace, { error: error instanceof Error ? error.message : String(error) });
  }
}

/**
 * Enqueue `trace` if its workspace has any destination: a workspace that exports nowhere pays no
 * queue operations. The destinations come from the isolate cache (a D1 read on a miss, here in
 * `waitUntil`, never on the request's path). Never throws.
 */
export async function enqueueWantedTrace(env: ProducerEnv & Pick<Env, "DB" | "MASTER_KEY">, trace: Trace, batcher: TraceBatcher = traceBatcher): Promise<void> {
  let wanted: boolean;
  try {
    wanted = (await getDestinations(env, trace.workspace_id)).some((d) => d.enabled);
  } catch (error) {
    // Unknown: enqueue anyway, the consumer decides (a lost trace is worse than a wasted message).
    log("warn", "trace destinations could not be read; enqueued anyway", trace, { error: error instanceof Error ? error.message : String(error) });
    wanted = true;
  }
  if (wanted) await enqueueTrace(env, trace, batcher);
}

/**
 * The trace as it will travel, with its serialized size: content dropped for zero-retention
 * requests, moved to R2 when too large, and the client's custom trace metadata dropped as a last
 * resort (it is the only unbounded field left). Null when even that does not fit. Each trace is
 * fitted on its own, so one large trace never pushes its batch's neighbours to R2.
 */
async function fitForQueue(env: ProducerEnv, trace: Trace): Promise<{ trace: Trace; bytes: number } | null> {
  const fits = (t: Trace) => {
    const bytes = jsonBytes(t);
    return bytes <= MAX_TRACE_MESSAGE_BYTES ? { trace: t, bytes } : null;
  };
  const { content_ref: _callerRef, ...fresh } = trace;
  let message: Trace = trace.zero_retention ? withoutContent(trace) : fresh;
  const whole = fits(message);
  if (whole) return whole;
  if (message.content) {
    if (env.TRACE_CONTENT) {
      message = await offloadContent(env.TRACE_CONTENT, message, message.content);
    } else {
      log("warn", "trace content too large for a message and TRACE_CONTENT is not bound; sent without content", trace);
      message = withoutContent(message);
    }
    const offloaded = fits(message);
    if (offloaded) return offloaded;
  }
  const { metadata: _metadata, ...context } = message.trace;
  message = { ...message, trace: context };
  log("warn", "trace metadata too large for a message; sent without it", trace);
  const bare = fits(message);
  if (bare) return bare;
  log("error", "trace too large for a message even without content; dropped", trace);
  return null;
}

function log(level: "warn" | "error", msg: string, trace: Partial<Trace> | null | undefined, extra: Record<string, unknown> = {}): void {
  // The trace may be anything here (a caller's bug): read its ids defensively, never throw.
  const line = JSON.stringify({ level, msg, generationId: trace?.generation_id, workspaceId: trace?.workspace_id, ...extra });
  if (level === "error") console.error(line);
  else console.warn(line);
}
