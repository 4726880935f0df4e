/**
 * Settlements through the Worker (billing/settlement, billing/settlement-window): concurrent
 * platform-keyed requests of a workspace share `settleBatch` calls and are each charged exactly;
 * a workspace with a concurrency limit settles each request at once, so a client's next request
 * finds its slot free; and when the ledger cannot settle, the generation record and the usage the
 * client sees are still there.
 */
import { env } from "cloudflare:workers";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { admin, call, chat, chatRequest, eventually, fetchWith, mswServer, okStream, ORIGIN, provision, readSSE, recordUpstream, type RouterCompletion } from "../helpers";

beforeAll(() => mswServer.listen({ onUnhandledRequest: "error" }));
afterEach(() => mswServer.resetHandlers());
afterAll(() => mswServer.close());

// openai/gpt-4o-mini pinned to OpenAI: $0.15/M prompt, $0.60/M completion. The upstream answers 5
// prompt and 1 completion tokens: ⌈5 × 0.15 + 1 × 0.60⌉ µ$... computed by the gateway; the test
// compares the ledger with the sum of what each response reported.
const pinned = { model: "openai/gpt-4o-mini", provider: { order: ["openai"] }, messages: [{ role: "user", content: "hi" }], max_tokens: 16 };

interface Calls {
  settle: number;
  settleBatch: number[];
}

/** `env` whose Ledger namespace counts the settlement calls made on its stubs (and may fail them). */
function countingEnv(calls: Calls, fail = false): Env {
  const namespace = new Proxy(env.LEDGER, {
    get(target, prop) {
      const value: unknown = Reflect.get(target, prop);
      if (prop !== "getByName" || typeof value !== "function") return typeof value === "function" ? value.bind(target) : value;
      return (name: string) => {
        const stub = target.getByName(name);
        return new Proxy(stub, {
          get(s, method) {
            if (method === "settle") {
              return (input: Parameters<typeof stub.settle>[0]) => {
                calls.settle++;
                return fail ? Promise.reject(new Error("ledger unreachable")) : s.settle(input);
              };
            }
            if (method === "settleBatch") {
              return (inputs: Parameters<typeof stub.settleBatch>[0]) => {
                calls.settleBatch.push(inputs.length);
                return fail ? Promise.reject(new Error("ledger unreachable")) : s.settleBatch(inputs);
              };
            }
            const member: unknown = Reflect.get(s, method);
            // A stub answers any property with an RPC method; `then` must stay undefined-like.
            if (typeof method !== "string" || method === "then" || typeof member !== "function") return member;
            return (...args: unknown[]): unknown => Reflect.apply(member, s, args);
          },
        });
      };
    },
  });
  return { ...env, LEDGER: namespace };
}

async function usageOf(key: string): Promise<number> {
  const res = await call("/api/v1/credits", { headers: { authorization: `Bearer ${key}` } });
  return ((await res.json()) as { data: { total_usage: number } }).data.total_usage;
}

describe("settlement windows through the Worker", () => {
  it("settles concurrent requests of a workspace in shared calls, charging each exactly", async () => {
    const key = await provision("ws-settle-window");
    mswServer.use(recordUpstream().handler);
    const calls: Calls = { settle: 0, settleBatch: [] };
    const testEnv = countingEnv(calls);
    const responses = await Promise.all(Array.from({ length: 8 }, () => fetchWith(testEnv, chatRequest(ORIGIN, key, pinned))));
    expect(responses.map((r) => r.status)).toEqual(Array(8).fill(200));
    const reported = (await Promise.all(responses.map((r) => r.json() as Promise<RouterCompletion>))).map((b) => b.usage?.cost ?? Number.NaN);
    expect(calls.settle).toBe(0);
    expect(calls.settleBatch.reduce((a, b) => a + b, 0)).toBe(8);
    expect(calls.settleBatch.length).toBeLessThan(8);
    const expected = reported.reduce((a, b) => a + b, 0);
    expect(expected).toBeGreaterThan(0);
    expect(await usageOf(key)).toBeCloseTo(expected, 9);
  });

  it("settles each request at once when the workspace limits concurrency, so back-to-back requests find the slot free", async () => {
    const key = await provision("ws-settle-concurrency");
    expect((await admin("/workspaces/ws-settle-concurrency", "PUT", { name: "Test", concurrency: 1 })).status).toBe(200);
    mswServer.use(recordUpstream().handler);
    // Through the runtime's own fetch: the response returns before its background work ends.
    for (let i = 0; i < 5; i++) {
      const res = await chat(key, pinned);
      expect(res.status).toBe(200);
      await res.arrayBuffer();
    }
    const calls: Calls = { settle: 0, settleBatch: [] };
    expect((await fetchWith(countingEnv(calls), chatRequest(ORIGIN, key, pinned))).status).toBe(200);
    expect(calls).toEqual({ settle: 1, settleBatch: [] });
  });

  it("settles each request at once when its hold left little credit, so back-to-back requests can spend it", async () => {
    // $0.809 paid − $0.80 fee = 9,000 µ$. Each request reserves its 8,000 tokens at the dearest
    // candidate's $0.66/M (5,280 µ$) and is charged a few µ$: two holds at once would not fit.
    const key = await provision("ws-settle-tight", "0.809");
    mswServer.use(recordUpstream().handler);
    for (let i = 0; i < 4; i++) {
      const res = await chat(key, { ...pinned, max_tokens: 8_000 });
      expect(res.status).toBe(200);
      await res.arrayBuffer();
    }
  });

  it("keeps the generation record and the reported usage when the ledger cannot settle (JSON and stream)", async () => {
    const key = await provision("ws-settle-down");
    const calls: Calls = { settle: 0, settleBatch: [] };
    const testEnv = countingEnv(calls, true);
    mswServer.use(recordUpstream().handler);
    const json = await fetchWith(testEnv, chatRequest(ORIGIN, key, pinned));
    expect(json.status).toBe(200);
    const body = (await json.json()) as RouterCompletion;
    expect(body.usage?.cost).toBeGreaterThan(0);

    mswServer.use(recordUpstream(okStream).handler);
    const stream = await fetchWith(testEnv, chatRequest(ORIGIN, key, { ...pinned, stream: true }));
    const { chunks, done } = await readSSE(stream);
    expect(done).toBe(true);
    expect(chunks.at(-1)?.usage?.cost).toBeGreaterThan(0);
    expect(calls.settleBatch).toEqual([1, 1]);

    for (const id of [body.id, stream.headers.get("x-generation-id") ?? ""]) {
      const record = await eventually(async () => {
        const res = await call(`/api/v1/generation?id=${id}`, { headers: { authorization: `Bearer ${key}` } });
        return res.status === 200 ? ((await res.json()) as { data: { id: string } }).data : undefined;
      });
      expect(record.id).toBe(id);
    }
  });
});
