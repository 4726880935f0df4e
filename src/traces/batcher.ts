/**
 * @module traces/batcher
 * Micro-batching on the way into a TRACES queue (window-batcher.ts says how a window works and
 * why it loses nothing). Queues bills every message (write, read, delete: 3 operations per
 * 64 KB), so the traces one isolate produces within a short window (TRACE_BATCH_WINDOW_MS) leave
 * together: packed into batch messages (`{ v: 1, traces }`, up to 64 KB each, traces/messages.ts)
 * and sent with one `sendBatch`. At one trace per request that is what turns "3 operations per
 * trace" into "3 operations per message, shared by its traces". A `sendBatch` that fails drops
 * the traces it carried together (logged), where each `send` would have dropped one.
 *
 * One window per queue binding, so TRACES and TRACES_EU never share a message. A window never
 * holds more than one `sendBatch` call may carry (TRACE_WINDOW_MAX_BYTES) or
 * TRACE_WINDOW_MAX_TRACES.
 */
import { WindowBatcher } from "../window-batcher";
import { chunkForSendBatch, MAX_TRACES_PER_MESSAGE, packTraces, SEND_BATCH_MAX_BYTES, traceBatch, traceBatchBytes, type TraceBatch } from "./messages";
import type { Trace } from "./schema";

/**
 * How long the first trace of a window waits for company. Long enough to gather the traces of
 * concurrent requests in a busy isolate, short next to the consumer's own batching (seconds), and
 * far inside the 30 s `waitUntil` allows after a response.
 */
export const TRACE_BATCH_WINDOW_MS = 50;
/** A window never holds more than one `sendBatch` call may carry. */
export const TRACE_WINDOW_MAX_BYTES = SEND_BATCH_MAX_BYTES;
/** Nor more than four batches' worth of traces (small traces fill a batch by count first). */
export const TRACE_WINDOW_MAX_TRACES = 4 * MAX_TRACES_PER_MESSAGE;
/**
 * A waiter whose trace's call has not settled this long after the window's end sends its trace
 * again itself: a `sendBatch` takes milliseconds, so this only happens when the request running
 * it is gone. Well inside `waitUntil`'s 30 s.
 */
export const TRACE_SEND_STALL_MS = 10_000;

export interface TraceBatcherOptions {
  /** 0: no waiting beyond the current turn of the event loop (traces added in one burst still share a message). */
  windowMs?: number;
  maxBytes?: number;
  maxTraces?: number;
  stallMs?: number;
}

/** A trace and its JSON size. */
interface Entry {
  trace: Trace;
  bytes: number;
}

export class TraceBatcher {
  readonly #windows: WindowBatcher<Queue, Entry>;

  constructor(options: TraceBatcherOptions = {}) {
    this.#windows = new WindowBatcher<Queue, Entry>(
      "trace",
      sendEntries,
      {
        windowMs: Math.max(0, options.windowMs ?? TRACE_BATCH_WINDOW_MS),
        maxWeight: options.maxBytes ?? TRACE_WINDOW_MAX_BYTES,
        maxItems: Math.max(1, options.maxTraces ?? TRACE_WINDOW_MAX_TRACES),
        stallMs: options.stallMs ?? TRACE_SEND_STALL_MS,
      },
      (e) => ({ generationId: e.trace.generation_id }),
    );
  }

  /**
   * Add a trace that already fits a message (`bytes`: its JSON size) to `queue`'s window. Resolves
   * once the call carrying it has settled (sent, or failed and logged); never rejects. Call it
   * from the request that produced the trace, and hand the promise to that request's `waitUntil`.
   */
  add(queue: Queue, trace: Trace, bytes: number): Promise<void> {
    return this.#windows.add(queue, { trace, bytes }, bytes);
  }
}

interface Outgoing {
  traces: Trace[];
  body: TraceBatch;
  bytes: number;
}

/**
 * Pack entries into batch messages and send them with as few `sendBatch` calls as fit. A call
 * that fails drops the traces it carried (logged); the others still go. Never rejects.
 */
async function sendEntries(queue: Queue, entries: Entry[]): Promise<void> {
  let unsent: Trace[] = entries.map((e) => e.trace);
  try {
    const messages: Outgoing[] = packTraces(entries, (e) => e.bytes).map((carried) => {
      const traces = carried.map((e) => e.trace);
      return { traces, body: traceBatch(traces), bytes: traceBatchBytes(carried.map((e) => e.bytes)) };
    });
    for (const chunk of chunkForSendBatch(messages, (m) => m.bytes)) {
      const carried = chunk.flatMap((m) => m.traces);
      const sent = new Set(carried);
      unsent = unsent.filter((t) => !sent.has(t));
      try {
        await queue.sendBatch(chunk.map((m) => ({ body: m.body, contentType: "json" as const })));
      } catch (error) {
        logDropped(carried, error);
      }
    }
  } catch (error) {
    logDropped(unsent, error);
  }
}

function logDropped(traces: readonly Trace[], error: unknown): void {
  console.error(
    JSON.stringify({
      level: "error",
      msg: "traces could not be enqueued; dropped",
      traces: traces.length,
      generationIds: traces.slice(0, 20).map((t) => t.generation_id),
      workspaceIds: [...new Set(traces.map((t) => t.workspace_id))].slice(0, 20),
      error: error instanceof Error ? error.message : String(error),
    }),
  );
}

/** The isolate's batcher: every request of the isolate adds to its windows. */
export const traceBatcher = new TraceBatcher();
