/**
 * The producer: one message per trace within the queue's 128 KB limit (large content goes to R2
 * and comes back at delivery), no content for zero-retention requests, and never an exception
 * into the request path.
 */
import { env } from "cloudflare:workers";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { contentKey } from "../../../src/traces/content";
import { forgetDestinations, putDestination } from "../../../src/traces/destination-store";
import { enqueueTrace } from "../../../src/traces/producer";
import type { Trace } from "../../../src/traces/schema";
import { mswServer } from "../../helpers";
import { CapturingQueue, exampleTrace, queued, queueEnv, runDeliveries, runTraces, sink, workspace } from "./fixtures";

beforeAll(() => mswServer.listen({ onUnhandledRequest: "error" }));
afterEach(() => mswServer.resetHandlers());
afterAll(() => mswServer.close());

const QUEUE_MESSAGE_LIMIT = 128 * 1024;

function largeTrace(workspaceId: string, bytes: number): { trace: Trace; prompt: string } {
  const prompt = `BEGIN-${"lorem ipsum dolor sit amet ".repeat(Math.ceil(bytes / 27)).slice(0, bytes)}-END`;
  return { trace: exampleTrace({ workspace_id: workspaceId, content: { input: [{ role: "user", content: prompt }], output: { text: "A short answer. OUTPUT-MARKER-91bc" } } }), prompt };
}

describe("enqueueTrace", () => {
  it("sends a small trace whole, as one JSON message", async () => {
    const traces = new CapturingQueue();
    const trace = exampleTrace();
    await enqueueTrace({ TRACES: traces, TRACE_CONTENT: env.TRACE_CONTENT }, trace);
    expect(traces.sent).toHaveLength(1);
    expect(traces.sent[0]?.contentType).toBe("json");
    expect(traces.sent[0]?.body).toEqual(trace);
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
    await enqueueTrace(testEnv, trace);
    expect(testEnv.TRACES.sent).toHaveLength(1);
    const sent = testEnv.TRACES.sent[0];
    expect(sent?.bytes).toBeLessThan(QUEUE_MESSAGE_LIMIT);
    const message = sent?.body as Trace;
    expect(message.content).toBeUndefined();
    expect(message.content_ref?.key).toBe(contentKey(trace));
    expect(message.content_ref?.key).toMatch(new RegExp(`^traces/${ws}/2026-08-01/${trace.generation_id}\\.json$`));
    expect(await env.TRACE_CONTENT.head(message.content_ref?.key ?? "")).not.toBeNull();

    const hits = sink("https://hooks.sink.test/large");
    const privateHits = sink("https://hooks.sink.test/large-private");
    await runTraces([queued(message)], testEnv);
    const deliveries = testEnv.TRACE_DELIVERIES.sent;
    expect(deliveries).toHaveLength(2);
    for (const d of deliveries) expect(d.bytes).toBeLessThan(QUEUE_MESSAGE_LIMIT);
    const result2 = await runDeliveries(
      testEnv.TRACE_DELIVERIES.drain().map((b) => queued(b)),
      testEnv,
    );
    expect(result2.explicitAcks).toHaveLength(2);

    expect(hits).toHaveLength(1);
    const delivered = JSON.parse(hits[0]?.body ?? "{}") as Trace;
    expect(delivered.content?.input[0]?.content).toBe(prompt);
    expect(delivered.content?.output.text).toContain("OUTPUT-MARKER-91bc");
    expect(delivered.content_ref).toBeUndefined();

    expect(privateHits).toHaveLength(1);
    expect(privateHits[0]?.body).not.toContain("BEGIN-lorem");
    expect(privateHits[0]?.body).not.toContain("OUTPUT-MARKER-91bc");
  });

  it("never enqueues or stores the content of a zero-retention request", async () => {
    const testEnv = queueEnv();
    const { trace } = largeTrace("ws-zdr", 200 * 1024);
    const zdr = { ...trace, zero_retention: true };
    await enqueueTrace(testEnv, zdr);
    const message = testEnv.TRACES.sent[0]?.body as Trace;
    expect(message.content).toBeUndefined();
    expect(message.content_ref).toBeUndefined();
    expect(JSON.stringify(message)).not.toContain("lorem ipsum");
    expect(await env.TRACE_CONTENT.head(contentKey(zdr))).toBeNull();
  });

  it("swallows every failure: a queue that throws, a malformed trace, a missing bucket", async () => {
    const failing = new CapturingQueue();
    failing.failSends = 1;
    await expect(enqueueTrace({ TRACES: failing }, exampleTrace())).resolves.toBeUndefined();

    const traces = new CapturingQueue();
    await expect(enqueueTrace({ TRACES: traces }, { ...exampleTrace(), tokens: { prompt: -1 } } as unknown as Trace)).resolves.toBeUndefined();
    expect(traces.sent).toEqual([]);

    // Without TRACE_CONTENT a too-large trace is sent without its content rather than dropped.
    const { trace } = largeTrace("ws-nobucket", 200 * 1024);
    await enqueueTrace({ TRACES: traces }, trace);
    const message = traces.sent[0]?.body as Trace;
    expect(message.generation_id).toBe(trace.generation_id);
    expect(message.content).toBeUndefined();
  });
});
