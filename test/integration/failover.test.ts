import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { http, HttpResponse } from "msw";
import { app } from "../../src/app";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { chat, mswServer, provision, resetHealth, readSSE, sseBody, sseResponse, type RouterCompletion, type RouterError } from "../helpers";

// meta-llama/llama-3.3-70b-instruct: Groq is cheaper (tried first), Together second.
const GROQ = "https://groq.upstream.test/v1/chat/completions";
const TOGETHER = "https://together.upstream.test/v1/chat/completions";
const MODEL = "meta-llama/llama-3.3-70b-instruct";

let key: string;
beforeAll(async () => {
  mswServer.listen({ onUnhandledRequest: "error" });
  // A fixed cheapest-first order (Groq, then Together) instead of load balancing.
  key = await provision("ws-failover", "100", { sort: "price" });
});
afterEach(async () => {
  mswServer.resetHandlers();
  await resetHealth();
});
afterAll(() => mswServer.close());

const ok = (content: string) => ({
  choices: [{ index: 0, message: { role: "assistant", content }, finish_reason: "stop" }],
  usage: { prompt_tokens: 5, completion_tokens: 1, total_tokens: 6 },
});

const streamOk = (content: string) =>
  sseBody([
    { choices: [{ index: 0, delta: { role: "assistant", content } }] },
    { choices: [{ index: 0, delta: {}, finish_reason: "stop" }] },
    { choices: [], usage: { prompt_tokens: 5, completion_tokens: 1, total_tokens: 6 } },
    "[DONE]",
  ]);

function counting() {
  const hits = { groq: 0, together: 0 };
  return hits;
}

const ask = (extra: Record<string, unknown> = {}) => chat(key, { model: MODEL, messages: [{ role: "user", content: "hi" }], ...extra });

describe("failover before the first byte", () => {
  const faults: Array<[string, () => Response | Promise<Response>]> = [
    ["500", () => HttpResponse.json({ error: { message: "boom" } }, { status: 500 })],
    ["503", () => HttpResponse.json({ error: { message: "overloaded" } }, { status: 503 })],
    ["429", () => HttpResponse.json({ error: { message: "slow down" } }, { status: 429, headers: { "retry-after": "7" } })],
    ["connection reset", () => HttpResponse.error()],
    ["timeout", () => new Promise<Response>(() => {})],
    // Headers, then a body that never ends: bounded by the connect timeout (error) and the
    // first-token timeout (answer), even though the mock's body ignores the attempt's abort.
    ["a 503 whose error body never ends", () => new Response(new ReadableStream({ start() {} }), { status: 503 })],
    [
      "a 200 whose body stops half-way",
      () =>
        new Response(
          new ReadableStream({
            start(controller) {
              controller.enqueue(new TextEncoder().encode('{"choices":[{"message":'));
            },
          }),
          { headers: { "content-type": "application/json" } },
        ),
    ],
  ];

  for (const [name, fault] of faults) {
    it(`moves to the next endpoint after ${name}`, async () => {
      const hits = counting();
      mswServer.use(
        http.post(GROQ, () => {
          hits.groq++;
          return fault();
        }),
        http.post(TOGETHER, () => {
          hits.together++;
          return HttpResponse.json(ok("from together"));
        }),
      );
      const res = await ask();
      expect(res.status).toBe(200);
      const body = (await res.json()) as RouterCompletion;
      expect(body.choices[0]!.message.content).toBe("from together");
      expect(body.provider).toBe("Together");
      expect(res.headers.get("x-switchyard-attempts")).toBe("2");
      expect(hits).toEqual({ groq: 1, together: 1 });
    });
  }

  it("fails over on a malformed 200 answer", async () => {
    mswServer.use(
      http.post(GROQ, () => new HttpResponse("{not json", { headers: { "content-type": "application/json" } })),
      http.post(TOGETHER, () => HttpResponse.json(ok("recovered"))),
    );
    const res = await ask();
    expect(res.status).toBe(200);
    expect(((await res.json()) as RouterCompletion).choices[0]!.message.content).toBe("recovered");
  });

  it("names every attempt when all endpoints fail", async () => {
    mswServer.use(
      http.post(GROQ, () => HttpResponse.json({ error: { message: "groq is down" } }, { status: 500 })),
      http.post(TOGETHER, () => HttpResponse.json({ error: { message: "together is down" } }, { status: 502 })),
    );
    const res = await ask();
    expect(res.status).toBe(502);
    const body = (await res.json()) as RouterError;
    expect(body.error.code).toBe(502);
    expect(body.error.message).toContain("groq is down");
    expect(body.error.message).toContain("together is down");
    expect(body.error.metadata?.previous_errors).toEqual([
      { provider: "Groq", model: MODEL, code: 500, error_type: "server", message: "groq is down" },
      { provider: "Together", model: MODEL, code: 502, error_type: "provider_unavailable", message: "together is down" },
    ]);
    expect(body.error.metadata?.provider_name).toBe("Together");
  });

  it("answers 429 with Retry-After when every endpoint is rate limited", async () => {
    mswServer.use(
      http.post(GROQ, () => HttpResponse.json({ error: { message: "rl" } }, { status: 429, headers: { "retry-after": "3" } })),
      http.post(TOGETHER, () => HttpResponse.json({ error: { message: "rl" } }, { status: 429, headers: { "retry-after": "9" } })),
    );
    const res = await ask();
    expect(res.status).toBe(429);
    // The soonest any endpoint frees up: Groq takes requests again after 3 s.
    expect(res.headers.get("retry-after")).toBe("3");
  });

  it("answers 408 when every endpoint times out", async () => {
    mswServer.use(
      http.post(GROQ, () => new Promise<Response>(() => {})),
      http.post(TOGETHER, () => new Promise<Response>(() => {})),
    );
    const res = await ask();
    expect(res.status).toBe(408);
    expect(((await res.json()) as RouterError).error.metadata?.error_type).toBe("timeout");
  });

  it("does not retry a request the provider refused as invalid, and keeps its message", async () => {
    const hits = counting();
    mswServer.use(
      http.post(GROQ, () => {
        hits.groq++;
        return HttpResponse.json({ error: { message: "'temperature' is unsupported" } }, { status: 400 });
      }),
      http.post(TOGETHER, () => {
        hits.together++;
        return HttpResponse.json(ok("never"));
      }),
    );
    const res = await ask();
    expect(res.status).toBe(400);
    const body = (await res.json()) as RouterError;
    expect(body.error.message).toBe("Groq: 'temperature' is unsupported");
    expect(body.error.metadata?.error_type).toBe("invalid_request");
    expect(hits).toEqual({ groq: 1, together: 0 });
  });

  it("retries elsewhere when the prompt exceeds one endpoint's context", async () => {
    mswServer.use(
      http.post(GROQ, () => HttpResponse.json({ error: { message: "This model's maximum context length is 8192 tokens" } }, { status: 400 })),
      http.post(TOGETHER, () => HttpResponse.json(ok("bigger context"))),
    );
    expect(((await (await ask()).json()) as RouterCompletion).choices[0]!.message.content).toBe("bigger context");
  });
});

describe("failover while streaming", () => {
  it("replaces an upstream that closes before the first token, invisibly", async () => {
    mswServer.use(
      http.post(GROQ, () => sseResponse(": nothing yet\n\n")),
      http.post(TOGETHER, () => sseResponse(streamOk("hello from together"))),
    );
    const res = await ask({ stream: true });
    expect(res.status).toBe(200);
    const { chunks, done } = await readSSE(res);
    expect(done).toBe(true);
    expect(chunks.every((c) => c.provider === "Together")).toBe(true);
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? "").join("")).toBe("hello from together");
    expect(chunks.some((c) => c.error)).toBe(false);
  });

  it("replaces an upstream whose first event is an error", async () => {
    mswServer.use(
      http.post(GROQ, () => sseResponse(sseBody([{ error: { message: "overloaded" } }]))),
      http.post(TOGETHER, () => sseResponse(streamOk("second"))),
    );
    const { chunks } = await readSSE(await ask({ stream: true }));
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? "").join("")).toBe("second");
  });

  it("replaces an upstream that sends nothing within the first-token timeout", async () => {
    mswServer.use(
      http.post(
        GROQ,
        () =>
          new Response(new ReadableStream({ start() {} }), {
            headers: { "content-type": "text/event-stream" },
          }),
      ),
      http.post(TOGETHER, () => sseResponse(streamOk("patient"))),
    );
    const res = await ask({ stream: true });
    const { chunks, comments } = await readSSE(res);
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? "").join("")).toBe("patient");
    // Keep-alive comments flowed while the first upstream stayed silent.
    expect(comments).toBeGreaterThan(2);
  });

  it("turns a failure after the first token into the mid-stream error event and ends cleanly", async () => {
    mswServer.use(
      http.post(GROQ, () => {
        const encoder = new TextEncoder();
        // Two events, then a reset once they have been read (an error discards unread chunks).
        const parts = ["Hel", "lo"];
        const body = new ReadableStream<Uint8Array>(
          {
            pull(controller) {
              const content = parts.shift();
              if (content === undefined) controller.error(new Error("connection reset"));
              else controller.enqueue(encoder.encode(sseBody([{ choices: [{ index: 0, delta: { content } }] }])));
            },
          },
          { highWaterMark: 0 },
        );
        return new Response(body, { headers: { "content-type": "text/event-stream" } });
      }),
      http.post(TOGETHER, () => sseResponse(streamOk("must not be used"))),
    );
    const res = await ask({ stream: true });
    expect(res.status).toBe(200);
    const { chunks, done } = await readSSE(res);
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? "").join("")).toBe("Hello");
    const errors = chunks.filter((c) => c.error);
    expect(errors).toHaveLength(1);
    expect(errors[0]!.error!.code).toBe(502);
    expect(errors[0]!.choices[0]!.finish_reason).toBe("error");
    expect(errors[0]!.provider).toBe("Groq");
    // Charged for what was delivered: one usage chunk after the error, then [DONE].
    const usage = chunks.filter((c) => c.usage);
    expect(usage).toHaveLength(1);
    expect(usage[0]!.usage!.completion_tokens).toBeGreaterThan(0);
    expect(done).toBe(true);
  });

  it("ends a stream whose upstream goes silent after the first token, charging what was delivered", async () => {
    // First token, then nothing: the relay's watchdog cuts the upstream after the 1 s silence limit.
    mswServer.use(
      http.post(GROQ, () => {
        const encoder = new TextEncoder();
        const body = new ReadableStream<Uint8Array>({
          start(controller) {
            controller.enqueue(encoder.encode(sseBody([{ choices: [{ index: 0, delta: { content: "Hello" } }] }])));
          },
        });
        return new Response(body, { headers: { "content-type": "text/event-stream" } });
      }),
      http.post(TOGETHER, () => sseResponse(streamOk("must not be used"))),
    );
    const started = Date.now();
    const res = await ask({ stream: true });
    const { chunks, done, comments } = await readSSE(res);
    const elapsed = Date.now() - started;
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? "").join("")).toBe("Hello");
    const errors = chunks.filter((c) => c.error);
    expect(errors).toHaveLength(1);
    expect(errors[0]!.error!.message).toBe("Upstream stream failed: Upstream sent nothing for 1000 ms");
    expect(errors[0]!.choices[0]!.finish_reason).toBe("error");
    // Within the limit plus one watchdog period (half the 50 ms keep-alive), with slack for CI.
    expect(elapsed).toBeGreaterThanOrEqual(1000);
    expect(elapsed).toBeLessThan(3000);
    expect(comments).toBeGreaterThan(2);
    expect(chunks.filter((c) => c.usage)).toHaveLength(1);
    expect(done).toBe(true);
  });

  it("answers an ordinary HTTP error when every upstream fails before streaming starts", async () => {
    mswServer.use(
      http.post(GROQ, () => HttpResponse.json({ error: { message: "a" } }, { status: 500 })),
      http.post(TOGETHER, () => HttpResponse.json({ error: { message: "b" } }, { status: 500 })),
    );
    const res = await ask({ stream: true });
    expect(res.status).toBe(502);
    expect(res.headers.get("content-type")).toContain("application/json");
  });

  it("aborts the upstream fetch when the client disconnects", async () => {
    let cancelled = false;
    let resolveCancelled!: () => void;
    const cancelledPromise = new Promise<void>((resolve) => (resolveCancelled = resolve));
    mswServer.use(
      http.post(GROQ, ({ request }) => {
        request.signal.addEventListener("abort", () => {
          cancelled = true;
          resolveCancelled();
        });
        const encoder = new TextEncoder();
        let n = 0;
        const body = new ReadableStream<Uint8Array>({
          async pull(controller) {
            await new Promise((r) => setTimeout(r, 5));
            controller.enqueue(encoder.encode(sseBody([{ choices: [{ index: 0, delta: { content: `t${n++} ` } }] }])));
          },
          cancel() {
            cancelled = true;
            resolveCancelled();
          },
        });
        return new Response(body, { headers: { "content-type": "text/event-stream" } });
      }),
    );
    // Called in this isolate so the client's cancel reaches the gateway's stream directly.
    const res = await app.fetch(
      new Request("https://gateway.test/api/v1/chat/completions", {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        body: JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "hi" }], stream: true }),
      }),
      env,
      createExecutionContext(),
    );
    const reader = res.body!.getReader();
    const first = await reader.read();
    expect(first.done).toBe(false);
    await reader.cancel();
    await Promise.race([cancelledPromise, new Promise((r) => setTimeout(r, 2000))]);
    expect(cancelled).toBe(true);
  });
});
