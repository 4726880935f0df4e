/**
 * The fault suite: a dead or misbehaving endpoint with a healthy fallback, through the Worker,
 * counting upstream hits. Groq is pinned first (`provider.order`), so health cannot simply move
 * it out of the way: these tests exercise the circuit breaker, Retry-After and the failover loop.
 */
import { env } from "cloudflare:workers";
import fc from "fast-check";
import { http, HttpResponse } from "msw";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { admin, call, chat, mswServer, provision, readSSE, recordUpstream, resetHealth, sseBody, sseResponse, type RouterCompletion } from "../helpers";

const GROQ = "https://groq.upstream.test/v1/chat/completions";
const TOGETHER = "https://together.upstream.test/v1/chat/completions";
const LLAMA = "meta-llama/llama-3.3-70b-instruct";
const GROQ_FIRST = { order: ["groq", "together"] };

let key: string;
beforeAll(async () => {
  mswServer.listen({ onUnhandledRequest: "error" });
  key = await provision("ws-faults", "1000");
});
afterEach(async () => {
  mswServer.resetHandlers();
  await resetHealth();
});
afterAll(() => mswServer.close());

const completion = (content: string) => ({
  choices: [{ index: 0, message: { role: "assistant", content }, finish_reason: "stop" }],
  usage: { prompt_tokens: 5, completion_tokens: 1, total_tokens: 6 },
});

const streamOf = (content: string) =>
  sseBody([
    { choices: [{ index: 0, delta: { role: "assistant", content } }] },
    { choices: [{ index: 0, delta: {}, finish_reason: "stop" }] },
    { choices: [], usage: { prompt_tokens: 5, completion_tokens: 1, total_tokens: 6 } },
    "[DONE]",
  ]);

/** Answer like a healthy OpenAI-compatible provider, JSON or SSE as asked. */
async function healthy(request: { json(): Promise<unknown> }, content: string): Promise<Response> {
  const body = (await request.json()) as { stream?: boolean };
  return body.stream ? sseResponse(streamOf(content)) : HttpResponse.json(completion(content));
}

const sse = (body: ReadableStream<Uint8Array>) => new Response(body, { headers: { "content-type": "text/event-stream" } });
const encoder = new TextEncoder();

/** The faults a dead or misbehaving endpoint shows, each as an msw answer. */
const FAULTS: Array<{ name: string; stream: boolean; answer: () => Response | Promise<Response> }> = [
  { name: "500", stream: false, answer: () => HttpResponse.json({ error: { message: "boom" } }, { status: 500 }) },
  { name: "503", stream: true, answer: () => HttpResponse.json({ error: { message: "overloaded" } }, { status: 503 }) },
  { name: "429 with Retry-After", stream: false, answer: () => HttpResponse.json({ error: { message: "slow down" } }, { status: 429, headers: { "retry-after": "30" } }) },
  { name: "connection reset", stream: true, answer: () => HttpResponse.error() },
  // Headers never come: the 1 s connect timeout of the test environment ends the attempt.
  { name: "hang until timeout", stream: false, answer: () => new Promise<Response>(() => {}) },
  {
    // Headers at once, the first token after 1.5 s: past the 1 s first-token timeout.
    name: "slow first token",
    stream: true,
    answer: () =>
      sse(
        new ReadableStream<Uint8Array>({
          async start(controller) {
            await new Promise((resolve) => setTimeout(resolve, 1500));
            controller.enqueue(encoder.encode(sseBody([{ choices: [{ index: 0, delta: { content: "late" } }] }])));
            controller.close();
          },
        }),
      ),
  },
  {
    // Two chunks (the role, an empty delta), then the connection dies before any content.
    name: "stream that dies after two chunks",
    stream: true,
    answer: () => {
      const chunks = [
        sseBody([{ choices: [{ index: 0, delta: { role: "assistant", content: "" } }] }]),
        sseBody([{ choices: [{ index: 0, delta: { content: "" } }] }]),
      ];
      return sse(
        new ReadableStream<Uint8Array>(
          {
            pull(controller) {
              const next = chunks.shift();
              if (next === undefined) controller.error(new Error("connection reset"));
              else controller.enqueue(encoder.encode(next));
            },
          },
          { highWaterMark: 0 },
        ),
      );
    },
  },
];

interface Hits {
  groq: number;
  together: number;
}

/** Groq answers with `fault` (or healthily once `recovered()`), Together always healthily. */
function upstreams(fault: () => Response | Promise<Response>, recovered: () => boolean = () => false): Hits {
  const hits: Hits = { groq: 0, together: 0 };
  mswServer.use(
    http.post(GROQ, async ({ request }) => {
      hits.groq++;
      return recovered() ? healthy(request, "from groq") : fault();
    }),
    http.post(TOGETHER, ({ request }) => {
      hits.together++;
      return healthy(request, "from together");
    }),
  );
  return hits;
}

/** One request; its content and the provider that served it (null when it failed). */
async function ask(stream: boolean): Promise<{ status: number; content: string | null; provider: string | null }> {
  const res = await chat(key, { model: LLAMA, messages: [{ role: "user", content: "hi" }], provider: GROQ_FIRST, ...(stream ? { stream: true } : {}) });
  if (res.status !== 200) {
    await res.arrayBuffer();
    return { status: res.status, content: null, provider: null };
  }
  if (!stream) {
    const body = (await res.json()) as RouterCompletion;
    return { status: 200, content: body.choices[0]?.message.content ?? null, provider: body.provider ?? null };
  }
  const { chunks, done } = await readSSE(res);
  const failed = chunks.some((c) => c.error);
  return {
    status: failed || !done ? 502 : 200,
    content: chunks.map((c) => c.choices[0]?.delta.content ?? "").join(""),
    provider: chunks.find((c) => c.provider)?.provider ?? null,
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("every fault, with a healthy fallback: every request succeeds, the dead endpoint is tried a bounded number of times", () => {
  const REQUESTS = 8;
  for (const fault of FAULTS) {
    it(fault.name, async () => {
      const hits = upstreams(fault.answer);
      const results = [];
      for (let i = 0; i < REQUESTS; i++) results.push(await ask(fault.stream));
      const succeeded = results.filter((r) => r.status === 200 && r.content === "from together").length;
      console.log(`fault suite: ${fault.name}: ${REQUESTS} requests, ${succeeded} succeeded, ${hits.groq} hits on the dead endpoint, ${hits.together} on the fallback`);
      expect(succeeded).toBe(REQUESTS);
      expect(hits.together).toBe(REQUESTS);
      // A 429's Retry-After stops calls at once; outages open the breaker at its threshold of 3.
      expect(hits.groq).toBe(fault.name.startsWith("429") ? 1 : 3);
    }, 20_000);
  }
});

describe("circuit breaker", () => {
  it("costs one attempt per cool-down window while the endpoint stays down", async () => {
    const hits = upstreams(() => HttpResponse.json({ error: { message: "down" } }, { status: 500 }));
    for (let i = 0; i < 10; i++) expect((await ask(false)).provider).toBe("Together");
    expect(hits.groq).toBe(3);

    // The first cool-down is 10 s; a little after it, requests probe once and only once.
    await sleep(10_500);
    for (let i = 0; i < 10; i++) expect((await ask(false)).provider).toBe("Together");
    expect(hits.groq).toBe(4);
    expect(hits.together).toBe(20);
  }, 30_000);

  it("uses the endpoint again once a probe after the cool-down succeeds", async () => {
    let up = false;
    const hits = upstreams(() => HttpResponse.json({ error: { message: "down" } }, { status: 503 }), () => up);
    for (let i = 0; i < 5; i++) await ask(false);
    expect(hits.groq).toBe(3);
    up = true;
    // Still open: recovered or not, nobody calls it before the cool-down ends.
    await ask(false);
    expect(hits.groq).toBe(3);

    await sleep(10_500);
    const results = [];
    for (let i = 0; i < 5; i++) results.push(await ask(i % 2 === 1));
    expect(results.map((r) => r.provider)).toEqual(["Groq", "Groq", "Groq", "Groq", "Groq"]);
    expect(hits.groq).toBe(8);
    // The endpoints listing shows the breaker closed again.
    const listing = (await (await call(`/api/v1/models/${LLAMA}/endpoints`)).json()) as { data: { endpoints: Array<{ tag: string; status: number; uptime_last_30m: number | null }> } };
    const groq = listing.data.endpoints.find((e) => e.tag === "groq");
    expect(groq?.status).toBe(0);
    expect(groq?.uptime_last_30m).toBeGreaterThan(0);
    expect(groq?.uptime_last_30m).toBeLessThan(100);
  }, 30_000);

  it("answers 503 with Retry-After, calling nothing, when the only endpoint's breaker is open", async () => {
    const hits = upstreams(() => HttpResponse.json({ error: { message: "down" } }, { status: 500 }));
    const onlyGroq = { model: LLAMA, messages: [{ role: "user", content: "hi" }], provider: { only: ["groq"] } };
    for (let i = 0; i < 3; i++) expect((await chat(key, onlyGroq)).status).toBe(502);
    expect(hits.groq).toBe(3);
    const res = await chat(key, onlyGroq);
    expect(res.status).toBe(503);
    expect(Number(res.headers.get("retry-after"))).toBeGreaterThan(0);
    const body = (await res.json()) as { error: { message: string; metadata: { previous_errors: Array<{ skipped?: boolean }> } } };
    expect(body.error.message).toMatch(/circuit open/);
    expect(body.error.metadata.previous_errors).toEqual([expect.objectContaining({ skipped: true })]);
    expect(hits.groq).toBe(3);
  });
});

describe("Retry-After", () => {
  it("is honoured: the endpoint is not called until it passes, then used again", async () => {
    let limited = true;
    const hits = upstreams(() => HttpResponse.json({ error: { message: "slow down" } }, { status: 429, headers: { "retry-after": "1" } }), () => !limited);
    expect((await ask(false)).provider).toBe("Together");
    limited = false;
    for (let i = 0; i < 4; i++) expect((await ask(false)).provider).toBe("Together");
    expect(hits.groq).toBe(1);
    await sleep(1_200);
    expect((await ask(false)).provider).toBe("Groq");
    expect(hits.groq).toBe(2);
  }, 10_000);
});

describe("attempt budget", () => {
  it("stops after UPSTREAM_MAX_ATTEMPTS calls and says so", async () => {
    // Five models, each with one endpoint, all failing: the default budget is 5 calls.
    const failing = recordUpstream(() => HttpResponse.json({ error: { message: "down" } }, { status: 500 }));
    mswServer.use(failing.handler);
    const models = ["openai/gpt-4.1", "anthropic/claude-sonnet-4.5", "google/gemini-2.5-pro", "mistralai/mistral-large", "deepseek/deepseek-chat", "x-ai/grok-4"];
    const res = await chat(key, { model: models[0], models: models.slice(1), messages: [{ role: "user", content: "hi" }], provider: { ignore: ["azure-eu", "google-vertex-anthropic-eu", "google-vertex-eu"] } });
    const body = (await res.json()) as { error: { message: string; metadata: { budget?: string } } };
    expect(res.status).toBe(502);
    expect(failing.hits.length).toBe(Number(env.UPSTREAM_MAX_ATTEMPTS));
    expect(body.error.metadata.budget).toMatch(/^Stopped after 5 upstream calls/);
  });
});

describe("explainable routing", () => {
  it("names the endpoint and the calls made, and explains the order on request", async () => {
    upstreams(() => HttpResponse.json({ error: { message: "boom" } }, { status: 500 }));
    const res = await chat(key, { model: LLAMA, messages: [{ role: "user", content: "hi" }], provider: GROQ_FIRST }, { headers: { authorization: `Bearer ${key}`, "content-type": "application/json", "x-switchyard-explain": "1" } });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-switchyard-attempts")).toBe("2");
    expect(res.headers.get("x-switchyard-endpoint")).toMatch(/^together\//);
    const route = JSON.parse(res.headers.get("x-switchyard-route") ?? "null") as Array<[number, string, string, string[]]>;
    expect(route.map(([position, provider]) => [position, provider])).toEqual([
      [1, "groq"],
      [2, "together"],
    ]);
    expect(route[0]![3].join(" ")).toMatch(/provider\.order/);
  });

  it("answers a dry run with every candidate and exclusion, calling nothing", async () => {
    const upstream = recordUpstream();
    mswServer.use(upstream.handler);
    const res = await call("/api/v1/chat/completions/dry-run", {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "openai/gpt-4o-mini", messages: [{ role: "user", content: "hi" }], provider: { ignore: ["openrouter"], max_price: { prompt: 0.1 } } }),
    });
    expect(res.status).toBe(200);
    const { data } = (await res.json()) as { data: { candidates: unknown[]; excluded: Array<{ provider: string; constraint: string }>; error?: { message: string } } };
    expect(data.candidates).toEqual([]);
    expect(data.excluded.map((e) => [e.provider, e.constraint]).sort()).toEqual([
      ["azure-eu", "max_price"],
      ["openai", "max_price"],
      ["openai-eu", "max_price"],
      ["openrouter", "provider.ignore"],
    ]);
    expect(data.error?.message).toBe("No endpoint can serve openai/gpt-4o-mini: max_price removed 3 endpoints (openai, openai-eu, azure-eu); provider.ignore removed 1 endpoint (openrouter)");
    expect(upstream.hits).toEqual([]);
  });
});

describe("filters hold under any faults (property)", () => {
  const PROVIDERS = ["openai", "openai-eu", "azure-eu", "openrouter"] as const;
  const subset = fc.subarray([...PROVIDERS]);
  const fault = fc.constantFrom("ok", "500", "429", "reset");

  it("never sends a request to an endpoint the request's or the workspace's filters excluded", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          requestOnly: fc.option(subset, { nil: undefined }),
          requestIgnore: fc.option(subset, { nil: undefined }),
          workspaceOnly: fc.option(subset, { nil: undefined }),
          workspaceIgnore: fc.option(subset, { nil: undefined }),
          faults: fc.record({ openai: fault, "openai-eu": fault, "azure-eu": fault, openrouter: fault }),
          stream: fc.boolean(),
        }),
        async ({ requestOnly, requestIgnore, workspaceOnly, workspaceIgnore, faults, stream }) => {
          await resetHealth();
          const workspace = { ...(workspaceOnly ? { only: workspaceOnly } : {}), ...(workspaceIgnore ? { ignore: workspaceIgnore } : {}) };
          const saved = await admin("/workspaces/ws-faults", "PUT", { name: "Faults", provider: Object.keys(workspace).length ? workspace : null });
          expect(saved.status).toBe(200);
          const hosts: string[] = [];
          mswServer.use(
            http.all(/^https:\/\/[a-z0-9-]+\.upstream\.test\//, async ({ request }) => {
              const host = new URL(request.url).host.split(".")[0]!;
              const provider = host === "azure-openai-eu" ? "azure-eu" : host;
              hosts.push(provider);
              const f = faults[provider as keyof typeof faults] ?? "ok";
              if (f === "500") return HttpResponse.json({ error: { message: "boom" } }, { status: 500 });
              if (f === "429") return HttpResponse.json({ error: { message: "slow" } }, { status: 429, headers: { "retry-after": "1" } });
              if (f === "reset") return HttpResponse.error();
              return healthy(request, "ok");
            }),
          );
          const provider = { ...(requestOnly ? { only: requestOnly } : {}), ...(requestIgnore ? { ignore: requestIgnore } : {}) };
          for (let i = 0; i < 2; i++) {
            const res = await chat(key, { model: "openai/gpt-4o-mini", messages: [{ role: "user", content: `q${i}` }], provider, ...(stream ? { stream: true } : {}) });
            await res.arrayBuffer();
          }
          const allowed = PROVIDERS.filter(
            (p) =>
              (requestOnly?.includes(p) ?? true) && (workspaceOnly?.includes(p) ?? true) && !(requestIgnore?.includes(p) ?? false) && !(workspaceIgnore?.includes(p) ?? false),
          );
          for (const host of hosts) expect(allowed).toContain(host);
          mswServer.resetHandlers();
        },
      ),
      { numRuns: 40 },
    );
    await admin("/workspaces/ws-faults", "PUT", { name: "Faults", provider: null });
  }, 120_000);
});
