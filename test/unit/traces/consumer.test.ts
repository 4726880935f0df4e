/**
 * The trace queues end to end with batches built by `createMessageBatch`. The TRACES consumer
 * delivers each batch of traces directly and hands only what fails (or cannot run now) to
 * TRACE_DELIVERIES, one message per (trace, destination); the TRACE_DELIVERIES consumer retries
 * those on their own schedule (growing delays, Retry-After, dead letters for what never
 * succeeds); the TRACE_DLQ consumer records dead letters, and a replay sends them back. Messages
 * from before batching (bare traces, deliveries without `prior_attempts`) are still consumed.
 */
import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { delay, http, HttpResponse } from "msw";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { deliveryStates } from "../../../src/traces/delivery-state";
import { listDeadLetters, replayDeadLetters } from "../../../src/traces/dead-letters";
import type { DestinationInput } from "../../../src/traces/destination-config";
import { forgetDestinations, getDestinations, putDestination } from "../../../src/traces/destination-store";
import { deliverTraces, type DirectDeliveryLimits } from "../../../src/traces/direct-delivery";
import { TRACE_QUEUES, type DeliveryMessage, type TraceBatch } from "../../../src/traces/messages";
import type { Trace } from "../../../src/traces/schema";
import { mswServer } from "../../helpers";
import { batchOf, exampleTrace, queued, queueEnv, runDeadLetters, runDeliveries, runTraces, sink, workspace, type QueuedMessage, type SinkHit } from "./fixtures";

/** `max_retries` of the TRACE_DELIVERIES consumer in wrangler.toml. */
const MAX_RETRIES = 10;
const SIGNING_SECRET = "whsec_consumer_test_0123456789";

beforeAll(() => mswServer.listen({ onUnhandledRequest: "error" }));
afterEach(() => mswServer.resetHandlers());
afterAll(() => mswServer.close());

async function destination(workspaceId: string, id: string, input: Record<string, unknown>): Promise<void> {
  const result = await putDestination(env.DB, env.MASTER_KEY, workspaceId, id, input as DestinationInput);
  if (!result.ok) throw new Error(result.message);
  forgetDestinations(workspaceId);
}

const webhook = (url: string, extra: Record<string, unknown> = {}) => ({ type: "webhook", url, signing_secret: SIGNING_SECRET, sampling_rate: 1, enabled: true, api_key_ids: null, privacy_mode: false, headers: {}, ...extra });
const otlp = (endpoint: string) => ({ type: "otlp", endpoint, headers: {}, sampling_rate: 1, enabled: true, api_key_ids: null, privacy_mode: false });

/** The generation id each webhook hit carried. */
const generationOf = (hit: SinkHit) => (JSON.parse(hit.body) as Trace).generation_id;
const ids = (traces: readonly Trace[]) => traces.map((t) => t.generation_id).sort();

/** Generation ids of every span in OTLP requests. */
function otlpGenerations(hits: SinkHit[]): string[] {
  return hits.flatMap((hit) => {
    const body = JSON.parse(hit.body) as { resourceSpans: Array<{ scopeSpans: Array<{ spans: Array<{ attributes: Array<{ key: string; value: { stringValue?: string } }> }> }> }> };
    return body.resourceSpans.flatMap((r) => r.scopeSpans.flatMap((s) => s.spans.map((span) => span.attributes.find((a) => a.key === "switchyard.generation.id")?.value.stringValue ?? "")));
  });
}

type TestEnv = ReturnType<typeof queueEnv>;

/** What the TRACES consumer handed to TRACE_DELIVERIES, as Queues would hand it to its consumer (and the delay it asked for). */
function handedOver(testEnv: TestEnv): Array<QueuedMessage & { body: DeliveryMessage; delaySeconds: number | undefined }> {
  return testEnv.TRACE_DELIVERIES.sent.splice(0).map((s) => ({ ...queued(s.body), body: s.body as DeliveryMessage, delaySeconds: s.delaySeconds }));
}

/** Run the TRACES consumer directly, with its own limits, and return what it acked and retried. */
async function deliverWith(testEnv: TestEnv, messages: readonly QueuedMessage[], limits: DirectDeliveryLimits) {
  const batch = createMessageBatch(
    TRACE_QUEUES.traces,
    messages.map((m) => ({ id: m.id, timestamp: new Date(), attempts: m.attempts, body: m.body })),
  );
  const ctx = createExecutionContext();
  await deliverTraces(batch, testEnv, limits);
  return getQueueResult(batch, ctx);
}

describe("TRACES consumer: direct delivery", () => {
  it("delivers batches to healthy destinations directly and hands nothing to TRACE_DELIVERIES", async () => {
    const ws = "ws-direct";
    await workspace(ws);
    await destination(ws, "hook", webhook("https://hooks.sink.test/direct"));
    await destination(ws, "otel", otlp("https://otel.sink.test/direct"));
    const hooks = sink("https://hooks.sink.test/direct");
    const spans = sink("https://otel.sink.test/direct/v1/traces");

    const testEnv = queueEnv();
    const first = [exampleTrace({ workspace_id: ws }), exampleTrace({ workspace_id: ws }), exampleTrace({ workspace_id: ws })];
    const second = [exampleTrace({ workspace_id: ws }), exampleTrace({ workspace_id: ws })];
    const messages = [queued(batchOf(...first)), queued(batchOf(...second))];
    const result = await runTraces(messages, testEnv);

    expect(result.explicitAcks.sort()).toEqual(messages.map((m) => m.id).sort());
    expect(result.retryMessages).toEqual([]);
    expect(testEnv.TRACE_DELIVERIES.sent).toEqual([]);
    expect(hooks.map(generationOf).sort()).toEqual(ids([...first, ...second]));
    // One OTLP request carried the spans of both messages.
    expect(spans).toHaveLength(1);
    expect(otlpGenerations(spans).sort()).toEqual(ids([...first, ...second]));

    const states = await deliveryStates(env.DB, ws);
    expect(states.get("hook")).toMatchObject({ delivered: 5, failed: 0 });
    expect(states.get("otel")).toMatchObject({ delivered: 5, failed: 0 });
  });

  it("still consumes bare traces enqueued before batching, alongside batches", async () => {
    const ws = "ws-direct-legacy";
    await workspace(ws);
    await destination(ws, "hook", webhook("https://hooks.sink.test/legacy"));
    const hits = sink("https://hooks.sink.test/legacy");
    const testEnv = queueEnv();
    const bare = exampleTrace({ workspace_id: ws });
    const batched = exampleTrace({ workspace_id: ws });
    const result = await runTraces([queued(bare), queued(batchOf(batched))], testEnv);
    expect(result.explicitAcks).toHaveLength(2);
    expect(hits.map(generationOf).sort()).toEqual(ids([bare, batched]));
    expect(testEnv.TRACE_DELIVERIES.sent).toEqual([]);
  });

  it("hands exactly a failing (5xx) destination's deliveries to TRACE_DELIVERIES, after one round, and the healthy one's nowhere", async () => {
    const ws = "ws-direct-5xx";
    await workspace(ws);
    await destination(ws, "up", webhook("https://hooks.sink.test/up"));
    await destination(ws, "down", webhook("https://hooks.sink.test/down"));
    const up = sink("https://hooks.sink.test/up");
    const down = sink("https://hooks.sink.test/down", () => new HttpResponse("maintenance", { status: 503 }));

    const testEnv = queueEnv();
    const traces = Array.from({ length: 5 }, () => exampleTrace({ workspace_id: ws }));
    const message = queued(batchOf(...traces));
    const result = await runTraces([message], testEnv);

    // The batch is settled: what failed lives on in TRACE_DELIVERIES, not in a retried batch.
    expect(result.explicitAcks).toEqual([message.id]);
    expect(result.retryMessages).toEqual([]);
    expect(up.map(generationOf).sort()).toEqual(ids(traces));
    // A webhook round is 3 concurrent POSTs: once they failed, the other 2 traces were not tried.
    expect(down).toHaveLength(3);

    const handed = handedOver(testEnv);
    expect(handed.map((h) => h.body.destination_id)).toEqual(["down", "down", "down", "down", "down"]);
    expect(handed.map((h) => h.body.trace.generation_id).sort()).toEqual(ids(traces));
    // The first backoff step, for the tried and the untried alike; only the tried count an attempt.
    expect(handed.map((h) => h.delaySeconds)).toEqual([10, 10, 10, 10, 10]);
    expect(handed.map((h) => h.body.prior_attempts ?? 0)).toEqual([1, 1, 1, 0, 0]);
    expect(testEnv.TRACE_DELIVERIES.batches).toEqual([5]);

    const states = await deliveryStates(env.DB, ws);
    expect(states.get("up")).toMatchObject({ delivered: 5, failed: 0 });
    expect(states.get("down")).toMatchObject({ delivered: 0, failed: 3 });
    expect(states.get("down")?.lastError).toMatch(/HTTP 503/);
  });

  it("hands over a destination that does not answer within the delivery timeout, and delivers the others", async () => {
    const ws = "ws-direct-timeout";
    await workspace(ws);
    await destination(ws, "fast", webhook("https://hooks.sink.test/fast"));
    await destination(ws, "hung", webhook("https://hooks.sink.test/hung"));
    const fast = sink("https://hooks.sink.test/fast");
    // Never answers in time: the delivery's 15 s timeout gives up first.
    mswServer.use(sinkNever("https://hooks.sink.test/hung"));
    const testEnv = queueEnv();
    const traces = [exampleTrace({ workspace_id: ws }), exampleTrace({ workspace_id: ws })];
    const started = Date.now();
    const result = await runTraces([queued(batchOf(...traces))], testEnv);
    expect(Date.now() - started).toBeGreaterThanOrEqual(14_000);
    expect(result.explicitAcks).toHaveLength(1);
    expect(fast.map(generationOf).sort()).toEqual(ids(traces));
    const handed = handedOver(testEnv);
    expect(handed.map((h) => `${h.body.destination_id}:${h.body.prior_attempts}`)).toEqual(["hung:1", "hung:1"]);
    expect(handed.map((h) => h.body.trace.generation_id).sort()).toEqual(ids(traces));
    expect((await deliveryStates(env.DB, ws)).get("hung")?.lastError).toMatch(/no answer within 15 s/);
  }, 40_000);

  it("honours a destination's Retry-After in the hand-over's delay", async () => {
    const ws = "ws-retry-after";
    await workspace(ws);
    await destination(ws, "slow", webhook("https://hooks.sink.test/slow"));
    sink("https://hooks.sink.test/slow", () => new HttpResponse("slow down", { status: 429, headers: { "retry-after": "120" } }));
    const testEnv = queueEnv();
    await runTraces([queued(batchOf(exampleTrace({ workspace_id: ws })))], testEnv);
    const [handed] = handedOver(testEnv);
    expect(handed?.delaySeconds).toBe(120);

    // And so does the retry path.
    const result = await runDeliveries([handed!], testEnv);
    expect(result.retryMessages).toEqual([{ msgId: handed?.id, delaySeconds: 120 }]);
  });

  it("dead-letters a permanent failure (4xx) at once instead of handing it over", async () => {
    const ws = "ws-permanent";
    await workspace(ws);
    await destination(ws, "unauthorized", webhook("https://hooks.sink.test/401"));
    sink("https://hooks.sink.test/401", () => new HttpResponse("bad signature", { status: 401 }));
    const testEnv = queueEnv();
    const trace = exampleTrace({ workspace_id: ws });
    const message = queued(batchOf(trace));
    const result = await runTraces([message], testEnv);
    expect(result.explicitAcks).toEqual([message.id]);
    expect(testEnv.TRACE_DELIVERIES.sent).toEqual([]);
    const letters = await listDeadLetters(env.DB, ws, { limit: 10 });
    expect(letters).toMatchObject([{ destinationId: "unauthorized", generationId: trace.generation_id }]);
    expect(letters[0]?.error).toMatch(/HTTP 401/);
    // Queues redelivers at least once: the same batch again records the same dead letter once.
    await runTraces([message], testEnv);
    expect(await listDeadLetters(env.DB, ws, { limit: 10 })).toHaveLength(1);
  });

  it("delivers only to enabled destinations that sample the session and accept the key", async () => {
    const ws = "ws-filters";
    await workspace(ws);
    await destination(ws, "all", webhook("https://hooks.sink.test/all"));
    await destination(ws, "none", webhook("https://hooks.sink.test/none", { sampling_rate: 0 }));
    await destination(ws, "key-2", webhook("https://hooks.sink.test/key2", { api_key_ids: ["key-2"] }));
    await destination(ws, "off", webhook("https://hooks.sink.test/off", { enabled: false }));
    const hits = { all: sink("https://hooks.sink.test/all"), none: sink("https://hooks.sink.test/none"), key2: sink("https://hooks.sink.test/key2"), off: sink("https://hooks.sink.test/off") };
    const testEnv = queueEnv();
    const one = exampleTrace({ workspace_id: ws, key_id: "key-1" });
    const two = exampleTrace({ workspace_id: ws, key_id: "key-2" });
    await runTraces([queued(batchOf(one, two))], testEnv);
    expect(hits.all.map(generationOf).sort()).toEqual(ids([one, two]));
    expect(hits.key2.map(generationOf)).toEqual([two.generation_id]);
    expect(hits.none).toEqual([]);
    expect(hits.off).toEqual([]);
  });

  it("acks traces without destinations, drops unreadable traces and messages, and delivers the readable rest", async () => {
    const ws = "ws-nodest";
    await workspace(ws);
    const ws2 = "ws-partial";
    await workspace(ws2);
    await destination(ws2, "hook", webhook("https://hooks.sink.test/partial"));
    const hits = sink("https://hooks.sink.test/partial");
    const testEnv = queueEnv();
    const lonely = queued(batchOf(exampleTrace({ workspace_id: ws })));
    const junk = queued({ v: 99, nonsense: true });
    const good = exampleTrace({ workspace_id: ws2 });
    const mixed = queued({ v: 1, traces: [{ ...good, generation_id: "" }, good, { nonsense: true }] });
    const result = await runTraces([lonely, junk, mixed], testEnv);
    expect(result.explicitAcks.sort()).toEqual([junk.id, lonely.id, mixed.id].sort());
    expect(hits.map(generationOf)).toEqual([good.generation_id]);
    expect(testEnv.TRACE_DELIVERIES.sent).toEqual([]);
  });

  it("retries a message whole, delivering none of it, when its workspace's destinations cannot be loaded", async () => {
    const warm = "ws-warm";
    const cold = "ws-cold";
    for (const ws of [warm, cold]) {
      await workspace(ws);
      await destination(ws, "hook", webhook(`https://hooks.sink.test/${ws}`));
    }
    const warmHits = sink(`https://hooks.sink.test/${warm}`);
    const coldHits = sink(`https://hooks.sink.test/${cold}`);
    await getDestinations(env, warm); // cached in the isolate; `cold` is not
    const testEnv = { ...queueEnv(), DB: failingDatabase() };
    const alone = queued(batchOf(exampleTrace({ workspace_id: warm })), 1);
    const shared = exampleTrace({ workspace_id: warm });
    const withCold = queued(batchOf(shared, exampleTrace({ workspace_id: cold })), 3);
    const result = await runTraces([alone, withCold], testEnv);
    expect(result.explicitAcks).toEqual([alone.id]);
    expect(result.retryMessages).toEqual([{ msgId: withCold.id, delaySeconds: 40 }]);
    // Nothing of the retried message went out, so its retry delivers it once.
    expect(warmHits).toHaveLength(1);
    expect(warmHits.map(generationOf)).not.toContain(shared.generation_id);
    expect(coldHits).toEqual([]);
  });

  it("retries a message whole when its failed deliveries cannot be handed over", async () => {
    const ws = "ws-sendfail";
    await workspace(ws);
    await destination(ws, "hook", webhook("https://hooks.sink.test/sendfail", {}));
    sink("https://hooks.sink.test/sendfail", () => new HttpResponse("down", { status: 500 }));
    const testEnv = queueEnv();
    testEnv.TRACE_DELIVERIES.failSends = 1;
    const message = queued(batchOf(exampleTrace({ workspace_id: ws })), 2);
    const failed = await runTraces([message], testEnv);
    expect(failed.explicitAcks).toEqual([]);
    expect(failed.retryMessages).toEqual([{ msgId: message.id, delaySeconds: 20 }]);
  });

  it("hands over untried what is past the invocation's budget of requests or time, without delay", async () => {
    const ws = "ws-budget";
    await workspace(ws);
    await destination(ws, "hook", webhook("https://hooks.sink.test/budget"));
    const hits = sink("https://hooks.sink.test/budget");
    const testEnv = queueEnv();
    const traces = Array.from({ length: 5 }, () => exampleTrace({ workspace_id: ws }));
    // 3 requests: the first round (3 POSTs) runs, the second does not.
    const result = await deliverWith(testEnv, [queued(batchOf(...traces))], { maxRequests: 3, deadlineMs: 60_000 });
    expect(result.explicitAcks).toHaveLength(1);
    expect(hits).toHaveLength(3);
    const handed = handedOver(testEnv);
    expect(handed).toHaveLength(2);
    expect(handed.map((h) => [h.delaySeconds, h.body.prior_attempts])).toEqual([
      [undefined, undefined],
      [undefined, undefined],
    ]);
    expect([...hits.map(generationOf), ...handed.map((h) => h.body.trace.generation_id)].sort()).toEqual(ids(traces));

    // Out of time: nothing is tried, everything is handed over.
    const late = await deliverWith(testEnv, [queued(batchOf(...traces))], { maxRequests: 500, deadlineMs: 0 });
    expect(late.explicitAcks).toHaveLength(1);
    expect(hits).toHaveLength(3);
    expect(handedOver(testEnv)).toHaveLength(5);
    expect((await deliveryStates(env.DB, ws)).get("hook")).toMatchObject({ delivered: 3, failed: 0 });
  });

  it("splits hand-overs into sendBatch calls within 100 messages and 256 KB", async () => {
    const ws = "ws-chunks";
    await workspace(ws);
    for (const n of [1, 2, 3]) {
      await destination(ws, `hook-${n}`, webhook(`https://hooks.sink.test/chunk${n}`));
      sink(`https://hooks.sink.test/chunk${n}`, () => new HttpResponse("down", { status: 502 }));
    }
    const testEnv = queueEnv();
    // 40 traces × 3 failing destinations = 120 hand-overs: more than one sendBatch may carry.
    const small = Array.from({ length: 40 }, () => exampleTrace({ workspace_id: ws }));
    await runTraces([queued(batchOf(...small.slice(0, 20))), queued(batchOf(...small.slice(20)))], testEnv);
    expect(testEnv.TRACE_DELIVERIES.batches.every((n) => n <= 100)).toBe(true);
    expect(testEnv.TRACE_DELIVERIES.batches.reduce((a, b) => a + b, 0)).toBe(120);

    const big = exampleTrace({ workspace_id: ws });
    const bigTrace: Trace = { ...big, content: { input: [{ role: "user", content: "x".repeat(90 * 1024) }], output: { text: "ok" } } };
    const bigEnv = queueEnv();
    const result = await runTraces([queued(batchOf(bigTrace)), queued(batchOf({ ...bigTrace, generation_id: `${bigTrace.generation_id}-2` }))], bigEnv);
    expect(result.explicitAcks).toHaveLength(2);
    const sizes: number[] = [];
    let offset = 0;
    for (const n of bigEnv.TRACE_DELIVERIES.batches) {
      sizes.push(bigEnv.TRACE_DELIVERIES.sent.slice(offset, offset + n).reduce((a, s) => a + s.bytes, 0));
      offset += n;
    }
    // Two ~90 KB deliveries fill a call: six need at least three.
    expect(bigEnv.TRACE_DELIVERIES.batches.length).toBeGreaterThanOrEqual(3);
    expect(sizes.every((s) => s <= 256 * 1024)).toBe(true);
    expect(bigEnv.TRACE_DELIVERIES.batches.reduce((a, b) => a + b, 0)).toBe(6);
  });
});

describe("the retry path (TRACE_DELIVERIES) and dead letters", () => {
  it("delivers every trace exactly once to each of three destinations while one fails twice, with growing delays counting the direct attempt", async () => {
    const ws = "ws-fanout";
    await workspace(ws);
    await destination(ws, "hook-a", webhook("https://hooks.sink.test/a"));
    await destination(ws, "otel-b", otlp("https://otel.sink.test"));
    await destination(ws, "hook-c", webhook("https://hooks.sink.test/c"));

    const hitsA = sink("https://hooks.sink.test/a");
    const hitsB = sink("https://otel.sink.test/v1/traces");
    // hook-c answers 503 to the first two attempts of each trace, then 200.
    const triesC = new Map<string, number>();
    const acceptedC: string[] = [];
    sink("https://hooks.sink.test/c", (hit) => {
      const id = generationOf(hit);
      const n = (triesC.get(id) ?? 0) + 1;
      triesC.set(id, n);
      if (n <= 2) return new HttpResponse("busy", { status: 503 });
      acceptedC.push(id);
      return new HttpResponse("ok");
    });

    const testEnv = queueEnv();
    const traces = [exampleTrace({ workspace_id: ws }), exampleTrace({ workspace_id: ws }), exampleTrace({ workspace_id: ws })];
    const result = await runTraces([queued(batchOf(...traces))], testEnv);
    expect(result.explicitAcks).toHaveLength(1);
    const handed = handedOver(testEnv);
    expect(handed.map((h) => h.body.destination_id)).toEqual(["hook-c", "hook-c", "hook-c"]);
    const delays = [Math.min(...handed.map((h) => h.delaySeconds ?? 0))];

    let pending: QueuedMessage[] = handed;
    for (let round = 1; pending.length > 0; round++) {
      expect(round).toBeLessThanOrEqual(2);
      const retried = await runDeliveries(pending, testEnv);
      const byId = new Map(retried.retryMessages.map((r) => [r.msgId, r.delaySeconds ?? 0]));
      for (const m of pending) expect(retried.explicitAcks.includes(m.id) !== byId.has(m.id)).toBe(true);
      if (byId.size > 0) delays.push(Math.min(...byId.values()));
      // Queues hands retried messages back in a later batch with one more attempt.
      pending = pending.filter((m) => byId.has(m.id)).map((m) => ({ ...m, attempts: m.attempts + 1 }));
    }

    expect(delays).toEqual([10, 20]);
    expect(hitsA.map(generationOf).sort()).toEqual(ids(traces));
    expect(otlpGenerations(hitsB).sort()).toEqual(ids(traces));
    expect(hitsB).toHaveLength(1); // one OTLP request carried the batch's three spans
    expect(acceptedC.sort()).toEqual(ids(traces));

    const states = await deliveryStates(env.DB, ws);
    expect(states.get("hook-a")).toMatchObject({ delivered: 3, failed: 0 });
    expect(states.get("hook-c")).toMatchObject({ delivered: 3, failed: 6 });
    expect(states.get("hook-c")?.lastError).toMatch(/503/);
    expect(states.get("hook-c")?.lastSuccessAt).not.toBeNull();
  });

  it("dead-letters a destination that never recovers, records it from the DLQ, and replays it, while the others are unaffected", async () => {
    const ws = "ws-dead";
    await workspace(ws);
    await destination(ws, "good", webhook("https://hooks.sink.test/good"));
    await destination(ws, "broken", webhook("https://hooks.sink.test/broken"));
    const good = sink("https://hooks.sink.test/good");
    let brokenFixed = false;
    const broken = sink("https://hooks.sink.test/broken", () => (brokenFixed ? new HttpResponse("ok") : new HttpResponse("down", { status: 502 })));

    const testEnv = queueEnv();
    const trace = exampleTrace({ workspace_id: ws });
    await runTraces([queued(batchOf(trace))], testEnv);
    let pending: QueuedMessage[] = handedOver(testEnv);
    expect(pending).toHaveLength(1);
    const delays: number[] = [];
    let last: QueuedMessage | undefined;
    for (let attempt = 1; attempt <= MAX_RETRIES + 1; attempt++) {
      const result = await runDeliveries(pending, testEnv);
      for (const r of result.retryMessages) delays.push(r.delaySeconds ?? 0);
      const retried = new Set(result.retryMessages.map((r) => r.msgId));
      last = pending.find((m) => retried.has(m.id));
      pending = pending.filter((m) => retried.has(m.id)).map((m) => ({ ...m, attempts: m.attempts + 1 }));
      expect(pending).toHaveLength(1);
    }
    // Non-decreasing, growing at first (from the second step: the direct attempt took the first), capped later.
    expect(delays[0]).toBe(20);
    for (let i = 1; i < delays.length; i++) expect(delays[i]).toBeGreaterThanOrEqual(delays[i - 1] ?? 0);
    expect(delays[1]).toBeGreaterThan(delays[0] ?? Infinity);
    expect(good.map(generationOf)).toEqual([trace.generation_id]);
    // The direct attempt, then the retry path's first attempt and its MAX_RETRIES retries.
    expect(broken).toHaveLength(MAX_RETRIES + 2);

    // After its last retry Queues moves the message to TRACE_DLQ, whose consumer records it.
    const dead = last ?? pending[0];
    if (!dead) throw new Error("no dead message");
    const dlq = await runDeadLetters([dead], testEnv);
    expect(dlq.explicitAcks).toEqual([dead.id]);
    // Queues delivers at least once: the same dead letter again is recorded once.
    await runDeadLetters([dead], testEnv);
    const letters = await listDeadLetters(env.DB, ws, { limit: 10 });
    expect(letters).toHaveLength(1);
    expect(letters[0]).toMatchObject({ id: dead.id, destinationId: "broken", generationId: trace.generation_id, attempts: MAX_RETRIES + 2 });
    expect(letters[0]?.error).toMatch(/502/);

    // Replay re-sends it to TRACE_DELIVERIES and deletes the row; delivered once fixed.
    const replayed = await replayDeadLetters(testEnv, ws, { limit: 100 });
    expect(replayed).toEqual({ replayed: 1, unreadable: 0, remaining: 0 });
    expect(await listDeadLetters(env.DB, ws, { limit: 10 })).toEqual([]);
    brokenFixed = true;
    const again = testEnv.TRACE_DELIVERIES.drain().map((body) => queued(body));
    expect(again.map((m) => (m.body as DeliveryMessage).destination_id)).toEqual(["broken"]);
    const result = await runDeliveries(again, testEnv);
    expect(result.explicitAcks).toHaveLength(1);
    expect(broken.at(-1)?.body).toContain(trace.generation_id);
    expect(good).toHaveLength(1);
  });

  it("still consumes delivery messages enqueued by the two-hop fan-out (no prior_attempts)", async () => {
    const ws = "ws-old-delivery";
    await workspace(ws);
    await destination(ws, "hook", webhook("https://hooks.sink.test/old-delivery"));
    let n = 0;
    const hits = sink("https://hooks.sink.test/old-delivery", () => (++n === 1 ? new HttpResponse("busy", { status: 503 }) : new HttpResponse("ok")));
    const testEnv = queueEnv();
    const message = queued({ kind: "delivery", destination_id: "hook", trace: exampleTrace({ workspace_id: ws }) });
    const first = await runDeliveries([message], testEnv);
    expect(first.retryMessages).toEqual([{ msgId: message.id, delaySeconds: 10 }]);
    const second = await runDeliveries([{ ...message, attempts: 2 }], testEnv);
    expect(second.explicitAcks).toEqual([message.id]);
    expect(hits).toHaveLength(2);
  });

  it("records a dead-lettered batch one row per trace, and replays them into TRACES as one batch", async () => {
    const ws = "ws-dead-batch";
    await workspace(ws);
    const testEnv = queueEnv();
    const traces = [exampleTrace({ workspace_id: ws }), exampleTrace({ workspace_id: ws }), exampleTrace({ workspace_id: ws })];
    const message = queued(batchOf(...traces), 6);
    await runDeadLetters([message], testEnv);
    await runDeadLetters([message], testEnv); // redelivered: recorded once
    const letters = await listDeadLetters(env.DB, ws, { limit: 10 });
    expect(letters.map((l) => l.generationId).sort()).toEqual(ids(traces));
    expect(letters.every((l) => l.destinationId === null && l.attempts === 6)).toBe(true);

    expect(await replayDeadLetters(testEnv, ws, { limit: 10 })).toEqual({ replayed: 3, unreadable: 0, remaining: 0 });
    const sent = testEnv.TRACES.drain() as TraceBatch[];
    expect(sent).toHaveLength(1);
    expect(sent[0]?.traces.map((t) => t.generation_id).sort()).toEqual(ids(traces));
    expect(testEnv.TRACE_DELIVERIES.sent).toEqual([]);
  });

  it("records a bare trace dead-lettered before batching and replays it into TRACES", async () => {
    const ws = "ws-dead-trace";
    await workspace(ws);
    const testEnv = queueEnv();
    const trace = exampleTrace({ workspace_id: ws });
    const message = queued(trace, 6);
    await runDeadLetters([message], testEnv);
    const [letter] = await listDeadLetters(env.DB, ws, { limit: 10 });
    expect(letter).toMatchObject({ id: message.id, destinationId: null, generationId: trace.generation_id });
    expect(await replayDeadLetters(testEnv, ws, { limit: 10 })).toEqual({ replayed: 1, unreadable: 0, remaining: 0 });
    expect(testEnv.TRACES.drain()).toEqual([batchOf(trace)]);
    expect(testEnv.TRACE_DELIVERIES.sent).toEqual([]);
  });
});

/** A D1 binding that fails every query, as when D1 is unavailable. */
function failingDatabase(): D1Database {
  return new Proxy(env.DB, {
    get(_target, prop) {
      if (prop === "prepare" || prop === "batch" || prop === "exec") {
        return () => {
          throw new Error("D1 unavailable");
        };
      }
      return Reflect.get(env.DB, prop);
    },
  });
}

/** A POST handler that never answers in time (the caller's timeout aborts it). */
function sinkNever(url: string) {
  return http.post(url, async () => {
    await delay(30_000);
    return new HttpResponse("too late");
  });
}
