/**
 * @module traces/batcher
 * Micro-batching on the way into a TRACES queue. Queues bills every message (write, read, delete:
 * 3 operations per 64 KB), so the traces one isolate produces within a short window
 * (TRACE_BATCH_WINDOW_MS) leave together: packed into batch messages (`{ v: 1, traces }`, up to
 * 64 KB each, traces/messages.ts) and sent with one `sendBatch`. At one trace per request that is
 * what turns "3 operations per trace" into "3 operations per message, shared by its traces".
 *
 * Why it loses nothing a single `send` would not: the request path hands the promise `add`
 * returns to `waitUntil`, and that promise resolves only once the call carrying ITS trace has
 * settled (sent, or failed and logged), so every request whose trace waits in a window keeps its
 * own invocation — and the isolate — alive until then.
 *
 * Every request waits in its own context. workerd refuses a promise that `waitUntil` awaits being
 * resolved from another request ("Cannot perform I/O on behalf of a different request"), so no
 * request ever resolves another's promise: each sleeps on its own timer until the window's end,
 * flushes the window if nobody has (the first timer to fire sends it, so no single request has to
 * survive for the window to leave), and otherwise checks on its own timers until the call
 * carrying its trace has settled. If that call never settles (the request running it was torn
 * down), the waiter sends its trace again alone after TRACE_SEND_STALL_MS: at least once, as
 * Queues itself (receivers dedupe by generation id). What is left: a `sendBatch` that fails drops
 * the traces it carried together (logged), where each `send` would have dropped one.
 *
 * One window per queue binding (the Map is keyed by the binding object itself), so TRACES and
 * TRACES_EU never share a message. The runtime hands an isolate's requests the same `env`, hence
 * one window per queue; were it not so, windows would simply hold one trace each.
 *
 * A window is flushed when its timer fires, or at once when it holds what one `sendBatch` may
 * carry (TRACE_WINDOW_MAX_BYTES) or TRACE_WINDOW_MAX_TRACES. Flushing closes it: traces that
 * arrive while its send is in flight open the next window.
 */
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
/** How often a waiter checks on a call another request runs: from 5 ms, doubling to 100 ms. */
const CHECK_FIRST_MS = 5;
const CHECK_MAX_MS = 100;

export interface TraceBatcherOptions {
  /** 0: no waiting beyond the current turn of the event loop (traces added in one burst still share a message). */
  windowMs?: number;
  maxBytes?: number;
  maxTraces?: number;
  stallMs?: number;
}

interface Entry {
  trace: Trace;
  bytes: number;
  /** The call carrying it settled (sent, or failed and logged). */
  settled: boolean;
}

interface Window {
  queue: Queue;
  entries: Entry[];
  bytes: number;
  openedAt: number;
  flushed: boolean;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export class TraceBatcher {
  readonly #windowMs: number;
  readonly #maxBytes: number;
  readonly #maxTraces: number;
  readonly #stallMs: number;
  readonly #open = new Map<Queue, Window>();

  constructor(options: TraceBatcherOptions = {}) {
    this.#windowMs = Math.max(0, options.windowMs ?? TRACE_BATCH_WINDOW_MS);
    this.#maxBytes = options.maxBytes ?? TRACE_WINDOW_MAX_BYTES;
    this.#maxTraces = Math.max(1, options.maxTraces ?? TRACE_WINDOW_MAX_TRACES);
    this.#stallMs = options.stallMs ?? TRACE_SEND_STALL_MS;
  }

  /**
   * Add a trace that already fits a message (`bytes`: its JSON size) to `queue`'s window. Resolves
   * once the call carrying it has settled (sent, or failed and logged); never rejects. Call it
   * from the request that produced the trace, and hand the promise to that request's `waitUntil`.
   */
  async add(queue: Queue, trace: Trace, bytes: number): Promise<void> {
    let window = this.#open.get(queue);
    // A trace that would push the window past one sendBatch goes to the next window; this request
    // sends the full one, and waits for that too (its waitUntil is what keeps the call alive).
    let previous: Promise<void> | null = null;
    if (window && window.bytes + bytes > this.#maxBytes) {
      previous = this.#flush(window);
      window = undefined;
    }
    if (!window) {
      window = { queue, entries: [], bytes: 0, openedAt: Date.now(), flushed: false };
      this.#open.set(queue, window);
    }
    const entry: Entry = { trace, bytes, settled: false };
    window.entries.push(entry);
    window.bytes += bytes;
    const own = window.entries.length >= this.#maxTraces || window.bytes >= this.#maxBytes ? this.#flush(window) : this.#wait(window, entry);
    await Promise.all([previous, own]);
  }

  /** Sleep until the window's end; send it if nobody has, else wait for the call carrying `entry`. */
  async #wait(window: Window, entry: Entry): Promise<void> {
    await sleep(Math.max(0, window.openedAt + this.#windowMs - Date.now()));
    if (!window.flushed) return this.#flush(window);
    const giveUpAt = Date.now() + this.#stallMs;
    for (let pause = CHECK_FIRST_MS; !entry.settled; pause = Math.min(pause * 2, CHECK_MAX_MS)) {
      if (Date.now() >= giveUpAt) {
        console.warn(JSON.stringify({ level: "warn", msg: "trace's batch send did not settle; sending it alone", generationId: entry.trace.generation_id, waitedMs: this.#stallMs }));
        return sendEntries(window.queue, [entry]);
      }
      await sleep(pause);
    }
  }

  /** Close the window (later traces open a new one) and send it from this request. */
  #flush(window: Window): Promise<void> {
    window.flushed = true;
    if (this.#open.get(window.queue) === window) this.#open.delete(window.queue);
    return sendEntries(window.queue, window.entries);
  }
}

interface Outgoing {
  entries: Entry[];
  body: TraceBatch;
  bytes: number;
}

/**
 * Pack entries into batch messages and send them with as few `sendBatch` calls as fit; each
 * entry is marked settled after the call that carried it. Never rejects.
 */
async function sendEntries(queue: Queue, entries: readonly Entry[]): Promise<void> {
  try {
    const messages: Outgoing[] = packTraces(entries, (e) => e.bytes).map((carried) => {
      const body = traceBatch(carried.map((e) => e.trace));
      return { entries: carried, body, bytes: traceBatchBytes(carried.map((e) => e.bytes)) };
    });
    for (const chunk of chunkForSendBatch(messages, (m) => m.bytes)) {
      try {
        await queue.sendBatch(chunk.map((m) => ({ body: m.body, contentType: "json" as const })));
      } catch (error) {
        logDropped(
          chunk.flatMap((m) => m.body.traces),
          error,
        );
      } finally {
        for (const message of chunk) for (const entry of message.entries) entry.settled = true;
      }
    }
  } catch (error) {
    logDropped(
      entries.filter((e) => !e.settled).map((e) => e.trace),
      error,
    );
  } finally {
    for (const entry of entries) entry.settled = true;
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
