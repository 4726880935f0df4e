/**
 * An EU workspace's traces stay on the EU pipeline: sent to TRACES_EU (content too large for a
 * message to TRACE_CONTENT_EU), delivered from there with content read back from
 * TRACE_CONTENT_EU, failures handed to TRACE_DELIVERIES_EU, dead-lettered into DB_EU, and replayed
 * from there into the EU queues — end to end through the local queues, and binding by binding
 * with recording doubles. A pipeline that is not fully bound retries in place.
 */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { http, HttpResponse } from "msw";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { app } from "../../src/app";
import { contentKey, withoutContent } from "../../src/traces/content";
import { EU_TRACE_QUEUES } from "../../src/traces/messages";
import type { Trace } from "../../src/traces/schema";
import { admin, ADMIN_TOKEN, chatAt, chatRequest, EU_ORIGIN, eventually, mswServer, ORIGIN, provisionEu, resetHealth, type RouterCompletion } from "../helpers";
import { recordingEnv, type BindingUse } from "../unit/residency/doubles";
import { batchOf, exampleTrace, queued, runQueue, sink } from "../unit/traces/fixtures";

const WS = "ws-eu-traces";
const HOOK = "https://hooks.sink.test/eu";
let key: string;

beforeAll(async () => {
  mswServer.listen({ onUnhandledRequest: "error" });
  key = await provisionEu(WS, "1000");
  const hook = await admin(`/workspaces/${WS}/destinations/hook`, "PUT", { type: "webhook", url: HOOK, signing_secret: "whsec_eu_traces_0123456789" });
  expect(hook.status).toBe(201);
});
afterEach(async () => {
  mswServer.resetHandlers();
  await resetHealth();
});
afterAll(() => mswServer.close());

function mistral() {
  mswServer.use(
    http.post("https://mistral.upstream.test/v1/chat/completions", () =>
      HttpResponse.json({ choices: [{ index: 0, message: { role: "assistant", content: "bonjour" }, finish_reason: "stop" }], usage: { prompt_tokens: 5, completion_tokens: 1, total_tokens: 6 } }),
    ),
  );
}

const MODEL = "mistralai/mistral-small-3.2-24b-instruct";
const euTrace = (overrides: Partial<Trace> = {}) =>
  exampleTrace({ workspace_id: WS, region: "eu", endpoint: { id: `mistral:${MODEL}`, provider: "mistral", provider_name: "Mistral", upstream_model: "mistral-small-latest", region: "eu" }, ...overrides });

const sentTo = (uses: BindingUse[], binding: string) => uses.filter((u) => u.binding === binding && (u.op === "send" || u.op === "sendBatch")).length;

describe("an EU workspace's traces", () => {
  it("reach its destination through the EU queues, saying where the request came in and went", async () => {
    mistral();
    const hits = sink(HOOK);
    const res = await chatAt(EU_ORIGIN, key, { model: MODEL, messages: [{ role: "user", content: "salut" }] });
    expect(res.status).toBe(200);
    const { id } = (await res.json()) as RouterCompletion;
    const trace = await eventually(async () => hits.map((h) => JSON.parse(h.body) as Trace).find((t) => t.generation_id === id), 30_000);
    expect(trace.region).toBe("eu");
    expect(trace.endpoint?.region).toBe("eu");
  }, 40_000);

  it("go to TRACES_EU, with content too large for a message in TRACE_CONTENT_EU, never the global ones", async () => {
    mistral();
    const uses: BindingUse[] = [];
    const ctx = createExecutionContext();
    const big = "x".repeat(200 * 1024);
    const res = await app.fetch(chatRequest(EU_ORIGIN, key, { model: MODEL, messages: [{ role: "user", content: big }] }), recordingEnv(env, uses), ctx);
    expect(res.status).toBe(200);
    await res.arrayBuffer();
    await waitOnExecutionContext(ctx);
    expect(sentTo(uses, "TRACES_EU")).toBe(1);
    expect(uses.some((u) => u.binding === "TRACE_CONTENT_EU" && u.op === "put" && u.detail?.startsWith(`traces/${WS}/`))).toBe(true);
    expect(uses.filter((u) => u.binding === "TRACES" || u.binding === "TRACE_CONTENT" || u.binding === "TRACE_DELIVERIES")).toEqual([]);
  });
});

describe("the EU queue consumers", () => {
  it("deliver directly with content from TRACE_CONTENT_EU, touching no global binding and no queue", async () => {
    const hits = sink(HOOK);
    const trace = euTrace();
    const key = contentKey(trace);
    const json = JSON.stringify(trace.content);
    await env.TRACE_CONTENT_EU.put(key, json);
    const offloaded: Trace = { ...withoutContent(trace), content_ref: { key, bytes: new TextEncoder().encode(json).byteLength } };
    const uses: BindingUse[] = [];
    const result = await runQueue(EU_TRACE_QUEUES.traces, [queued(batchOf(offloaded))], recordingEnv(env, uses));
    expect(result.explicitAcks).toHaveLength(1);
    const delivered = hits.map((h) => JSON.parse(h.body) as Trace).find((t) => t.generation_id === trace.generation_id);
    expect(delivered?.content).toEqual(trace.content);
    expect(uses.some((u) => u.binding === "TRACE_CONTENT_EU" && u.op === "get" && u.detail === key)).toBe(true);
    expect(uses.filter((u) => u.op === "send" || u.op === "sendBatch")).toEqual([]);
    expect(uses.filter((u) => ["TRACES", "TRACE_DELIVERIES", "TRACE_CONTENT"].includes(u.binding))).toEqual([]);
  });

  it("hand a failing destination's deliveries to TRACE_DELIVERIES_EU only", async () => {
    sink(HOOK, () => new Response("down", { status: 503 }));
    const uses: BindingUse[] = [];
    const result = await runQueue(EU_TRACE_QUEUES.traces, [queued(batchOf(euTrace(), euTrace()))], recordingEnv(env, uses));
    expect(result.explicitAcks).toHaveLength(1);
    expect(sentTo(uses, "TRACE_DELIVERIES_EU")).toBe(1);
    expect(sentTo(uses, "TRACE_DELIVERIES")).toBe(0);
    expect(sentTo(uses, "TRACES")).toBe(0);
  });

  it("retry the batch in place when the EU pipeline is not fully bound, sending nothing anywhere", async () => {
    const uses: BindingUse[] = [];
    const partial: Partial<Env> = { ...recordingEnv(env, uses) };
    delete partial.TRACE_DELIVERIES_EU;
    const result = await runQueue(EU_TRACE_QUEUES.traces, [queued(euTrace())], partial as Env);
    expect(result.retryBatch.retry).toBe(true);
    expect(uses.filter((u) => u.op === "send" || u.op === "sendBatch")).toEqual([]);
  });

  it("record permanent failures and exhausted deliveries as dead letters in DB_EU; the admin API lists and replays them there", async () => {
    sink(HOOK, () => new Response("no", { status: 400 }));
    const failed = euTrace();
    const uses: BindingUse[] = [];
    await runQueue(EU_TRACE_QUEUES.deliveries, [queued({ kind: "delivery", destination_id: "hook", trace: failed })], recordingEnv(env, uses));
    // Refused on the direct attempt of the TRACES consumer: dead-lettered there, in DB_EU too.
    const refused = euTrace();
    await runQueue(EU_TRACE_QUEUES.traces, [queued(batchOf(refused))], recordingEnv(env, uses));
    const exhausted = euTrace();
    await runQueue(EU_TRACE_QUEUES.deadLetters, [queued({ kind: "delivery", destination_id: "hook", trace: exhausted }, 11, "dlq-eu-1")], recordingEnv(env, uses));

    const stored = await env.DB_EU.prepare("SELECT generation_id FROM trace_dead_letters WHERE workspace_id = ?").bind(WS).all<{ generation_id: string }>();
    expect(stored.results.map((r) => r.generation_id).sort()).toEqual([failed.generation_id, refused.generation_id, exhausted.generation_id].sort());
    const global = await env.DB.prepare("SELECT count(*) AS n FROM trace_dead_letters WHERE workspace_id = ?").bind(WS).first<{ n: number }>();
    expect(global?.n).toBe(0);
    expect(uses.some((u) => u.binding === "DB" && /trace_dead_letters/.test(u.detail ?? ""))).toBe(false);

    const listed = (await (await admin(`/workspaces/${WS}/dead-letters`, "GET")).json()) as { data: Array<{ generation_id: string }> };
    expect(listed.data).toHaveLength(3);

    // Fixed: the replayed deliveries go through the EU delivery queue and its consumer to the hook.
    const delivered = sink(HOOK);
    const replayUses: BindingUse[] = [];
    const ctx = createExecutionContext();
    const replay = await app.fetch(
      new Request(`${ORIGIN}/admin/v1/workspaces/${WS}/dead-letters/replay`, { method: "POST", headers: { authorization: `Bearer ${ADMIN_TOKEN}` } }),
      recordingEnv(env, replayUses),
      ctx,
    );
    await waitOnExecutionContext(ctx);
    expect(((await replay.json()) as { data: { replayed: number } }).data.replayed).toBe(3);
    expect(sentTo(replayUses, "TRACE_DELIVERIES_EU")).toBe(1);
    expect(sentTo(replayUses, "TRACE_DELIVERIES") + sentTo(replayUses, "TRACES")).toBe(0);
    await eventually(async () => (delivered.length >= 3 ? true : undefined), 20_000);
  }, 30_000);
});
