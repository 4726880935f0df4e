/**
 * Sharded admission through the Worker: a workspace with `ledger_shards` = 4 admits each key's
 * requests at the key's LedgerShard, charges exactly what /generation reports once the shards have
 * flushed to the Ledger's journal, never admits more concurrent requests than the balance covers,
 * and leaves keys with a credit limit and plans holding a BYOK candidate to the Ledger.
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { http, HttpResponse } from "msw";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { shardForKey, shardName } from "../../src/billing/ledger-shard-policy";
import { admin, call, chat, eventually, mswServer, provision, readSSE, sseBody, sseResponse, type RouterCompletion } from "../helpers";

// openai/gpt-4o-mini on OpenAI only: $0.15/M prompt, $0.60/M completion.
const OPENAI = "https://openai.upstream.test/v1/chat/completions";
const pinned = { model: "openai/gpt-4o-mini", provider: { order: ["openai"], only: ["openai"] } };
const SHARDS = 4;

const touched: string[] = [];

beforeAll(() => mswServer.listen({ onUnhandledRequest: "error" }));
afterEach(async () => {
  mswServer.resetHandlers();
  // Shards keep flush and idle-return alarms; stop them so nothing runs after the test.
  for (const name of touched.splice(0)) await runInDurableObject(env.LEDGER_SHARD.getByName(name), (_, state) => state.storage.deleteAlarm());
});
afterAll(() => mswServer.close());

interface Key {
  id: string;
  key: string;
  shard: number;
}

/** A workspace with `ledger_shards` = SHARDS and keys covering at least three of its shards. */
async function shardedWorkspace(workspace: string, credits: string): Promise<Key[]> {
  await provision(workspace, credits);
  const put = await admin(`/workspaces/${workspace}`, "PUT", { name: "Sharded", ledger_shards: SHARDS });
  expect(((await put.json()) as { data: { ledgerShards: number } }).data.ledgerShards).toBe(SHARDS);
  for (let i = 0; i < SHARDS; i++) touched.push(shardName(workspace, i));
  const keys: Key[] = [];
  while (keys.length < 4 || new Set(keys.map((k) => k.shard)).size < 3) {
    if (keys.length >= 40) throw new Error("keys do not spread over the shards");
    const res = await admin(`/workspaces/${workspace}/keys`, "POST", { name: `k${keys.length}` });
    const body = (await res.json()) as { data: { id: string }; key: string };
    keys.push({ id: body.data.id, key: body.key, shard: shardForKey(body.data.id, SHARDS) });
  }
  return keys;
}

async function generationCost(key: string, id: string): Promise<number> {
  return eventually(async () => {
    const res = await call(`/api/v1/generation?id=${id}`, { headers: { authorization: `Bearer ${key}` } });
    return res.status === 200 ? ((await res.json()) as { data: { total_cost: number } }).data.total_cost : undefined;
  });
}

/** Report every shard's charges to the ledger and give back the unused leases. */
async function drainShards(workspace: string): Promise<void> {
  for (let i = 0; i < SHARDS; i++) await env.LEDGER_SHARD.getByName(shardName(workspace, i)).returnUnused();
}

const completion = (completionTokens: number) => ({
  choices: [{ index: 0, message: { role: "assistant", content: "ok" }, finish_reason: "stop" }],
  usage: { prompt_tokens: 1000, completion_tokens: completionTokens, total_tokens: 1000 + completionTokens },
});

describe("sharded admission (ledger_shards)", () => {
  it("rejects a shard count outside 1–64", async () => {
    await provision("ws-shards-bad", null);
    for (const ledger_shards of [0, 65, 1.5]) {
      expect((await admin("/workspaces/ws-shards-bad", "PUT", { name: "x", ledger_shards })).status).toBe(400);
    }
  });

  it("admits each key at its shard and charges exactly what /generation reports, JSON and stream", async () => {
    const keys = await shardedWorkspace("ws-shards-exact", "100");
    let n = 0;
    mswServer.use(
      http.post(OPENAI, async ({ request }) => {
        const body = (await request.json()) as { stream?: boolean };
        const tokens = 100 + 37 * n++;
        if (!body.stream) return HttpResponse.json(completion(tokens));
        return sseResponse(
          sseBody([
            { choices: [{ index: 0, delta: { content: "Hi" } }] },
            { choices: [{ index: 0, delta: {}, finish_reason: "stop" }] },
            { choices: [], usage: { prompt_tokens: 1000, completion_tokens: tokens, total_tokens: 1000 + tokens } },
            "[DONE]",
          ]),
        );
      }),
    );
    const generations: { key: string; id: string; cost: number }[] = [];
    for (const k of keys) {
      const json = await chat(k.key, { ...pinned, messages: [{ role: "user", content: "hi" }], max_tokens: 1000 });
      expect(json.status).toBe(200);
      const body = (await json.json()) as RouterCompletion;
      generations.push({ key: k.key, id: body.id, cost: body.usage.cost });
      const stream = await chat(k.key, { ...pinned, messages: [{ role: "user", content: "hi" }], max_tokens: 1000, stream: true });
      expect(stream.status).toBe(200);
      const { chunks } = await readSSE(stream);
      generations.push({ key: k.key, id: stream.headers.get("x-generation-id")!, cost: chunks.find((c) => c.usage)!.usage!.cost });
    }
    // Each key's shard holds a lease; no other shard admitted anything.
    const ledger = env.LEDGER.getByName("ws-shards-exact");
    const leased = new Set((await ledger.leases()).map((l) => l.shardId));
    expect(leased).toEqual(new Set(keys.map((k) => shardName("ws-shards-exact", k.shard))));

    for (const g of generations) expect(await generationCost(g.key, g.id)).toBe(g.cost);
    await drainShards("ws-shards-exact");

    const journal = await ledger.journal(1000);
    const charges = journal.filter((e) => e.kind === "charge");
    expect(charges).toHaveLength(generations.length);
    for (const g of generations) {
      const entry = charges.find((e) => e.reference === g.id);
      expect(entry?.amountMicros).toBe(-Math.round(g.cost * 1_000_000));
    }
    const spent = generations.reduce((sum, g) => sum + Math.round(g.cost * 1_000_000), 0);
    const balance = await ledger.balance();
    expect(balance).toMatchObject({ balanceMicros: 94_500_000 - spent, totalUsageMicros: spent, heldMicros: 0 });
    expect((await ledger.leases()).every((l) => l.leasedMicros === 0)).toBe(true);
  });

  it("never admits more concurrent requests from several keys than the balance covers", async () => {
    // $0.82 − $0.80 fee = 20,000 µ$. Each request reserves 1 µ$ of prompt + 5,000 × 0.6 µ$ =
    // 3,001 µ$, so at most 6 are in flight at once; each is charged 1,000 × 0.15 + 4,000 × 0.6 =
    // 2,550 µ$, so once three have settled a seventh fits (20,000 − 3 × 2,550 − 3 × 3,001 ≥ 3,001).
    // What must never happen is an eighth: 8 × 2,550 > 20,000.
    const keys = await shardedWorkspace("ws-shards-race", "0.82");
    mswServer.use(http.post(OPENAI, () => HttpResponse.json(completion(4000))));
    const requests = Array.from({ length: 30 }, (_, i) => keys[i % keys.length]!);
    const results = await Promise.all(requests.map((k) => chat(k.key, { ...pinned, messages: [{ role: "user", content: "hi" }], max_tokens: 5000 })));
    const statuses = results.map((r) => r.status);
    expect(statuses.every((s) => s === 200 || s === 402)).toBe(true);
    const admitted = statuses.filter((s) => s === 200).length;
    expect(admitted).toBeGreaterThanOrEqual(1);
    expect(admitted).toBeLessThanOrEqual(7);

    const ok = await Promise.all(results.map(async (r, i) => (r.status === 200 ? { key: requests[i]!.key, body: (await r.json()) as RouterCompletion } : (await r.text(), null))));
    for (const g of ok) if (g) expect(await generationCost(g.key, g.body.id)).toBe(0.00255);
    await drainShards("ws-shards-race");
    const balance = await env.LEDGER.getByName("ws-shards-race").balance();
    expect(balance).toMatchObject({ balanceMicros: 20_000 - admitted * 2_550, heldMicros: 0 });
  });

  it("admits a key with a credit limit at the Ledger, not at a shard", async () => {
    await shardedWorkspace("ws-shards-limit", "100");
    const created = (await (await admin("/workspaces/ws-shards-limit/keys", "POST", { name: "limited", limit: "1" })).json()) as {
      data: { id: string };
      key: string;
    };
    const shard = env.LEDGER_SHARD.getByName(shardName("ws-shards-limit", shardForKey(created.data.id, SHARDS)));
    mswServer.use(http.post(OPENAI, () => HttpResponse.json(completion(500))));
    const res = await chat(created.key, { ...pinned, messages: [{ role: "user", content: "hi" }], max_tokens: 1000 });
    expect(res.status).toBe(200);
    const body = (await res.json()) as RouterCompletion;
    expect(await generationCost(created.key, body.id)).toBe(0.00045);
    // Charged in the ledger's journal without any shard flushing, and no shard ever saw it.
    const ledger = env.LEDGER.getByName("ws-shards-limit");
    expect((await ledger.journal(1000)).find((e) => e.reference === body.id)?.amountMicros).toBe(-450);
    expect(await ledger.leases()).toEqual([]);
    expect(await runInDurableObject(shard, (_, state) => state.storage.sql.exec("SELECT * FROM holds").toArray().length)).toBe(0);
    expect((await ledger.keyUsage(created.data.id))?.usageMicros).toBe(450);
  });

  it("admits a plan holding a BYOK candidate at the Ledger, so its BYOK settlement works", async () => {
    const keys = await shardedWorkspace("ws-shards-byok", "100");
    expect((await admin("/workspaces/ws-shards-byok/byok/openai", "PUT", { api_key: "sk-own-openai-key-wxyz" })).status).toBeLessThan(300);
    mswServer.use(http.post(OPENAI, () => HttpResponse.json(completion(500))));
    const k = keys[0]!;
    const res = await chat(k.key, { ...pinned, messages: [{ role: "user", content: "hi" }], max_tokens: 1000 });
    expect(res.status).toBe(200);
    const body = (await res.json()) as RouterCompletion;
    expect(body.usage.is_byok).toBe(true);
    const ledger = env.LEDGER.getByName("ws-shards-byok");
    expect(await ledger.leases()).toEqual([]);
    expect((await ledger.keyUsage(k.id))?.byokUsageMicros).toBe(450);
  });
});
