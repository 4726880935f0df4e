/**
 * Shared test helpers: calling the Worker, provisioning a workspace and key through the admin
 * API, and building upstream answers for msw.
 */
import { createExecutionContext, evictDurableObject, runInDurableObject, waitOnExecutionContext } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { http, HttpResponse, type HttpHandler } from "msw";
import { setupServer } from "msw/node";
import { expect } from "vitest";
import { forgetStickyRoutes, HEALTH_REGION } from "../src/api/chat/route-plan";
import { app } from "../src/app";
import { forgetHealth } from "../src/routing/health-client";

export const ADMIN_TOKEN = "test-admin-token";
export const ORIGIN = "https://gateway.test";
/** The EU hostname of the tests (vitest.config.ts `REGION_HOSTS`): requests here come in through region `eu`. */
export const EU_ORIGIN = "https://eu.gateway.test";

export function call(path: string, init: RequestInit = {}): Promise<Response> {
  return exports.default.fetch(new Request(`${ORIGIN}${path}`, init));
}

export function admin(path: string, method: string, body?: unknown): Promise<Response> {
  return call(`/admin/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

/**
 * Seed the catalog and create a workspace with $100 of credits and one key; returns the key.
 * `provider`: the workspace's default routing preferences (e.g. `{ sort: "price" }` for tests
 * that need a fixed cheapest-first order instead of load balancing).
 */
export async function provision(workspace = "ws-test", credits: string | null = "100", provider?: Record<string, unknown>): Promise<string> {
  return provisionWith(workspace, credits, { name: "Test", ...(provider ? { provider } : {}) });
}

/** Seed the catalog, PUT the workspace with `settings`, top it up with `credits` and create one key. */
async function provisionWith(workspace: string, credits: string | null, settings: Record<string, unknown>): Promise<string> {
  const seeded = await admin("/catalog/seed", "POST");
  if (seeded.status !== 200) throw new Error(`seed failed: ${seeded.status} ${await seeded.text()}`);
  const ws = await admin(`/workspaces/${workspace}`, "PUT", settings);
  if (ws.status !== 200) throw new Error(`workspace failed: ${ws.status} ${await ws.text()}`);
  if (credits !== null) {
    const topUp = await admin(`/workspaces/${workspace}/credits`, "POST", { amount: credits });
    if (topUp.status !== 201) throw new Error(`top-up failed: ${topUp.status} ${await topUp.text()}`);
  }
  const created = await admin(`/workspaces/${workspace}/keys`, "POST", { name: "test" });
  const body = (await created.json()) as { key: string };
  return body.key;
}

/**
 * Forget every endpoint's health (this isolate's view and the regions' Health objects — `global`
 * and `eu`, which local workerd keeps in the plain namespace: memory and stored breakers) and
 * every conversation's sticky endpoint, so one test's failures do not reorder the next test's
 * endpoints.
 */
export async function resetHealth(): Promise<void> {
  forgetHealth();
  forgetStickyRoutes();
  for (const region of [HEALTH_REGION, "eu"]) {
    const stub = env.HEALTH.getByName(region);
    await runInDurableObject(stub, (_, state) => state.storage.deleteAll());
    await evictDurableObject(stub);
  }
}

/**
 * Seed the catalog and create an EU-pinned workspace (`region: "eu"` plus `settings`, e.g.
 * `allow_non_eu_ingress`, `ledger_shards`, `provider`) with credits and one key; returns the key.
 */
export async function provisionEu(workspace: string, credits: string | null = "100", settings: Record<string, unknown> = {}): Promise<string> {
  return provisionWith(workspace, credits, { name: "EU test", region: "eu", ...settings });
}

/** A chat completion request to `origin` (e.g. `EU_ORIGIN`), as `chat` sends it. */
export function chatRequest(origin: string, key: string, body: unknown, headers: Record<string, string> = {}): Request {
  return new Request(`${origin}/api/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
}

/** `chat` through another hostname (e.g. `EU_ORIGIN`). */
export function chatAt(origin: string, key: string, body: unknown): Promise<Response> {
  return exports.default.fetch(chatRequest(origin, key, body));
}

export function chat(key: string, body: unknown, init: RequestInit = {}): Promise<Response> {
  return call("/api/v1/chat/completions", {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify(body),
    ...init,
  });
}

/** An SSE body from `data:` payloads (objects are JSON-encoded), optionally with event names. */
export function sseBody(events: Array<unknown | { event: string; data: unknown }>): string {
  return events
    .map((e) => {
      if (typeof e === "object" && e !== null && "event" in e && "data" in e) {
        return `event: ${String(e.event)}\ndata: ${JSON.stringify(e.data)}\n\n`;
      }
      return `data: ${typeof e === "string" ? e : JSON.stringify(e)}\n\n`;
    })
    .join("");
}

export function sseResponse(body: string): Response {
  return new Response(body, { headers: { "content-type": "text/event-stream" } });
}

/** An OpenAI stream answering "ok" with usage (5 prompt, 1 completion token), as an upstream sends it. */
export function okStream(): Response {
  return sseResponse(
    sseBody([
      { choices: [{ index: 0, delta: { role: "assistant", content: "ok" } }] },
      { choices: [{ index: 0, delta: {}, finish_reason: "stop" }] },
      { choices: [], usage: { prompt_tokens: 5, completion_tokens: 1, total_tokens: 6 } },
      "[DONE]",
    ]),
  );
}

/** Parse an OpenAI SSE response into its JSON chunks, comments counted apart. */
export async function readSSE(response: Response): Promise<{ chunks: RouterChunk[]; done: boolean; comments: number }> {
  const text = await response.text();
  const chunks: RouterChunk[] = [];
  let done = false;
  let comments = 0;
  for (const block of text.split("\n\n")) {
    if (!block.trim()) continue;
    if (block.startsWith(":")) {
      comments++;
      continue;
    }
    const data = block.replace(/^data: /, "");
    if (data === "[DONE]") done = true;
    else chunks.push(JSON.parse(data) as RouterChunk);
  }
  return { chunks, done, comments };
}

export const mswServer = setupServer();

/** OpenRouter's additions on top of OpenAI's response types, as these tests read them. */
export interface RouterUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  cost: number;
  is_byok: boolean;
  prompt_tokens_details: { cached_tokens: number; cache_write_tokens: number };
  completion_tokens_details: { reasoning_tokens: number };
}

export interface RouterToolCall {
  index?: number;
  id?: string;
  type?: "function";
  function: { name?: string; arguments?: string };
}

export interface RouterCompletion {
  id: string;
  object: "chat.completion";
  model: string;
  provider: string;
  choices: Array<{
    index: number;
    finish_reason: string | null;
    native_finish_reason: string | null;
    message: {
      role: "assistant";
      content: string | null;
      reasoning: string | null;
      reasoning_details?: Array<Record<string, unknown>>;
      tool_calls?: RouterToolCall[];
    };
  }>;
  usage: RouterUsage;
}

export interface RouterChunk {
  id: string;
  object: "chat.completion.chunk";
  model: string;
  provider: string;
  choices: Array<{
    index: number;
    delta: { role?: string; content?: string; reasoning?: string; tool_calls?: RouterToolCall[] };
    finish_reason: string | null;
    native_finish_reason?: string | null;
  }>;
  usage?: RouterUsage;
  error?: { code: number; message: string; metadata?: Record<string, unknown> };
}

export interface RouterError {
  error: { code: number; message: string; metadata?: Record<string, unknown> };
}

/** A model's or endpoint's `pricing` in `GET /models`: USD per token (or request, image) as decimal strings. */
export interface RouterPricing {
  prompt: string;
  completion: string;
  request: string;
  image: string;
  input_cache_read: string;
  input_cache_write: string;
}

/** Any URL on one of the fake provider hosts of vitest.config.ts (`https://<prefix>.upstream.test/…`). */
export const UPSTREAM_URL = /^https:\/\/[a-z0-9-]+\.upstream\.test\//;

/** One request that reached a fake provider host. */
export interface UpstreamHit {
  host: string;
  path: string;
  /** The request body parsed as JSON, or its text when it is not JSON. */
  body: unknown;
}

/**
 * An msw handler for every fake provider host that records each request, then answers with
 * `answer` (by default an OpenAI-style completion saying "ok").
 */
export function recordUpstream(answer: (hit: UpstreamHit) => Response = () => HttpResponse.json(openAiCompletion("ok"))): {
  hits: UpstreamHit[];
  handler: HttpHandler;
} {
  const hits: UpstreamHit[] = [];
  const handler = http.all(UPSTREAM_URL, async ({ request }) => {
    const url = new URL(request.url);
    const text = await request.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // Not JSON: keep the text.
    }
    const hit = { host: url.host, path: url.pathname, body };
    hits.push(hit);
    return answer(hit);
  });
  return { hits, handler };
}

/** A minimal OpenAI chat completion as an OpenAI-compatible upstream answers it. */
export function openAiCompletion(content: string): Record<string, unknown> {
  return {
    id: "chatcmpl-test",
    object: "chat.completion",
    created: 1,
    model: "upstream-model",
    choices: [{ index: 0, message: { role: "assistant", content }, finish_reason: "stop" }],
    usage: { prompt_tokens: 5, completion_tokens: 1, total_tokens: 6 },
  };
}

/**
 * Asserts that `res` is OpenRouter's error shape with HTTP `status`: a JSON body
 * `{"error":{"code":status,"message":"…"}}` (with optional `metadata`) and nothing else. Returns the error.
 */
export async function expectError(res: Response, status: number): Promise<RouterError["error"]> {
  expect(res.status).toBe(status);
  expect(res.headers.get("content-type")).toMatch(/^application\/json\b/);
  const body = (await res.json()) as RouterError;
  expect(Object.keys(body)).toEqual(["error"]);
  expect(body.error.code).toBe(status);
  expect(typeof body.error.message).toBe("string");
  expect(body.error.message.length).toBeGreaterThan(0);
  for (const field of Object.keys(body.error)) expect(["code", "message", "metadata"]).toContain(field);
  return body.error;
}

/** Poll until `check` returns a value (background work such as settlement in waitUntil). */
export async function eventually<T>(check: () => Promise<T | undefined>, timeoutMs = 3000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Call the app with `testEnv` as its bindings (a double of some binding, say), its background
 * work (settlement, generation record, trace) finished before the response is returned.
 */
export async function fetchWith(testEnv: Env, request: Request): Promise<Response> {
  const ctx = createExecutionContext();
  const res = await app.fetch(request, testEnv, ctx);
  const body = await res.arrayBuffer();
  await waitOnExecutionContext(ctx);
  return new Response(body, res);
}
