/**
 * The trace queues end to end with batches built by `createMessageBatch`: the TRACES consumer fans
 * out one delivery per (trace, destination), the TRACE_DELIVERIES consumer delivers each on its own
 * (retrying with growing delays, dead-lettering what never succeeds), the TRACE_DLQ consumer
 * records dead letters, and a replay sends them back.
 */
import { env } from "cloudflare:workers";
import { HttpResponse } from "msw";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { forgetDestinations, putDestination } from "../../../src/traces/destination-store";
import { deliveryStates } from "../../../src/traces/delivery-state";
import { listDeadLetters, replayDeadLetters } from "../../../src/traces/dead-letters";
import type { DeliveryMessage } from "../../../src/traces/messages";
import type { Trace } from "../../../src/traces/schema";
import type { DestinationInput } from "../../../src/traces/destination-config";
import { mswServer } from "../../helpers";
import { exampleTrace, queued, queueEnv, runDeadLetters, runDeliveries, runTraces, sink, workspace, type QueuedMessage, type SinkHit } from "./fixtures";

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

/** Generation ids of every span in OTLP requests. */
function otlpGenerations(hits: SinkHit[]): string[] {
  return hits.flatMap((hit) => {
    const body = JSON.parse(hit.body) as { resourceSpans: Array<{ scopeSpans: Array<{ spans: Array<{ attributes: Array<{ key: string; value: { stringValue?: string } }> }> }> }> };
    return body.resourceSpans.flatMap((r) => r.scopeSpans.flatMap((s) => s.spans.map((span) => span.attributes.find((a) => a.key === "switchyard.generation.id")?.value.stringValue ?? "")));
  });
}

/** Fan `traces` out and return the delivery messages as Queues would hand them over. */
async function fanOut(testEnv: ReturnType<typeof queueEnv>, traces: Trace[]): Promise<QueuedMessage[]> {
  const result = await runTraces(
    traces.map((t) => queued(t)),
    testEnv,
  );
  expect(result.retryMessages).toEqual([]);
  expect(result.explicitAcks).toHaveLength(traces.length);
  return testEnv.TRACE_DELIVERIES.drain().map((body) => queued(body));
}

describe("trace fan-out and delivery", () => {
  it("delivers every trace exactly once to each of three destinations while one fails twice, with growing retry delays", async () => {
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
    const ids = traces.map((t) => t.generation_id).sort();
    let pending = await fanOut(testEnv, traces);
    expect(pending).toHaveLength(9);
    expect(testEnv.TRACE_DELIVERIES.batches).toEqual([9]);
    expect(new Set(pending.map((m) => (m.body as DeliveryMessage).destination_id))).toEqual(new Set(["hook-a", "otel-b", "hook-c"]));

    const delays: number[] = [];
    for (let round = 1; pending.length > 0; round++) {
      expect(round).toBeLessThanOrEqual(3);
      const result = await runDeliveries(pending, testEnv);
      const retried = new Map(result.retryMessages.map((r) => [r.msgId, r.delaySeconds ?? 0]));
      for (const m of pending) expect(result.explicitAcks.includes(m.id) !== retried.has(m.id)).toBe(true);
      for (const m of pending.filter((m) => retried.has(m.id))) expect((m.body as DeliveryMessage).destination_id).toBe("hook-c");
      if (retried.size > 0) delays.push(Math.min(...retried.values()));
      // Queues hands retried messages back in a later batch with one more attempt.
      pending = pending.filter((m) => retried.has(m.id)).map((m) => ({ ...m, attempts: m.attempts + 1 }));
    }

    expect(delays).toHaveLength(2);
    expect(delays[1]).toBeGreaterThan(delays[0] ?? Infinity);
    expect(hitsA.map(generationOf).sort()).toEqual(ids);
    expect(otlpGenerations(hitsB).sort()).toEqual(ids);
    expect(hitsB).toHaveLength(1); // one OTLP request carried the batch's three spans
    expect(acceptedC.sort()).toEqual(ids);

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
    let pending = await fanOut(testEnv, [trace]);
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
    // Non-decreasing, growing at first, capped later.
    for (let i = 1; i < delays.length; i++) expect(delays[i]).toBeGreaterThanOrEqual(delays[i - 1] ?? 0);
    expect(delays[1]).toBeGreaterThan(delays[0] ?? Infinity);
    expect(good.map(generationOf)).toEqual([trace.generation_id]);
    expect(broken).toHaveLength(MAX_RETRIES + 1);

    // After its last retry Queues moves the message to TRACE_DLQ, whose consumer records it.
    const dead = last ?? pending[0];
    if (!dead) throw new Error("no dead message");
    const dlq = await runDeadLetters([dead], testEnv);
    expect(dlq.explicitAcks).toEqual([dead.id]);
    // Queues delivers at least once: the same dead letter again is recorded once.
    await runDeadLetters([dead], testEnv);
    const letters = await listDeadLetters(env.DB, ws, { limit: 10 });
    expect(letters).toHaveLength(1);
    expect(letters[0]).toMatchObject({ id: dead.id, destinationId: "broken", generationId: trace.generation_id });
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

  it("records a trace whose fan-out exhausted its retries and replays it into TRACES", async () => {
    const ws = "ws-dead-trace";
    await workspace(ws);
    const testEnv = queueEnv();
    const trace = exampleTrace({ workspace_id: ws });
    const message = queued(trace, 6);
    await runDeadLetters([message], testEnv);
    const [letter] = await listDeadLetters(env.DB, ws, { limit: 10 });
    expect(letter).toMatchObject({ id: message.id, destinationId: null, generationId: trace.generation_id });
    expect(await replayDeadLetters(testEnv, ws, { limit: 10 })).toEqual({ replayed: 1, unreadable: 0, remaining: 0 });
    expect(testEnv.TRACES.drain()).toEqual([trace]);
    expect(testEnv.TRACE_DELIVERIES.sent).toEqual([]);
  });

  it("dead-letters a permanent failure (4xx) at once instead of retrying it", async () => {
    const ws = "ws-permanent";
    await workspace(ws);
    await destination(ws, "unauthorized", webhook("https://hooks.sink.test/401"));
    sink("https://hooks.sink.test/401", () => new HttpResponse("bad signature", { status: 401 }));
    const testEnv = queueEnv();
    const pending = await fanOut(testEnv, [exampleTrace({ workspace_id: ws })]);
    const result = await runDeliveries(pending, testEnv);
    expect(result.retryMessages).toEqual([]);
    expect(result.explicitAcks).toHaveLength(1);
    const [letter] = await listDeadLetters(env.DB, ws, { limit: 10 });
    expect(letter?.error).toMatch(/HTTP 401/);
  });

  it("honours a destination's Retry-After", async () => {
    const ws = "ws-retry-after";
    await workspace(ws);
    await destination(ws, "slow", webhook("https://hooks.sink.test/slow"));
    sink("https://hooks.sink.test/slow", () => new HttpResponse("slow down", { status: 429, headers: { "retry-after": "120" } }));
    const testEnv = queueEnv();
    const pending = await fanOut(testEnv, [exampleTrace({ workspace_id: ws })]);
    const result = await runDeliveries(pending, testEnv);
    expect(result.retryMessages).toEqual([{ msgId: pending[0]?.id, delaySeconds: 120 }]);
  });

  it("fans out only to enabled destinations that sample the session and accept the key", async () => {
    const ws = "ws-filters";
    await workspace(ws);
    await destination(ws, "all", webhook("https://hooks.sink.test/all"));
    await destination(ws, "none", webhook("https://hooks.sink.test/none", { sampling_rate: 0 }));
    await destination(ws, "key-2", webhook("https://hooks.sink.test/key2", { api_key_ids: ["key-2"] }));
    await destination(ws, "off", webhook("https://hooks.sink.test/off", { enabled: false }));
    const testEnv = queueEnv();
    const pending = await fanOut(testEnv, [exampleTrace({ workspace_id: ws, key_id: "key-1" }), exampleTrace({ workspace_id: ws, key_id: "key-2" })]);
    const pairs = pending.map((m) => `${(m.body as DeliveryMessage).destination_id}:${(m.body as DeliveryMessage).trace.key_id}`).sort();
    expect(pairs).toEqual(["all:key-1", "all:key-2", "key-2:key-2"]);
  });

  it("acks a trace with no destination, drops malformed messages, and retries the traces whose sendBatch failed", async () => {
    const ws = "ws-nodest";
    await workspace(ws);
    const testEnv = queueEnv();
    const lonely = queued(exampleTrace({ workspace_id: ws }));
    const junk = queued({ v: 99, nonsense: true });
    const result = await runTraces([lonely, junk], testEnv);
    expect(result.explicitAcks.sort()).toEqual([junk.id, lonely.id].sort());
    expect(testEnv.TRACE_DELIVERIES.sent).toEqual([]);

    const ws2 = "ws-sendfail";
    await workspace(ws2);
    await destination(ws2, "hook", webhook("https://hooks.sink.test/sendfail"));
    testEnv.TRACE_DELIVERIES.failSends = 1;
    const message = queued(exampleTrace({ workspace_id: ws2 }), 2);
    const failed = await runTraces([message], testEnv);
    expect(failed.explicitAcks).toEqual([]);
    expect(failed.retryMessages).toEqual([{ msgId: message.id, delaySeconds: 20 }]);
  });

  it("splits fan-out into sendBatch calls within 100 messages and 256 KB", async () => {
    const ws = "ws-chunks";
    await workspace(ws);
    for (const n of [1, 2, 3]) await destination(ws, `hook-${n}`, webhook(`https://hooks.sink.test/chunk${n}`));
    const testEnv = queueEnv();
    // 40 traces × 3 destinations = 120 deliveries: more than one sendBatch may carry.
    const small = Array.from({ length: 40 }, () => queued(exampleTrace({ workspace_id: ws })));
    await runTraces(small, testEnv);
    expect(testEnv.TRACE_DELIVERIES.batches.every((n) => n <= 100)).toBe(true);
    expect(testEnv.TRACE_DELIVERIES.batches.reduce((a, b) => a + b, 0)).toBe(120);

    const big = exampleTrace({ workspace_id: ws });
    const bigTrace: Trace = { ...big, content: { input: [{ role: "user", content: "x".repeat(90 * 1024) }], output: { text: "ok" } } };
    const bigEnv = queueEnv();
    const result = await runTraces([queued(bigTrace), queued({ ...bigTrace, generation_id: `${bigTrace.generation_id}-2` })], bigEnv);
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
