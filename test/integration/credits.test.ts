import { createExecutionContext, evictDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { http, HttpResponse } from "msw";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { app } from "../../src/app";
import { admin, call, chat, eventually, mswServer, provision, readSSE, sseBody, sseResponse, type RouterCompletion, type RouterError } from "../helpers";

// openai/gpt-4o-mini pinned to OpenAI: $0.15/M prompt, $0.60/M completion, 16,384 max output.
const OPENAI = "https://openai.upstream.test/v1/chat/completions";
const pinned = { model: "openai/gpt-4o-mini", provider: { order: ["openai"] } };

beforeAll(() => mswServer.listen({ onUnhandledRequest: "error" }));
afterEach(() => mswServer.resetHandlers());
afterAll(() => mswServer.close());

const completion = (completionTokens: number, finish = "stop") => ({
  choices: [{ index: 0, message: { role: "assistant", content: completionTokens ? "ok" : "" }, finish_reason: finish }],
  usage: { prompt_tokens: 1000, completion_tokens: completionTokens, total_tokens: 1000 + completionTokens },
});

async function credits(key: string): Promise<{ total_credits: number; total_usage: number }> {
  const res = await call("/api/v1/credits", { headers: { authorization: `Bearer ${key}` } });
  return ((await res.json()) as { data: { total_credits: number; total_usage: number } }).data;
}

async function generation(key: string, id: string) {
  return eventually(async () => {
    const res = await call(`/api/v1/generation?id=${id}`, { headers: { authorization: `Bearer ${key}` } });
    return res.status === 200 ? ((await res.json()) as { data: Record<string, unknown> }).data : undefined;
  });
}

describe("credits and admission", () => {
  it("refuses with 402 when the workspace has no credits", async () => {
    const key = await provision("ws-empty", null);
    const res = await chat(key, { ...pinned, messages: [{ role: "user", content: "hi" }], max_tokens: 100 });
    expect(res.status).toBe(402);
    const body = (await res.json()) as RouterError;
    expect(body.error.message).toBe(
      "This request requires more credits, or fewer max_tokens. You requested up to 100 tokens, but can only afford 0. Add credits to this workspace to continue.",
    );
  });

  it("records the purchase fee on a top-up: 5.5 % with a $0.80 minimum", async () => {
    await provision("ws-fee", null);
    const small = await admin("/workspaces/ws-fee/credits", "POST", { amount: "10" });
    expect(small.status).toBe(201);
    expect(((await small.json()) as { data: { credited: number; fee: number; balance: number } }).data).toMatchObject({
      credited: 9.2,
      fee: 0.8,
      balance: 9.2,
    });
    const large = await admin("/workspaces/ws-fee/credits", "POST", { amount: "100" });
    expect(((await large.json()) as { data: { fee: number; balance: number } }).data).toMatchObject({ fee: 5.5, balance: 103.7 });
  });

  it("caps max_tokens at what the balance affords instead of refusing, and says so", async () => {
    // $0.809 paid − $0.80 fee = 9,000 µ$. The reservation is priced at the dearest candidate
    // (Azure EU, $0.165/M prompt, $0.66/M completion): the 2-token prompt costs 1 µ$, and
    // (9,000 − 1) µ$ ÷ 0.66 µ$ per token = 13,634 tokens, below the model's 16,384.
    const key = await provision("ws-cap", "0.809");
    let sent: Record<string, unknown> = {};
    mswServer.use(
      http.post(OPENAI, async ({ request }) => {
        sent = (await request.json()) as Record<string, unknown>;
        return HttpResponse.json(completion(5));
      }),
    );
    const res = await chat(key, { ...pinned, messages: [{ role: "user", content: "hi" }] });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-switchyard-max-tokens")).toBe("13634");
    expect(sent.max_completion_tokens).toBe(13634);
    expect(sent).not.toHaveProperty("max_tokens");
  });

  it("refuses a request the balance cannot cover at the client's max_tokens, naming what it can afford", async () => {
    const key = await provision("ws-small", "0.809");
    const res = await chat(key, { ...pinned, messages: [{ role: "user", content: "hi" }], max_tokens: 16_000 });
    expect(res.status).toBe(402);
    const body = (await res.json()) as RouterError;
    expect(body.error.message).toContain("You requested up to 16000 tokens, but can only afford 13634.");
  });

  it("charges the exact cost, and /generation and /credits agree", async () => {
    const key = await provision("ws-charge");
    mswServer.use(http.post(OPENAI, () => HttpResponse.json(completion(500))));
    const res = await chat(key, { ...pinned, messages: [{ role: "user", content: "hi" }], max_tokens: 1000 });
    const body = (await res.json()) as RouterCompletion;
    // 1,000 × $0.15/M + 500 × $0.60/M = 150 + 300 µ$
    expect(body.usage.cost).toBe(0.00045);
    const record = await generation(key, body.id);
    expect(record).toMatchObject({ id: body.id, total_cost: 0.00045, tokens_prompt: 1000, tokens_completion: 500, streamed: false, provider_name: "OpenAI" });
    expect(await credits(key)).toEqual({ total_credits: 94.5, total_usage: 0.00045 });
  });

  it("charges a request exactly once when its ledger restarts while the upstream answers", async () => {
    const key = await provision("ws-evict");
    const ledger = env.LEDGER.getByName("ws-evict");
    mswServer.use(
      http.post(OPENAI, async () => {
        // The hold is made; the ledger object restarts and forgets it (holds live in memory).
        // (A stub of this request's own: stubs are I/O objects of the request that made them.)
        const here = env.LEDGER.getByName("ws-evict");
        await eventually(async () => ((await here.holds()).length === 1 ? true : undefined));
        await evictDurableObject(here);
        return HttpResponse.json(completion(500));
      }),
    );
    const res = await chat(key, { ...pinned, messages: [{ role: "user", content: "hi" }], max_tokens: 1000 });
    const text = await res.text();
    expect(res.status, text).toBe(200);
    const body = JSON.parse(text) as RouterCompletion;
    expect(body.usage.cost).toBe(0.00045);
    expect((await generation(key, body.id)).total_cost).toBe(0.00045);
    expect(await credits(key)).toEqual({ total_credits: 94.5, total_usage: 0.00045 });
    expect((await ledger.journal(100)).filter((e) => e.reference === body.id).map((e) => e.amountMicros)).toEqual([-450]);
    expect(await ledger.holds()).toEqual([]);
  });

  it("does not charge a response with zero completion tokens that ended in an error", async () => {
    const key = await provision("ws-zero");
    mswServer.use(http.post(OPENAI, () => HttpResponse.json(completion(0, "error"))));
    const res = await chat(key, { ...pinned, messages: [{ role: "user", content: "hi" }], max_tokens: 10 });
    const body = (await res.json()) as RouterCompletion;
    expect(body.usage.cost).toBe(0);
    expect((await generation(key, body.id)).total_cost).toBe(0);
  });

  it("charges nothing when every upstream fails before the first token", async () => {
    const key = await provision("ws-fail");
    mswServer.use(http.post(OPENAI, () => HttpResponse.json({ error: { message: "down" } }, { status: 500 })));
    const before = await credits(key);
    const res = await chat(key, { ...pinned, messages: [{ role: "user", content: "hi" }], max_tokens: 10, stream: true, provider: { order: ["openai"], only: ["openai"] } });
    expect(res.status).toBeGreaterThanOrEqual(500);
    await res.text();
    expect(await credits(key)).toEqual(before);
  });

  it("prices a stream's usage-only final chunk and charges exactly that", async () => {
    const key = await provision("ws-stream");
    mswServer.use(
      http.post(OPENAI, () =>
        sseResponse(
          sseBody([
            { choices: [{ index: 0, delta: { content: "Hi" } }] },
            { choices: [{ index: 0, delta: {}, finish_reason: "stop" }] },
            { choices: [], usage: { prompt_tokens: 1000, completion_tokens: 500, total_tokens: 1500 } },
            "[DONE]",
          ]),
        ),
      ),
    );
    const res = await chat(key, { ...pinned, messages: [{ role: "user", content: "hi" }], stream: true, max_tokens: 1000 });
    const { chunks } = await readSSE(res);
    const usage = chunks.find((c) => c.usage)!.usage!;
    expect(usage.cost).toBe(0.00045);
    // The settlement runs in waitUntil, in its ledger's window (billing/settlement-window).
    expect(await eventually(async () => ((await credits(key)).total_usage > 0 ? (await credits(key)).total_usage : undefined))).toBe(0.00045);
  });

  it("charges a stream cut by the client for what was delivered", async () => {
    const key = await provision("ws-cut");
    mswServer.use(
      http.post(OPENAI, () => {
        const encoder = new TextEncoder();
        const body = new ReadableStream<Uint8Array>({
          async pull(controller) {
            await new Promise((r) => setTimeout(r, 5));
            controller.enqueue(encoder.encode(sseBody([{ choices: [{ index: 0, delta: { content: "word ".repeat(20) } }] }])));
          },
        });
        return new Response(body, { headers: { "content-type": "text/event-stream" } });
      }),
    );
    const ctx = createExecutionContext();
    const res = await app.fetch(
      new Request("https://gateway.test/api/v1/chat/completions", {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        body: JSON.stringify({ ...pinned, messages: [{ role: "user", content: "hi" }], stream: true, max_tokens: 1000 }),
      }),
      env,
      ctx,
    );
    const id = res.headers.get("x-generation-id")!;
    const reader = res.body!.getReader();
    for (let i = 0; i < 4; i++) await reader.read();
    await reader.cancel();
    const record = await generation(key, id);
    expect(record.cancelled).toBe(true);
    expect(record.tokens_completion).toBeGreaterThan(0);
    expect(record.total_cost).toBeGreaterThan(0);
  });
});

describe("rate limits and key limits through the Worker", () => {
  it("answers 429 with X-RateLimit-* and Retry-After once a key's requests per minute are spent", async () => {
    const key = await provision("ws-rpm");
    const created = (await (await admin("/workspaces/ws-rpm/keys", "POST", { name: "limited", rpm: 2 })).json()) as { key: string };
    mswServer.use(http.post(OPENAI, () => HttpResponse.json(completion(1))));
    const ask = () => chat(created.key, { ...pinned, messages: [{ role: "user", content: "hi" }], max_tokens: 5 });
    expect((await ask()).status).toBe(200);
    const second = await ask();
    expect(second.status).toBe(200);
    expect(second.headers.get("x-ratelimit-limit")).toBe("2");
    expect(second.headers.get("x-ratelimit-remaining")).toBe("0");
    const third = await ask();
    expect(third.status).toBe(429);
    expect(third.headers.get("x-ratelimit-limit")).toBe("2");
    expect(third.headers.get("x-ratelimit-remaining")).toBe("0");
    expect(Number(third.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(Number(third.headers.get("x-ratelimit-reset"))).toBeGreaterThan(Date.now());
    expect(key).not.toBe(created.key);
  });

  it("refuses a disabled key on the very next request, through the ledger", async () => {
    await provision("ws-revoke");
    const created = (await (await admin("/workspaces/ws-revoke/keys", "POST", { name: "revoke-me" })).json()) as { data: { id: string }; key: string };
    mswServer.use(http.post(OPENAI, () => HttpResponse.json(completion(1))));
    expect((await chat(created.key, { ...pinned, messages: [{ role: "user", content: "hi" }], max_tokens: 5 })).status).toBe(200);
    await env.LEDGER.getByName("ws-revoke").setKey({
      id: created.data.id,
      disabled: true,
      expiresAt: null,
      limitMicros: null,
      limitReset: null,
      includeByokInLimit: false,
      limits: { rpm: null, tpm: null, concurrency: null },
    });
    // The isolate's key cache still says "enabled"; the ledger refuses anyway.
    const res = await chat(created.key, { ...pinned, messages: [{ role: "user", content: "hi" }], max_tokens: 5 });
    expect(res.status).toBe(401);
    expect(((await res.json()) as RouterError).error.message).toBe("This API key is disabled");
  });

  it("never lets concurrent requests spend past the balance", async () => {
    // $0.82 − $0.80 fee = 20,000 µ$; each request reserves ~60,001 µ$/… use max_tokens so each costs ≤ 4,000 µ$ reserved.
    const key = await provision("ws-race", "0.82");
    mswServer.use(http.post(OPENAI, () => HttpResponse.json(completion(5000))));
    // Reservation per request: prompt (~1 µ$) + 5,000 × 0.6 = 3,001 µ$ → 6 fit in 20,000 µ$.
    const results = await Promise.all(
      Array.from({ length: 20 }, () => chat(key, { ...pinned, messages: [{ role: "user", content: "hi" }], max_tokens: 5000 })),
    );
    const statuses = results.map((r) => r.status);
    expect(statuses.filter((s) => s === 200).length).toBeLessThanOrEqual(6);
    expect(statuses.every((s) => s === 200 || s === 402)).toBe(true);
    await Promise.all(results.map((r) => r.text()));
    const view = await eventually(async () => {
      const b = await env.LEDGER.getByName("ws-race").balance();
      return b.heldMicros === 0 ? b : undefined;
    });
    expect(view.balanceMicros).toBeGreaterThanOrEqual(0);
  });
});

describe("management keys", () => {
  it("lets a management key list, create, change and delete its workspace's keys, and nothing else", async () => {
    const inference = await provision("ws-mgmt");
    const mgmt = (await (await admin("/workspaces/ws-mgmt/keys", "POST", { name: "mgmt", kind: "management" })).json()) as { key: string };
    const asMgmt = (path: string, init: RequestInit = {}) =>
      call(`/api/v1${path}`, { ...init, headers: { authorization: `Bearer ${mgmt.key}`, "content-type": "application/json" } });

    const created = await asMgmt("/keys", { method: "POST", body: JSON.stringify({ name: "ci", limit: 5, limit_reset: "daily" }) });
    expect(created.status).toBe(201);
    const { data, key } = (await created.json()) as { data: { hash: string; limit: number; limit_reset: string }; key: string };
    expect(data.limit).toBe(5);
    expect(data.limit_reset).toBe("daily");
    expect(key).toMatch(/^sk-sy-v1-[0-9a-f]{64}$/);

    const listed = (await (await asMgmt("/keys")).json()) as { data: Array<{ hash: string }> };
    expect(listed.data.map((k) => k.hash)).toContain(data.hash);
    expect(JSON.stringify(listed)).not.toContain(key);

    const patched = await asMgmt(`/keys/${data.hash}`, { method: "PATCH", body: JSON.stringify({ disabled: true }) });
    expect(((await patched.json()) as { data: { disabled: boolean } }).data.disabled).toBe(true);
    expect((await chat(key, { ...pinned, messages: [{ role: "user", content: "hi" }] })).status).toBe(401);

    expect((await asMgmt(`/keys/${data.hash}`, { method: "DELETE" })).status).toBe(200);
    expect((await asMgmt(`/keys/${data.hash}`)).status).toBe(404);

    // An inference key may not manage keys; a management key may not call models.
    expect((await call("/api/v1/keys", { headers: { authorization: `Bearer ${inference}` } })).status).toBe(403);
    expect((await chat(mgmt.key, { ...pinned, messages: [{ role: "user", content: "hi" }] })).status).toBe(403);
  });

  it("reports a key's limit and usage at GET /key", async () => {
    await provision("ws-keyinfo");
    const created = (await (await admin("/workspaces/ws-keyinfo/keys", "POST", { name: "limited", limit: "1.5", limit_reset: "monthly" })).json()) as { key: string };
    mswServer.use(http.post(OPENAI, () => HttpResponse.json(completion(500))));
    await (await chat(created.key, { ...pinned, messages: [{ role: "user", content: "hi" }], max_tokens: 1000 })).text();
    const info = await eventually(async () => {
      const res = await call("/api/v1/key", { headers: { authorization: `Bearer ${created.key}` } });
      const body = (await res.json()) as { data: { usage: number; limit: number; limit_remaining: number; limit_reset: string; is_management_key: boolean } };
      return body.data.usage > 0 ? body.data : undefined;
    });
    expect(info).toMatchObject({ usage: 0.00045, usage_monthly: 0.00045, limit: 1.5, limit_remaining: 1.49955, limit_reset: "monthly", is_management_key: false });
  });
});
