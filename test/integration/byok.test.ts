/**
 * BYOK through the Worker: registering a workspace's own provider key (encrypted at rest, never
 * shown), routing with it first, charging the BYOK fee above the monthly free allowance, and
 * falling back to the platform's keys once it is removed.
 */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { http, HttpResponse } from "msw";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { app } from "../../src/app";
import {
  admin,
  call,
  chat,
  eventually,
  expectError,
  mswServer,
  provision,
  readSSE,
  resetHealth,
  sseBody,
  sseResponse,
  UPSTREAM_URL,
  ADMIN_TOKEN,
  ORIGIN,
  type RouterCompletion,
} from "../helpers";

const OWN_OPENAI_KEY = "sk-own-openai-PLAINTEXT-secret-wxyz";
const OWN_AZURE_KEY = "own-azure-PLAINTEXT-secret-abcd";
const PLATFORM_OPENAI_KEY = "test-openai-key";

// openai/gpt-4o-mini: OpenAI $0.15/M prompt, $0.60/M completion; Azure EU $0.165/M, $0.66/M.
// 10,000 prompt + 5,000 completion tokens cost 1,500 + 3,000 = 4,500 µ$ on OpenAI and
// 1,650 + 3,300 = 4,950 µ$ on Azure EU.
const GPT_MINI = "openai/gpt-4o-mini";
const OPENAI_COST = 4_500;
const AZURE_COST = 4_950;

beforeAll(() => mswServer.listen({ onUnhandledRequest: "error" }));
afterEach(async () => {
  mswServer.resetHandlers();
  await resetHealth();
});
afterAll(() => mswServer.close());

interface Hit {
  host: string;
  authorization: string | null;
  apiKey: string | null;
}

/** Answer every fake provider host with a completion of 10,000 + 5,000 tokens, recording credentials. */
function upstream(answer?: (hit: Hit) => Response | undefined, stream = false): Hit[] {
  const hits: Hit[] = [];
  mswServer.use(
    http.all(UPSTREAM_URL, ({ request }) => {
      const hit = { host: new URL(request.url).host, authorization: request.headers.get("authorization"), apiKey: request.headers.get("api-key") };
      hits.push(hit);
      const custom = answer?.(hit);
      if (custom) return custom;
      const usage = { prompt_tokens: 10_000, completion_tokens: 5_000, total_tokens: 15_000 };
      if (stream) {
        return sseResponse(
          sseBody([
            { choices: [{ index: 0, delta: { role: "assistant", content: "ok" } }] },
            { choices: [{ index: 0, delta: {}, finish_reason: "stop" }] },
            { choices: [], usage },
            "[DONE]",
          ]),
        );
      }
      return HttpResponse.json({ choices: [{ index: 0, message: { role: "assistant", content: "ok" }, finish_reason: "stop" }], usage });
    }),
  );
  return hits;
}

const ask = (extra: Record<string, unknown> = {}) => ({ model: GPT_MINI, messages: [{ role: "user", content: "hi" }], max_tokens: 6_000, ...extra });

function putByok(workspace: string, provider: string, apiKey: string): Promise<Response> {
  return admin(`/workspaces/${workspace}/byok/${provider}`, "PUT", { api_key: apiKey });
}

/** Call the Worker's app with an environment that differs from the test bindings. */
async function fetchWith(overrides: Record<string, unknown>, path: string, init: RequestInit): Promise<Response> {
  const ctx = createExecutionContext();
  const res = await app.fetch(new Request(`${ORIGIN}${path}`, init), { ...env, ...overrides }, ctx);
  await waitOnExecutionContext(ctx);
  return res;
}

function chatWith(overrides: Record<string, unknown>, key: string, body: unknown): Promise<Response> {
  return fetchWith(overrides, "/api/v1/chat/completions", {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
}

async function completionOf(res: Response): Promise<RouterCompletion & { usage: { cost_details: { upstream_inference_cost: number | null } } }> {
  expect(res.status).toBe(200);
  return (await res.json()) as RouterCompletion & { usage: { cost_details: { upstream_inference_cost: number | null } } };
}

async function generation(key: string, id: string): Promise<Record<string, unknown>> {
  return eventually(async () => {
    const res = await call(`/api/v1/generation?id=${id}`, { headers: { authorization: `Bearer ${key}` } });
    return res.status === 200 ? ((await res.json()) as { data: Record<string, unknown> }).data : undefined;
  });
}

async function usedMicros(workspace: string): Promise<number> {
  const res = await admin(`/workspaces/${workspace}/credits`, "GET");
  const { data } = (await res.json()) as { data: { total_usage: number } };
  return Math.round(data.total_usage * 1_000_000);
}

function contains(haystack: Uint8Array, needle: Uint8Array): boolean {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return true;
  }
  return false;
}

describe("BYOK admin API", () => {
  it("stores the key encrypted, shows only its last 4 characters, and never returns it", async () => {
    await provision("ws-byok-admin");
    const put = await putByok("ws-byok-admin", "openai", OWN_OPENAI_KEY);
    expect(put.status).toBe(200);
    const putText = await put.text();
    expect(putText).not.toContain(OWN_OPENAI_KEY);
    expect(JSON.parse(putText)).toMatchObject({ data: { provider: "openai", last4: "…wxyz" } });

    const list = await admin("/workspaces/ws-byok-admin/byok", "GET");
    expect(list.status).toBe(200);
    const listText = await list.text();
    const { data } = JSON.parse(listText) as { data: Array<Record<string, unknown>> };
    expect(data).toEqual([{ provider: "openai", last4: "…wxyz", created_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) }]);

    const row = await env.DB.prepare("SELECT * FROM provider_credentials WHERE workspace_id = ?").bind("ws-byok-admin").first<Record<string, unknown>>();
    expect(row).not.toBeNull();
    const rowText = JSON.stringify(row);
    expect(rowText).not.toContain(OWN_OPENAI_KEY);
    expect(rowText).not.toContain("PLAINTEXT");
    const ciphertext = Uint8Array.from(atob(String(row!.ciphertext)), (c) => c.charCodeAt(0));
    expect(contains(ciphertext, new TextEncoder().encode(OWN_OPENAI_KEY))).toBe(false);
    expect(contains(ciphertext, new TextEncoder().encode("PLAINTEXT"))).toBe(false);
    // Neither the listing nor the PUT answer leaks the ciphertext either.
    expect(listText).not.toContain(String(row!.ciphertext));
    expect(putText).not.toContain(String(row!.ciphertext));
  });

  it("replaces a provider's key in place: one row per workspace and provider", async () => {
    await provision("ws-byok-replace");
    await putByok("ws-byok-replace", "openai", "sk-first-key-1111");
    await putByok("ws-byok-replace", "openai", "sk-second-key-2222");
    const { data } = (await (await admin("/workspaces/ws-byok-replace/byok", "GET")).json()) as { data: Array<{ last4: string }> };
    expect(data.map((d) => d.last4)).toEqual(["…2222"]);
  });

  it("refuses an unknown provider, an unknown workspace and a malformed body", async () => {
    await provision("ws-byok-errors");
    expect((await expectError(await putByok("ws-byok-errors", "no-such-provider", OWN_OPENAI_KEY), 404)).message).toBe(
      "Provider not found: no-such-provider",
    );
    await expectError(await putByok("ws-missing", "openai", OWN_OPENAI_KEY), 404);
    await expectError(await admin("/workspaces/ws-byok-errors/byok/openai", "PUT", { key: OWN_OPENAI_KEY }), 400);
    await expectError(await admin("/workspaces/ws-byok-errors/byok/openai", "PUT", { api_key: "short" }), 400);
    await expectError(await admin("/workspaces/ws-byok-errors/byok/openai", "DELETE"), 404);
  });

  it("requires the admin token", async () => {
    await provision("ws-byok-auth");
    const res = await call("/admin/v1/workspaces/ws-byok-auth/byok", { headers: { authorization: "Bearer wrong" } });
    await expectError(res, 401);
    expect(ADMIN_TOKEN).not.toBe("wrong");
  });

  it.each([
    ["missing", ""],
    ["too short", "short-master-key"],
  ])("refuses to store a key when MASTER_KEY is %s (fail closed)", async (_name, masterKey) => {
    await provision("ws-byok-nomaster");
    const res = await fetchWith({ MASTER_KEY: masterKey }, "/admin/v1/workspaces/ws-byok-nomaster/byok/openai", {
      method: "PUT",
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ api_key: OWN_OPENAI_KEY }),
    });
    const error = await expectError(res, 503);
    expect(error.message).toMatch(/MASTER_KEY is not configured/);
    const count = await env.DB.prepare("SELECT COUNT(*) AS n FROM provider_credentials WHERE workspace_id = ?").bind("ws-byok-nomaster").first<{ n: number }>();
    expect(count?.n).toBe(0);
  });
});

describe("routing with the workspace's own key", () => {
  it("sends the workspace's key upstream instead of the platform's, and charges 5 % of the cost", async () => {
    const key = await provision("ws-byok-route", "100", { sort: "price" });
    expect((await putByok("ws-byok-route", "openai", OWN_OPENAI_KEY)).status).toBe(200);
    const hits = upstream();
    const body = await completionOf(await chat(key, ask({ provider: { order: ["openai"] } })));
    expect(hits).toEqual([{ host: "openai.upstream.test", authorization: `Bearer ${OWN_OPENAI_KEY}`, apiKey: null }]);
    expect(JSON.stringify(hits)).not.toContain(PLATFORM_OPENAI_KEY);
    // 5 % of 4,500 µ$ = 225 µ$.
    expect(body.usage).toMatchObject({ is_byok: true, cost: 0.000225, cost_details: { upstream_inference_cost: 0.0045 } });
    const record = await generation(key, body.id);
    expect(record).toMatchObject({ is_byok: true, total_cost: 0.000225, upstream_inference_cost: 0.0045, provider_name: "OpenAI" });
    expect(await usedMicros("ws-byok-route")).toBe(225);
  });

  it("tries the BYOK endpoint first even when a cheaper platform endpoint exists", async () => {
    const key = await provision("ws-byok-first", "100", { sort: "price" });
    await putByok("ws-byok-first", "azure-eu", OWN_AZURE_KEY);
    const hits = upstream();
    const body = await completionOf(await chat(key, ask()));
    expect(hits).toEqual([{ host: "azure-openai-eu.upstream.test", authorization: null, apiKey: OWN_AZURE_KEY }]);
    // Azure EU is dearer than OpenAI (4,950 µ$ against 4,500 µ$); the fee is ⌈4,950 × 5 %⌉ = 248 µ$.
    expect(body.usage).toMatchObject({ is_byok: true, cost: 0.000248, cost_details: { upstream_inference_cost: AZURE_COST / 1e6 } });
    expect(await usedMicros("ws-byok-first")).toBe(248);
  });

  it("falls back to the platform's keys when the BYOK endpoint fails, and charges the full cost", async () => {
    const key = await provision("ws-byok-failover", "100", { sort: "price" });
    await putByok("ws-byok-failover", "azure-eu", OWN_AZURE_KEY);
    const hits = upstream((hit) => (hit.host.startsWith("azure") ? HttpResponse.json({ error: { message: "down" } }, { status: 500 }) : undefined));
    const body = await completionOf(await chat(key, ask()));
    expect(hits.map((h) => [h.host, h.authorization ?? h.apiKey])).toEqual([
      ["azure-openai-eu.upstream.test", OWN_AZURE_KEY],
      ["openai.upstream.test", `Bearer ${PLATFORM_OPENAI_KEY}`],
    ]);
    expect(body.usage).toMatchObject({ is_byok: false, cost: OPENAI_COST / 1e6, cost_details: { upstream_inference_cost: null } });
    expect(await generation(key, body.id)).toMatchObject({ is_byok: false, total_cost: OPENAI_COST / 1e6 });
  });

  it("reports the fee in a stream's usage chunk and in the generation record", async () => {
    const key = await provision("ws-byok-stream", "100", { sort: "price" });
    await putByok("ws-byok-stream", "openai", OWN_OPENAI_KEY);
    const hits = upstream(undefined, true);
    const res = await chat(key, ask({ stream: true, provider: { order: ["openai"] } }));
    expect(res.status).toBe(200);
    const id = res.headers.get("x-generation-id")!;
    const { chunks, done } = await readSSE(res);
    expect(done).toBe(true);
    expect(hits[0]?.authorization).toBe(`Bearer ${OWN_OPENAI_KEY}`);
    const usage = chunks.at(-1)?.usage as unknown as Record<string, unknown>;
    expect(usage).toMatchObject({ is_byok: true, cost: 0.000225, cost_details: { upstream_inference_cost: 0.0045 } });
    expect(await generation(key, id)).toMatchObject({ is_byok: true, total_cost: 0.000225, streamed: true });
    expect(await usedMicros("ws-byok-stream")).toBe(225);
  });

  it("routes to a provider the platform has no credential for once the workspace has a key", async () => {
    const key = await provision("ws-byok-only");
    const noMistral = { MISTRAL_API_KEY: undefined };
    const body = { model: "mistralai/mistral-small-3.2-24b-instruct", messages: [{ role: "user", content: "hi" }], max_tokens: 100 };
    const before = await expectError(await chatWith(noMistral, key, body), 503);
    expect(before.message).toContain("no credential configured (MISTRAL_API_KEY)");

    await putByok("ws-byok-only", "mistral", "own-mistral-key-9876");
    const hits = upstream();
    const res = await chatWith(noMistral, key, body);
    expect(res.status).toBe(200);
    expect(hits).toEqual([{ host: "mistral.upstream.test", authorization: "Bearer own-mistral-key-9876", apiKey: null }]);
    expect(((await res.json()) as RouterCompletion).usage.is_byok).toBe(true);
  });

  it("falls back to the platform's keys once the workspace's key is deleted", async () => {
    const key = await provision("ws-byok-delete");
    await putByok("ws-byok-delete", "openai", OWN_OPENAI_KEY);
    const hits = upstream();
    const pinned = ask({ provider: { order: ["openai"] } });
    expect((await completionOf(await chat(key, pinned))).usage.is_byok).toBe(true);

    const deleted = await admin("/workspaces/ws-byok-delete/byok/openai", "DELETE");
    expect(deleted.status).toBe(200);
    expect(await deleted.json()).toEqual({ data: { provider: "openai", deleted: true } });
    expect(((await (await admin("/workspaces/ws-byok-delete/byok", "GET")).json()) as { data: unknown[] }).data).toEqual([]);

    const after = await completionOf(await chat(key, pinned));
    expect(hits.map((h) => h.authorization)).toEqual([`Bearer ${OWN_OPENAI_KEY}`, `Bearer ${PLATFORM_OPENAI_KEY}`]);
    expect(after.usage).toMatchObject({ is_byok: false, cost: OPENAI_COST / 1e6 });
  });

  it("never uses a key copied into another workspace: the ciphertext is bound to its workspace", async () => {
    await provision("ws-byok-victim");
    const key = await provision("ws-byok-thief");
    await putByok("ws-byok-victim", "openai", OWN_OPENAI_KEY);
    await env.DB.prepare(
      `INSERT INTO provider_credentials (workspace_id, provider_slug, ciphertext, iv, last4)
       SELECT 'ws-byok-thief', provider_slug, ciphertext, iv, last4 FROM provider_credentials WHERE workspace_id = 'ws-byok-victim'`,
    ).run();
    const hits = upstream();
    const body = await completionOf(await chat(key, ask({ provider: { order: ["openai"] } })));
    expect(hits.map((h) => h.authorization)).toEqual([`Bearer ${PLATFORM_OPENAI_KEY}`]);
    expect(body.usage.is_byok).toBe(false);
  });

  it("serves a warm request without reading D1", async () => {
    const key = await provision("ws-byok-warm");
    await putByok("ws-byok-warm", "openai", OWN_OPENAI_KEY);
    upstream();
    const statements: string[] = [];
    const db = new Proxy(env.DB, {
      get(target, prop) {
        if (prop === "prepare") {
          return (sql: string) => {
            statements.push(sql);
            return target.prepare(sql);
          };
        }
        const value: unknown = Reflect.get(target, prop, target);
        return typeof value === "function" ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
    const pinned = ask({ provider: { order: ["openai"] } });
    expect((await completionOf(await chatWith({ DB: db }, key, pinned))).usage.is_byok).toBe(true);
    // The first request after the key was stored read it (the proxy sees every statement).
    expect(statements.some((sql) => /from "provider_credentials"/i.test(sql))).toBe(true);
    statements.length = 0;
    expect((await completionOf(await chatWith({ DB: db }, key, pinned))).usage.is_byok).toBe(true);
    expect(statements.filter((sql) => /^\s*select/i.test(sql))).toEqual([]);
  });
});

describe("BYOK fee and the monthly free allowance", () => {
  it("charges nothing inside the allowance, then 5 % of only the part above it", async () => {
    const key = await provision("ws-byok-allowance");
    await putByok("ws-byok-allowance", "openai", OWN_OPENAI_KEY);
    upstream();
    // $0.006 free a month: 6,000 µ$ of platform-equivalent spend; each request is 4,500 µ$.
    const terms = { BYOK_FREE_MONTHLY_USD: "0.006" };
    const costs: number[] = [];
    const upstreamCosts: Array<number | null> = [];
    for (let i = 0; i < 3; i++) {
      const body = await completionOf(await chatWith(terms, key, ask({ provider: { order: ["openai"] } })));
      costs.push(Math.round(body.usage.cost * 1e6));
      upstreamCosts.push(body.usage.cost_details.upstream_inference_cost);
    }
    // 4,500 free (1,500 left); then 1,500 free and 3,000 × 5 % = 150; then 4,500 × 5 % = 225.
    expect(costs).toEqual([0, 150, 225]);
    expect(upstreamCosts).toEqual([0.0045, 0.0045, 0.0045]);
    expect(await usedMicros("ws-byok-allowance")).toBe(375);
  });

  it("reserves only the largest possible fee when every candidate is BYOK", async () => {
    // $0.81 paid − $0.80 fee = 10,000 µ$. gpt-4o at 10,000 output tokens could cost 110,000 µ$ on
    // Azure EU ($11/M): far beyond the balance, but its 5 % fee (≤ 5,500 µ$) fits.
    const key = await provision("ws-byok-reserve", "0.81");
    upstream();
    const big = { model: "openai/gpt-4o", messages: [{ role: "user", content: "hi" }], max_tokens: 10_000 };
    await expectError(await chat(key, big), 402);
    await putByok("ws-byok-reserve", "openai", OWN_OPENAI_KEY);
    // A plan still mixing a platform-keyed endpoint reserves the full cost.
    await expectError(await chat(key, big), 402);
    await putByok("ws-byok-reserve", "azure-eu", OWN_AZURE_KEY);
    // OpenAI's EU data-residency endpoint serves gpt-4o too: with its own key, every candidate is BYOK.
    await putByok("ws-byok-reserve", "openai-eu", OWN_OPENAI_KEY);
    const res = await chat(key, big);
    expect(res.status).toBe(200);
    expect(((await res.json()) as RouterCompletion).usage.is_byok).toBe(true);
  });
});
