/**
 * Shared test helpers: calling the Worker, provisioning a workspace and key through the admin
 * API, and building upstream answers for msw.
 */
import { exports } from "cloudflare:workers";
import { setupServer } from "msw/node";

export const ADMIN_TOKEN = "test-admin-token";
export const ORIGIN = "https://gateway.test";

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

/** Seed the catalog and create a workspace with one key; returns the key. */
export async function provision(workspace = "ws-test"): Promise<string> {
  const seeded = await admin("/catalog/seed", "POST");
  if (seeded.status !== 200) throw new Error(`seed failed: ${seeded.status} ${await seeded.text()}`);
  const ws = await admin(`/workspaces/${workspace}`, "PUT", { name: "Test" });
  if (ws.status !== 200) throw new Error(`workspace failed: ${ws.status} ${await ws.text()}`);
  const created = await admin(`/workspaces/${workspace}/keys`, "POST", { name: "test" });
  const body = (await created.json()) as { key: string };
  return body.key;
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
