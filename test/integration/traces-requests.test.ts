/**
 * Requests produce traces end to end, through the real queues and consumers: a non-streamed and a
 * streamed request each deliver one trace with the tokens and cost they were charged, a 200 KB
 * prompt travels through R2, a failed request is traced with its attempts, a zero-retention
 * request carries no content, concurrent requests share TRACES messages (each request waiting for
 * its trace in its own context), and a burst of 500 requests delivers 500 traces.
 */
import { env } from "cloudflare:workers";
import { http, HttpResponse } from "msw";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Trace } from "../../src/traces/schema";
import { admin, chat, eventually, mswServer, provision, readSSE, recordUpstream, resetHealth, sseBody, sseResponse, type RouterCompletion } from "../helpers";
import { sink } from "../unit/traces/fixtures";

const WS = "ws-traced";
const OPENAI = "https://openai.upstream.test/v1/chat/completions";
const MODEL = "openai/gpt-4o-mini";
const only = { only: ["openai"] };
let key: string;

beforeAll(async () => {
  mswServer.listen({ onUnhandledRequest: "error" });
  key = await provision(WS, "1000");
  const hook = await admin(`/workspaces/${WS}/destinations/hook`, "PUT", { type: "webhook", url: "https://hooks.sink.test/requests", signing_secret: "whsec_requests_0123456789" });
  expect(hook.status).toBe(201);
});
afterEach(async () => {
  mswServer.resetHandlers();
  await resetHealth();
});
afterAll(() => mswServer.close());

/** The traces the webhook received so far, by generation id. */
function received(hits: ReturnType<typeof sink>): Map<string, Trace> {
  return new Map(hits.map((h) => JSON.parse(h.body) as Trace).map((t) => [t.generation_id, t]));
}

function upstream(usage = { prompt_tokens: 12, completion_tokens: 3, total_tokens: 15 }) {
  mswServer.use(
    http.post(OPENAI, async ({ request }) => {
      const body = (await request.json()) as { stream?: boolean };
      if (body.stream) {
        return sseResponse(
          sseBody([
            { choices: [{ index: 0, delta: { role: "assistant", content: "Hello " } }] },
            { choices: [{ index: 0, delta: { content: "there" } }] },
            { choices: [{ index: 0, delta: {}, finish_reason: "stop" }] },
            { choices: [], usage },
            "[DONE]",
          ]),
        );
      }
      return HttpResponse.json({ choices: [{ index: 0, message: { role: "assistant", content: "Hello there" }, finish_reason: "stop" }], usage });
    }),
  );
}

describe("a trace per request", () => {
  it("non-streamed and streamed: one trace each, with the tokens and cost that were charged", async () => {
    const hits = sink("https://hooks.sink.test/requests");
    upstream();
    const plain = await chat(key, { model: MODEL, messages: [{ role: "user", content: "Say hello" }], provider: only, user: "u-1", session_id: "s-1" });
    const plainBody = (await plain.json()) as RouterCompletion;
    const streamed = await chat(key, { model: MODEL, messages: [{ role: "user", content: "Say hello, streamed" }], provider: only, stream: true });
    const { chunks } = await readSSE(streamed);
    const streamedId = chunks[0]!.id;
    const streamedUsage = chunks.find((c) => c.usage)!.usage!;

    const traces = await eventually(async () => {
      const byId = received(hits);
      return byId.has(plainBody.id) && byId.has(streamedId) ? byId : undefined;
    }, 30_000);
    expect(hits).toHaveLength(2);

    const a = traces.get(plainBody.id)!;
    expect(a).toMatchObject({
      v: 1,
      workspace_id: WS,
      model: MODEL,
      user: "u-1",
      session_id: "s-1",
      streamed: false,
      status: 200,
      error: null,
      tokens: { prompt: 12, completion: 3 },
      endpoint: { provider: "openai", region: "us" },
      region: "global",
      content: { input: [{ role: "user", content: "Say hello" }], output: { text: "Hello there" } },
    });
    // Cost in µ$ as charged: the usage object's USD figure, exactly.
    expect(a.cost.charged_micros).toBe(Math.round(plainBody.usage!.cost * 1e6));
    expect(a.attempts).toEqual([expect.objectContaining({ provider: "OpenAI", status: 200, error_type: null })]);

    const b = traces.get(streamedId)!;
    expect(b).toMatchObject({ streamed: true, status: 200, tokens: { prompt: 12, completion: 3 }, content: { output: { text: "Hello there" } } });
    expect(b.cost.charged_micros).toBe(Math.round(streamedUsage.cost * 1e6));
    expect(b.timings.ttft_ms).not.toBeNull();
  }, 40_000);

  it("moves a 200 KB prompt through R2 and still delivers it whole", async () => {
    const hits = sink("https://hooks.sink.test/requests");
    upstream();
    const prompt = `${"lorem ipsum ".repeat(17_000)}END`;
    const res = await chat(key, { model: MODEL, messages: [{ role: "user", content: prompt }], provider: only });
    const { id } = (await res.json()) as RouterCompletion;
    const trace = await eventually(async () => received(hits).get(id), 30_000);
    expect(trace.content?.input[0]).toMatchObject({ content: prompt });
    const stored = await env.TRACE_CONTENT.list({ prefix: `traces/${WS}/` });
    expect(stored.objects.some((o) => o.key.endsWith(`${id}.json`))).toBe(true);
  }, 40_000);

  it("traces a request that failed upstream, with every attempt", async () => {
    const hits = sink("https://hooks.sink.test/requests");
    mswServer.use(http.post(OPENAI, () => HttpResponse.json({ error: { message: "boom" } }, { status: 500 })));
    const failed = await chat(key, { model: MODEL, messages: [{ role: "user", content: "secret words" }], provider: only });
    expect(failed.status).toBe(502);
    const requestId = failed.headers.get("x-request-id");
    const trace = await eventually(async () => [...received(hits).values()].find((t) => t.request_id === requestId), 30_000);
    expect(trace).toMatchObject({ status: 502, endpoint: null, error: { type: "server" }, attempts: [{ provider: "OpenAI", status: 500 }] });
  }, 40_000);
});

describe("refused requests", () => {
  it("traces a request the ledger refused for want of credit, with no attempt and no charge", async () => {
    const broke = await provision("ws-traced-broke", null);
    const hook = await admin(`/workspaces/ws-traced-broke/destinations/hook`, "PUT", { type: "webhook", url: "https://hooks.sink.test/requests", signing_secret: "whsec_requests_0123456789" });
    expect(hook.status).toBe(201);
    const hits = sink("https://hooks.sink.test/requests");
    const upstream = recordUpstream();
    mswServer.use(upstream.handler);
    const res = await chat(broke, { model: MODEL, messages: [{ role: "user", content: "no money" }], provider: only });
    expect(res.status).toBe(402);
    const requestId = res.headers.get("x-request-id");
    const trace = await eventually(async () => [...received(hits).values()].find((t) => t.request_id === requestId), 30_000);
    expect(trace).toMatchObject({ workspace_id: "ws-traced-broke", status: 402, endpoint: null, attempts: [], cost: { charged_micros: 0 }, error: { type: "payment_required" } });
    expect(upstream.hits).toEqual([]);
  }, 40_000);
});

describe("zero retention", () => {
  it("sends the trace without any content", async () => {
    const hits = sink("https://hooks.sink.test/requests");
    // Groq is the seed's zero-retention provider: `zdr: true` routes there.
    mswServer.use(
      http.post("https://groq.upstream.test/v1/chat/completions", () =>
        HttpResponse.json({ choices: [{ index: 0, message: { role: "assistant", content: "private answer" }, finish_reason: "stop" }], usage: { prompt_tokens: 4, completion_tokens: 2, total_tokens: 6 } }),
      ),
    );
    const res = await chat(key, { model: "meta-llama/llama-3.3-70b-instruct", messages: [{ role: "user", content: "keep this private" }], provider: { zdr: true } });
    expect(res.status).toBe(200);
    const body = (await res.json()) as RouterCompletion;
    const trace = await eventually(async () => received(hits).get(body.id), 30_000);
    expect(trace).toMatchObject({ zero_retention: true, endpoint: { provider: "groq" }, tokens: { prompt: 4, completion: 2 } });
    expect(trace.content).toBeUndefined();
    const delivered = hits.find((h) => h.body.includes(body.id))!.body;
    expect(delivered).not.toContain("keep this private");
    expect(delivered).not.toContain("private answer");
  }, 40_000);
});

describe("micro-batching across requests", () => {
  it("sends the traces of concurrent requests together, and delivers each once", async () => {
    const hits = sink("https://hooks.sink.test/requests");
    upstream();
    // Count what the Worker's TRACES binding carries (the test shares the Worker's env).
    const traces = env.TRACES as Queue & { sendBatch: Queue["sendBatch"] };
    const original = Object.getOwnPropertyDescriptor(traces, "sendBatch");
    const send = traces.sendBatch.bind(traces);
    const messages: number[] = [];
    traces.sendBatch = async (batch, options) => {
      const list = [...batch];
      messages.push(...list.map((m) => (m.body as { traces: unknown[] }).traces.length));
      return send(list, options);
    };
    try {
      const responses = await Promise.all(Array.from({ length: 8 }, (_, i) => chat(key, { model: MODEL, messages: [{ role: "user", content: `together ${i}` }], provider: only })));
      const ids = await Promise.all(responses.map(async (r) => ((await r.json()) as RouterCompletion).id));
      await eventually(async () => (ids.every((id) => received(hits).has(id)) ? true : undefined), 30_000);
      expect(hits.filter((h) => ids.some((id) => h.body.includes(id)))).toHaveLength(8);
    } finally {
      if (original) Object.defineProperty(traces, "sendBatch", original);
      else Reflect.deleteProperty(traces, "sendBatch");
    }
    // 8 traces in fewer messages than traces (one, unless the requests ended more than a window apart).
    expect(messages.reduce((a, b) => a + b, 0)).toBe(8);
    expect(messages.length).toBeLessThan(8);
  }, 40_000);
});

describe("burst", () => {
  it("delivers 500 traces for 500 requests", async () => {
    const hits = sink("https://hooks.sink.test/requests");
    upstream({ prompt_tokens: 5, completion_tokens: 1, total_tokens: 6 });
    const ids: string[] = [];
    const started = Date.now();
    for (let round = 0; round < 50; round++) {
      const batch = await Promise.all(
        Array.from({ length: 10 }, async (_, i) => {
          const res = await chat(key, { model: MODEL, messages: [{ role: "user", content: `burst ${round}-${i}` }], provider: only });
          return ((await res.json()) as RouterCompletion).id;
        }),
      );
      ids.push(...batch);
    }
    const sent = Date.now() - started;
    const traces = await eventually(async () => {
      const byId = received(hits);
      return ids.every((id) => byId.has(id)) ? byId : undefined;
    }, 90_000);
    console.log(`trace burst: 500 requests in ${sent} ms, ${traces.size} traces delivered (${hits.length} webhook calls) ${Date.now() - started} ms after the first request`);
    expect(new Set(ids).size).toBe(500);
    expect(ids.filter((id) => traces.has(id))).toHaveLength(500);
    // Exactly once per trace at the sink.
    expect(hits).toHaveLength(500);
  }, 150_000);
});
