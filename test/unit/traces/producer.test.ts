/**
 * The producer: traces fitted one by one within the queue's 128 KB limit (large content goes to R2
 * and comes back at delivery), no content for zero-retention requests, never an exception into
 * the request path — and micro-batching: the traces of one window leave as one message per 64 KB
 * in one `sendBatch`, never mixing queues, and each caller's promise resolves only once the
 * message carrying its trace was sent.
 */
import { env } from "cloudflare:workers";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { TraceBatcher } from "../../../src/traces/batcher";
import { contentKey } from "../../../src/traces/content";
import { forgetDestinations, putDestination } from "../../../src/traces/destination-store";
import { TRACE_BATCH_TARGET_BYTES, type TraceBatch } from "../../../src/traces/messages";
import { enqueueTrace } from "../../../src/traces/producer";
import type { Trace } from "../../../src/traces/schema";
import { mswServer } from "../../helpers";
import { batchOf, CapturingQueue, exampleTrace, queued, queueEnv, runTraces, sink, workspace } from "./fixtures";

beforeAll(() => mswServer.listen({ onUnhandledRequest: "error" }));
afterEach(() => {
  mswServer.resetHandlers();
  vi.restoreAllMocks();
});
afterAll(() => mswServer.close());

const QUEUE_MESSAGE_LIMIT = 128 * 1024;

function largeTrace(workspaceId: string, bytes: number): { trace: Trace; prompt: string } {
  const prompt = `BEGIN-${"lorem ipsum dolor sit amet ".repeat(Math.ceil(bytes / 27)).slice(0, bytes)}-END`;
  return { trace: exampleTrace({ workspace_id: workspaceId, content: { input: [{ role: "user", content: prompt }], output: { text: "A short answer. OUTPUT-MARKER-91bc" } } }), prompt };
}

/** A trace of about `kb` KB that still fits a message whole (no R2). */
const sizedTrace = (kb: number) => exampleTrace({ content: { input: [{ role: "user", content: "y".repeat(kb * 1024) }], output: { text: "ok" } } });

const traceIds = (queue: CapturingQueue) => queue.sent.flatMap((s) => (s.body as TraceBatch).traces.map((t) => t.generation_id));

/** A batcher whose window ends at the next turn of the event loop: traces added in one burst share it. */
const burst = () => new TraceBatcher({ windowMs: 0 });

describe("enqueueTrace", () => {
  it("sends a small trace whole, in a JSON batch message", async () => {
    const traces = new CapturingQueue();
    const trace = exampleTrace();
    await enqueueTrace({ TRACES: traces, TRACE_CONTENT: env.TRACE_CONTENT }, trace, burst());
    expect(traces.batches).toEqual([1]);
    expect(traces.sent[0]?.contentType).toBe("json");
    expect(traces.sent[0]?.body).toEqual(batchOf(trace));
  });

  it("moves a 200 KB prompt to R2, sends a reference under 128 KB, and the webhook receives the full content", async () => {
    const ws = "ws-large";
    await workspace(ws);
    const result = await putDestination(env.DB, env.MASTER_KEY, ws, "hook", { type: "webhook", url: "https://hooks.sink.test/large", headers: {}, signing_secret: "whsec_large_content_0123", sampling_rate: 1, api_key_ids: null, privacy_mode: false, enabled: true });
    expect(result.ok).toBe(true);
    const privateHook = await putDestination(env.DB, env.MASTER_KEY, ws, "private", { type: "webhook", url: "https://hooks.sink.test/large-private", headers: {}, signing_secret: "whsec_large_content_0123", sampling_rate: 1, api_key_ids: null, privacy_mode: true, enabled: true });
    expect(privateHook.ok).toBe(true);
    forgetDestinations(ws);

    const testEnv = queueEnv();
    const { trace, prompt } = largeTrace(ws, 200 * 1024);
    const small = exampleTrace({ workspace_id: ws });
    // Content is offloaded per trace: the small trace of the same window keeps its content inline.
    const batcher = burst();
    await Promise.all([enqueueTrace(testEnv, trace, batcher), enqueueTrace(testEnv, small, batcher)]);
    expect(testEnv.TRACES.sent).toHaveLength(1);
    const sent = testEnv.TRACES.drain()[0];
    const sentBytes = new TextEncoder().encode(JSON.stringify(sent)).byteLength;
    expect(sentBytes).toBeLessThan(QUEUE_MESSAGE_LIMIT);
    // Each trace is added once fitted: the small one usually first (the large one waits on R2).
    const carried = (sent as TraceBatch).traces;
    const message = carried.find((t) => t.generation_id === trace.generation_id);
    const neighbour = carried.find((t) => t.generation_id === small.generation_id);
    expect(neighbour?.content?.input[1]?.content).toContain("PROMPT-MARKER-7f3a");
    expect(message?.content).toBeUndefined();
    expect(message?.content_ref?.key).toBe(contentKey(trace));
    expect(message?.content_ref?.key).toMatch(new RegExp(`^traces/${ws}/2026-08-01/${trace.generation_id}\\.json$`));
    expect(await env.TRACE_CONTENT.head(message?.content_ref?.key ?? "")).not.toBeNull();

    const hits = sink("https://hooks.sink.test/large");
    const privateHits = sink("https://hooks.sink.test/large-private");
    const delivered = await runTraces([queued(sent)], testEnv);
    expect(delivered.explicitAcks).toHaveLength(1);
    // Both destinations answered: delivered from the TRACES consumer, nothing for the retry path.
    expect(testEnv.TRACE_DELIVERIES.sent).toEqual([]);

    const received = hits.map((h) => JSON.parse(h.body) as Trace).find((t) => t.generation_id === trace.generation_id);
    expect(hits).toHaveLength(2);
    expect(received?.content?.input[0]?.content).toBe(prompt);
    expect(received?.content?.output.text).toContain("OUTPUT-MARKER-91bc");
    expect(received?.content_ref).toBeUndefined();

    expect(privateHits).toHaveLength(2);
    for (const hit of privateHits) {
      expect(hit.body).not.toContain("BEGIN-lorem");
      expect(hit.body).not.toContain("OUTPUT-MARKER-91bc");
    }
  });

  it("never enqueues or stores the content of a zero-retention request", async () => {
    const testEnv = queueEnv();
    const { trace } = largeTrace("ws-zdr", 200 * 1024);
    const zdr = { ...trace, zero_retention: true };
    await enqueueTrace(testEnv, zdr, burst());
    const [message] = (testEnv.TRACES.sent[0]?.body as TraceBatch).traces;
    expect(message?.content).toBeUndefined();
    expect(message?.content_ref).toBeUndefined();
    expect(JSON.stringify(testEnv.TRACES.sent[0]?.body)).not.toContain("lorem ipsum");
    expect(await env.TRACE_CONTENT.head(contentKey(zdr))).toBeNull();
  });

  it("swallows every failure: a queue that throws, a missing bucket", async () => {
    const failing = new CapturingQueue();
    failing.failSends = 1;
    await expect(enqueueTrace({ TRACES: failing }, exampleTrace(), burst())).resolves.toBeUndefined();

    // Validation is the consumer's (per trace, traces/messages.ts readTraces): the producer sends
    // what typed code built without parsing it again.
    const traces = new CapturingQueue();

    // Without TRACE_CONTENT a too-large trace is sent without its content rather than dropped.
    const { trace } = largeTrace("ws-nobucket", 200 * 1024);
    await enqueueTrace({ TRACES: traces }, trace, burst());
    const [message] = (traces.sent[0]?.body as TraceBatch).traces;
    expect(message?.generation_id).toBe(trace.generation_id);
    expect(message?.content).toBeUndefined();
  });

  it("uses the isolate's 50 ms window by default", async () => {
    const traces = new CapturingQueue();
    const batch = [exampleTrace(), exampleTrace(), exampleTrace()];
    await Promise.all(batch.map((t) => enqueueTrace({ TRACES: traces }, t)));
    expect(traces.batches).toEqual([1]);
    expect(traceIds(traces)).toEqual(batch.map((t) => t.generation_id));
  });
});

describe("micro-batching", () => {
  it("sends the N traces of one window as ONE message carrying N traces, in order", async () => {
    const batcher = new TraceBatcher({ windowMs: 500 });
    const traces = new CapturingQueue();
    const batch = Array.from({ length: 12 }, () => exampleTrace());
    // Not one burst: the traces arrive over several turns of the event loop within the window.
    const pending: Promise<void>[] = [];
    for (const trace of batch) {
      pending.push(enqueueTrace({ TRACES: traces }, trace, batcher));
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    await Promise.all(pending);
    expect(traces.batches).toEqual([1]);
    expect(traces.sent).toHaveLength(1);
    expect((traces.sent[0]?.body as TraceBatch).v).toBe(1);
    expect(traceIds(traces)).toEqual(batch.map((t) => t.generation_id));
  });

  it("never puts traces of TRACES and TRACES_EU in the same message", async () => {
    const batcher = burst();
    const global = new CapturingQueue();
    const eu = new CapturingQueue();
    const globalTraces = [exampleTrace(), exampleTrace(), exampleTrace()];
    const euTraces = [exampleTrace({ region: "eu" }), exampleTrace({ region: "eu" })];
    await Promise.all([
      enqueueTrace({ TRACES: global }, globalTraces[0]!, batcher),
      enqueueTrace({ TRACES: eu }, euTraces[0]!, batcher),
      enqueueTrace({ TRACES: global }, globalTraces[1]!, batcher),
      enqueueTrace({ TRACES: eu }, euTraces[1]!, batcher),
      enqueueTrace({ TRACES: global }, globalTraces[2]!, batcher),
    ]);
    expect(global.batches).toEqual([1]);
    expect(eu.batches).toEqual([1]);
    expect(traceIds(global)).toEqual(globalTraces.map((t) => t.generation_id));
    expect(traceIds(eu)).toEqual(euTraces.map((t) => t.generation_id));
  });

  it("splits what does not fit one message into several of at most 64 KB, sent in one sendBatch", async () => {
    const traces = new CapturingQueue();
    const batcher = burst();
    // 6 × ~25 KB: two per message.
    const batch = Array.from({ length: 6 }, () => sizedTrace(25));
    await Promise.all(batch.map((t) => enqueueTrace({ TRACES: traces }, t, batcher)));
    expect(traces.batches).toEqual([3]);
    for (const sent of traces.sent) {
      expect(sent.bytes).toBeLessThanOrEqual(TRACE_BATCH_TARGET_BYTES);
      expect((sent.body as TraceBatch).traces).toHaveLength(2);
    }
    expect(traceIds(traces)).toEqual(batch.map((t) => t.generation_id));

    // A trace larger than 64 KB (it still fits a message) travels alone in its batch.
    const big = new CapturingQueue();
    const large = sizedTrace(80);
    const smalls = [exampleTrace(), exampleTrace()];
    await Promise.all([enqueueTrace({ TRACES: big }, smalls[0]!, batcher), enqueueTrace({ TRACES: big }, large, batcher), enqueueTrace({ TRACES: big }, smalls[1]!, batcher)]);
    expect(big.batches).toEqual([3]);
    expect(big.sent.map((s) => (s.body as TraceBatch).traces.length)).toEqual([1, 1, 1]);
    for (const sent of big.sent) expect(sent.bytes).toBeLessThan(QUEUE_MESSAGE_LIMIT);
  });

  it("sends a full window at once, without waiting for its timer", async () => {
    // Callers whose trace another caller's flush carried notice at the window's end (their own
    // timer), so the window is long but not longer than the test: the sends must come well before.
    const windowMs = 2_000;
    const started = Date.now();
    const traces = new CapturingQueue();
    const byCount = new TraceBatcher({ windowMs, maxTraces: 4 });
    const counted = Array.from({ length: 4 }, () => enqueueTrace({ TRACES: traces }, exampleTrace(), byCount));

    // 60 KB: two ~26 KB traces fit; the 70 KB one does not, so the first two leave as it arrives,
    // and it fills a window on its own and leaves at once too.
    const bySize = new CapturingQueue();
    const byBytes = new TraceBatcher({ windowMs, maxBytes: 60 * 1024 });
    const sized = [sizedTrace(25), sizedTrace(25), sizedTrace(70)].map((t) => enqueueTrace({ TRACES: bySize }, t, byBytes));

    await until(() => traces.batches.length === 1 && bySize.batches.length === 2);
    expect(Date.now() - started).toBeLessThan(windowMs / 2);
    expect(traces.sent.map((s) => (s.body as TraceBatch).traces.length)).toEqual([4]);
    expect(bySize.sent.map((s) => (s.body as TraceBatch).traces.length)).toEqual([2, 1]);
    await Promise.all([...counted, ...sized]);
  });

  it("logs and drops a window whose send fails, releases every caller, and the next window is sent", async () => {
    const errors = vi.spyOn(console, "error").mockImplementation(() => undefined);
    const traces = new CapturingQueue();
    traces.failSends = 1;
    const batcher = burst();
    const lost = [exampleTrace(), exampleTrace(), exampleTrace()];
    const results = await Promise.allSettled(lost.map((t) => enqueueTrace({ TRACES: traces }, t, batcher)));
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "fulfilled", "fulfilled"]);
    expect(traces.sent).toEqual([]);
    const logged = errors.mock.calls.map((c) => JSON.parse(String(c[0])) as { msg: string; traces: number; generationIds: string[] });
    expect(logged).toContainEqual(expect.objectContaining({ msg: "traces could not be enqueued; dropped", traces: 3, generationIds: lost.map((t) => t.generation_id) }));

    const next = exampleTrace();
    await enqueueTrace({ TRACES: traces }, next, batcher);
    expect(traceIds(traces)).toEqual([next.generation_id]);
  });

  it("resolves each caller only once its own trace was sent; traces arriving during a flush open the next window", async () => {
    const queue = new GatedQueue();
    const batcher = burst();
    const first = exampleTrace();
    const second = exampleTrace();
    const settled = new Set<string>();
    const track = (trace: Trace) => enqueueTrace({ TRACES: queue }, trace, batcher).then(() => void settled.add(trace.generation_id));

    const one = track(first);
    await until(() => queue.calls.length === 1);
    expect(settled.size).toBe(0);

    // The first window's send is in flight: this trace opens a second window with its own send.
    const two = track(second);
    await until(() => queue.calls.length === 2);
    expect(queue.calls.map((c) => c.traces)).toEqual([[first.generation_id], [second.generation_id]]);

    queue.calls[1]?.release();
    await two;
    expect([...settled]).toEqual([second.generation_id]);

    queue.calls[0]?.release();
    await one;
    expect(settled).toEqual(new Set([first.generation_id, second.generation_id]));
  });

  it("holds a caller whose trace another caller's flush carries until that call settled", async () => {
    const queue = new GatedQueue();
    const batcher = burst();
    const traces = [exampleTrace(), exampleTrace(), exampleTrace()];
    const settled = new Set<string>();
    const pending = traces.map((t) => enqueueTrace({ TRACES: queue }, t, batcher).then(() => void settled.add(t.generation_id)));
    await until(() => queue.calls.length === 1);
    expect(queue.calls[0]?.traces).toEqual(traces.map((t) => t.generation_id));
    // The waiters that did not flush keep checking, on their own timers, for longer than the window.
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(settled.size).toBe(0);
    queue.calls[0]?.release();
    await Promise.all(pending);
    expect(queue.calls).toHaveLength(1);
  });

  it("sends a waiter's trace again alone when the call carrying it never settles", async () => {
    const warnings = vi.spyOn(console, "warn").mockImplementation(() => undefined);
    const queue = new GatedQueue();
    const batcher = new TraceBatcher({ windowMs: 0, stallMs: 40 });
    const stuck = exampleTrace();
    const waiter = exampleTrace();
    const first = enqueueTrace({ TRACES: queue }, stuck, batcher);
    const second = enqueueTrace({ TRACES: queue }, waiter, batcher);
    // The first caller's flush hangs (as if its request were torn down mid-send)…
    await until(() => queue.calls.length === 2);
    // …so the second caller sends its own trace again, alone, and is released by that call.
    expect(queue.calls.map((c) => c.traces)).toEqual([[stuck.generation_id, waiter.generation_id], [waiter.generation_id]]);
    queue.calls[1]?.release();
    await second;
    expect(warnings.mock.calls.map((c) => String(c[0]))).toContainEqual(expect.stringContaining("sending it alone"));
    queue.calls[0]?.release();
    await first;
  });
});

/** A queue whose `sendBatch` calls stay in flight until the test releases them. */
class GatedQueue extends CapturingQueue {
  readonly calls: Array<{ traces: string[]; release: () => void }> = [];

  override async sendBatch(messages: Iterable<MessageSendRequest>, options?: QueueSendBatchOptions): Promise<QueueSendBatchResponse> {
    const list = [...messages];
    await new Promise<void>((release) => this.calls.push({ traces: list.flatMap((m) => (m.body as TraceBatch).traces.map((t) => t.generation_id)), release }));
    return super.sendBatch(list, options);
  }
}

async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 5));
  expect(condition()).toBe(true);
}
