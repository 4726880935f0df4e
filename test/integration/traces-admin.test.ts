/**
 * The trace destinations admin API through the Worker: create, list, update, test-send and delete
 * destinations without a secret ever appearing in a response, and list and replay dead letters
 * (the replay goes through the real TRACE_DELIVERIES queue and its consumer).
 */
import { createHmac } from "node:crypto";
import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { HttpResponse } from "msw";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { queue } from "../../src/traces/consumer";
import { TRACE_QUEUES, type DeliveryMessage } from "../../src/traces/messages";
import type { Trace } from "../../src/traces/schema";
import { admin, call, eventually, expectError, mswServer } from "../helpers";
import { exampleTrace, sink } from "../unit/traces/fixtures";

beforeAll(() => mswServer.listen({ onUnhandledRequest: "error" }));
afterEach(() => mswServer.resetHandlers());
afterAll(() => mswServer.close());

const WS = "ws-traces-admin";
const WEBHOOK_SECRET = "whsec_ADMIN_SECRET_do_not_leak_9f8e";
const HONEYCOMB_KEY = "hcaik_HONEYCOMB_SECRET_do_not_leak_77aa";
const LANGFUSE_PUBLIC = "pk-lf-PUBLIC-do-not-leak-1234";
const LANGFUSE_SECRET = "sk-lf-SECRET-do-not-leak-5678";
const SECRETS = [WEBHOOK_SECRET, HONEYCOMB_KEY, LANGFUSE_PUBLIC, LANGFUSE_SECRET];

/** Every secret is absent from the text, and so is any long piece of one. */
function expectNoSecret(text: string): void {
  for (const secret of SECRETS) {
    expect(text).not.toContain(secret);
    expect(text).not.toContain(secret.slice(0, 12));
    expect(text).not.toContain(secret.slice(6, 24));
  }
}

async function json(res: Response): Promise<{ text: string; body: { data: Record<string, unknown> & Array<Record<string, unknown>> } }> {
  const text = await res.text();
  expectNoSecret(text);
  return { text, body: JSON.parse(text) as { data: Record<string, unknown> & Array<Record<string, unknown>> } };
}

const webhook = { type: "webhook", name: "Our hook", url: "https://hooks.sink.test/admin", signing_secret: WEBHOOK_SECRET, sampling_rate: 0.5 };
const honeycomb = { type: "otlp", endpoint: "https://api.honeycomb.io", headers: { "x-honeycomb-dataset": "llm" }, secret_headers: { "x-honeycomb-team": HONEYCOMB_KEY }, privacy_mode: true };
const langfuse = { type: "langfuse", base_url: "https://cloud.langfuse.com", public_key: LANGFUSE_PUBLIC, secret_key: LANGFUSE_SECRET, api_key_ids: ["key-a"] };

describe("trace destinations admin API", () => {
  beforeAll(async () => {
    const res = await admin(`/workspaces/${WS}`, "PUT", { name: "Traces" });
    expect(res.status).toBe(200);
  });

  it("creates, lists, shows, updates and deletes destinations without ever returning a secret", async () => {
    const created = await json(await admin(`/workspaces/${WS}/destinations/hook`, "PUT", webhook));
    expect(created.body.data).toMatchObject({
      id: "hook",
      type: "webhook",
      name: "Our hook",
      enabled: true,
      sampling_rate: 0.5,
      api_key_ids: null,
      privacy_mode: false,
      config: { url: "https://hooks.sink.test/admin", headers: {} },
      secret: { signing_secret: "…9f8e" },
      delivery: { delivered: 0, failed_attempts: 0, last_success_at: null, last_error: null, dead_letters: 0 },
    });
    expect((await admin(`/workspaces/${WS}/destinations/honeycomb`, "PUT", honeycomb)).status).toBe(201);
    expect((await admin(`/workspaces/${WS}/destinations/langfuse`, "PUT", langfuse)).status).toBe(201);

    const list = await json(await admin(`/workspaces/${WS}/destinations`, "GET"));
    expect(list.body.data.map((d) => d.id)).toEqual(["honeycomb", "hook", "langfuse"]);
    const honey = list.body.data.find((d) => d.id === "honeycomb");
    expect(honey).toMatchObject({ privacy_mode: true, config: { endpoint: "https://api.honeycomb.io", headers: { "x-honeycomb-dataset": "llm" } }, secret: { "headers.x-honeycomb-team": "…77aa" } });
    expect(list.body.data.find((d) => d.id === "langfuse")).toMatchObject({ api_key_ids: ["key-a"], secret: { public_key: "…1234", secret_key: "…5678" } });

    const one = await json(await admin(`/workspaces/${WS}/destinations/langfuse`, "GET"));
    expect(one.body.data.id).toBe("langfuse");

    // An update without secret fields keeps the stored secret.
    const updated = await json(await admin(`/workspaces/${WS}/destinations/hook`, "PUT", { type: "webhook", url: "https://hooks.sink.test/admin", sampling_rate: 1 }));
    expect(updated.body.data).toMatchObject({ sampling_rate: 1, secret: { signing_secret: "…9f8e" }, name: null });

    const deleted = await json(await admin(`/workspaces/${WS}/destinations/langfuse`, "DELETE"));
    expect(deleted.body.data).toEqual({ id: "langfuse", deleted: true });
    await expectError(await admin(`/workspaces/${WS}/destinations/langfuse`, "GET"), 404);
    await expectError(await admin(`/workspaces/${WS}/destinations/langfuse`, "DELETE"), 404);
    const after = await json(await admin(`/workspaces/${WS}/destinations`, "GET"));
    expect(after.body.data.map((d) => d.id)).toEqual(["honeycomb", "hook"]);
  });

  it("refuses invalid destinations with 400", async () => {
    const bad = async (id: string, body: unknown, field: RegExp) => {
      const error = await expectError(await admin(`/workspaces/${WS}/destinations/${id}`, "PUT", body), 400);
      expect(error.message).toMatch(field);
      expectNoSecret(JSON.stringify(error));
    };
    await bad("new-hook", { type: "webhook", url: "https://hooks.sink.test/x" }, /signing_secret/);
    await bad("plain", { type: "webhook", url: "http://hooks.sink.test/x", signing_secret: WEBHOOK_SECRET }, /url/);
    await bad("leaky", { type: "otlp", endpoint: "https://api.honeycomb.io", headers: { "x-honeycomb-team": HONEYCOMB_KEY } }, /secret_headers/);
    await bad("rate", { ...webhook, sampling_rate: 1.5 }, /sampling_rate/);
    await bad("half", { type: "langfuse", public_key: LANGFUSE_PUBLIC }, /key pair/);
    await bad("kind", { type: "kafka" }, /type/);
    await bad("bad id!", webhook, /1–64/);
    await expectError(await admin(`/workspaces/nope/destinations/hook`, "PUT", webhook), 404);
  });

  it("is behind the admin token", async () => {
    const res = await call(`/admin/v1/workspaces/${WS}/destinations`, { headers: { authorization: "Bearer wrong" } });
    expect(res.status).toBe(401);
  });

  it("test-sends a signed trace through the delivery path and reports the outcome", async () => {
    const hits = sink("https://hooks.sink.test/admin");
    const res = await json(await admin(`/workspaces/${WS}/destinations/hook/test`, "POST"));
    expect(res.body.data).toMatchObject({ destination_id: "hook", delivered: true, status: 200 });
    expect(hits).toHaveLength(1);
    const hit = hits[0];
    if (!hit) throw new Error("no delivery");
    const [, t, v1] = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(hit.headers.get("x-switchyard-signature") ?? "") ?? [];
    expect(createHmac("sha256", WEBHOOK_SECRET).update(`${t}.${hit.body}`).digest("hex")).toBe(v1);
    expect((JSON.parse(hit.body) as Trace).generation_id).toBe(res.body.data.generation_id);

    await admin(`/workspaces/${WS}/destinations/down`, "PUT", { type: "webhook", url: "https://hooks.sink.test/down", signing_secret: WEBHOOK_SECRET });
    sink("https://hooks.sink.test/down", () => new HttpResponse("maintenance", { status: 503 }));
    const failed = await json(await admin(`/workspaces/${WS}/destinations/down/test`, "POST"));
    expect(failed.body.data).toMatchObject({ delivered: false, status: 503, retryable: true });
    expect(String(failed.body.data.error)).toMatch(/HTTP 503/);
    await expectError(await admin(`/workspaces/${WS}/destinations/missing/test`, "POST"), 404);
  });

  it("lists dead letters without their content and replays them through the delivery queue", async () => {
    await admin(`/workspaces/${WS}/destinations/replayed`, "PUT", { type: "webhook", url: "https://hooks.sink.test/replayed", signing_secret: WEBHOOK_SECRET });
    const traces = [exampleTrace({ workspace_id: WS }), exampleTrace({ workspace_id: WS })];
    // What Queues moves to TRACE_DLQ after the last retry, recorded by the DLQ consumer.
    const batch = createMessageBatch<DeliveryMessage>(
      TRACE_QUEUES.deadLetters,
      traces.map((trace, i) => ({ id: `dlq-${i}`, timestamp: new Date(), attempts: 1, body: { kind: "delivery", destination_id: "replayed", trace } })),
    );
    const ctx = createExecutionContext();
    await queue(batch, env, ctx);
    expect((await getQueueResult(batch, ctx)).explicitAcks.sort()).toEqual(["dlq-0", "dlq-1"]);

    const listed = await json(await admin(`/workspaces/${WS}/dead-letters`, "GET"));
    expect(listed.body.data.map((d) => d.generation_id).sort()).toEqual(traces.map((t) => t.generation_id).sort());
    expect(listed.body.data[0]).toMatchObject({ destination_id: "replayed" });
    expect(listed.text).not.toContain("PROMPT-MARKER-7f3a");
    const filtered = await json(await admin(`/workspaces/${WS}/dead-letters?destination_id=hook`, "GET"));
    expect(filtered.body.data).toEqual([]);
    const destinations = await json(await admin(`/workspaces/${WS}/destinations/replayed`, "GET"));
    expect(destinations.body.data.delivery).toMatchObject({ dead_letters: 2 });

    const hits = sink("https://hooks.sink.test/replayed");
    const replay = await json(await admin(`/workspaces/${WS}/dead-letters/replay`, "POST", { destination_id: "replayed" }));
    expect(replay.body.data).toEqual({ replayed: 2, unreadable: 0, remaining: 0 });
    expect((await json(await admin(`/workspaces/${WS}/dead-letters`, "GET"))).body.data).toEqual([]);

    // The real queue hands the replayed deliveries to the Worker's consumer, which delivers them.
    await eventually(async () => (hits.length >= 2 ? true : undefined), 20_000);
    expect(hits.map((h) => (JSON.parse(h.body) as Trace).generation_id).sort()).toEqual(traces.map((t) => t.generation_id).sort());
    const health = await eventually(async () => {
      const res = await json(await admin(`/workspaces/${WS}/destinations/replayed`, "GET"));
      const delivery = res.body.data.delivery as { delivered: number; last_success_at: string | null; dead_letters: number };
      return delivery.delivered === 2 ? delivery : undefined;
    }, 5_000);
    expect(health.dead_letters).toBe(0);
    expect(health.last_success_at).not.toBeNull();
  }, 30_000);

  it("replays with an empty body, and refuses a malformed one", async () => {
    const empty = await json(await call(`/admin/v1/workspaces/${WS}/dead-letters/replay`, { method: "POST", headers: { authorization: "Bearer test-admin-token" } }));
    expect(empty.body.data).toEqual({ replayed: 0, unreadable: 0, remaining: 0 });
    await expectError(await admin(`/workspaces/${WS}/dead-letters/replay`, "POST", { limit: 0 }), 400);
  });
});
