import { env } from "cloudflare:workers";
import { delay, http, HttpResponse } from "msw";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { forgetOutlooks } from "../../src/billing/admission-outlook";
import { admin, chat, mswServer, provision, readSSE, sseBody, sseResponse, type RouterCompletion, type RouterError } from "../helpers";

// openai/gpt-4o-mini on OpenAI only: $0.15/M prompt, $0.60/M completion, 16,384 max output, so a
// request without max_tokens reserves about 9,832 µ$ and the floor of 256 tokens about 155 µ$.
const OPENAI = "https://openai.upstream.test/v1/chat/completions";
const only = { model: "openai/gpt-4o-mini", provider: { only: ["openai"] } };
const ask = (content: string, extra: Record<string, unknown> = {}) => ({ ...only, messages: [{ role: "user", content }], ...extra });

beforeAll(() => mswServer.listen({ onUnhandledRequest: "error" }));
beforeEach(() => forgetOutlooks());
afterEach(() => mswServer.resetHandlers());
afterAll(() => mswServer.close());

interface Hit {
  maxTokens: unknown;
  aborted: () => boolean;
}

/** An OpenAI upstream that answers after `ms`, recording each request's max_tokens and abort. */
function slowUpstream(ms: number, stream = false): Hit[] {
  const hits: Hit[] = [];
  mswServer.use(
    http.post(OPENAI, async ({ request }) => {
      const body = (await request.json()) as { max_tokens?: unknown; max_completion_tokens?: unknown };
      hits.push({ maxTokens: body.max_completion_tokens ?? body.max_tokens, aborted: () => request.signal.aborted });
      await delay(ms);
      if (stream) {
        return sseResponse(
          sseBody([
            { choices: [{ index: 0, delta: { role: "assistant", content: "ok" }, finish_reason: null }] },
            { choices: [{ index: 0, delta: {}, finish_reason: "stop" }], usage: { prompt_tokens: 10, completion_tokens: 1, total_tokens: 11 } },
            "[DONE]",
          ]),
        );
      }
      return HttpResponse.json({
        choices: [{ index: 0, message: { role: "assistant", content: "ok" }, finish_reason: "stop" }],
        usage: { prompt_tokens: 10, completion_tokens: 1, total_tokens: 11 },
      });
    }),
  );
  return hits;
}

function ledger(workspace: string) {
  return env.LEDGER.getByName(workspace);
}

/** Leave `micros` of credit in the workspace, through the journal (an adjustment). */
async function leaveCredit(workspace: string, micros: number): Promise<void> {
  const { balanceMicros } = await ledger(workspace).balance();
  await ledger(workspace).adjust(micros - balanceMicros, "test: drain");
}

async function keyId(workspace: string): Promise<string> {
  const row = await env.DB.prepare("SELECT id FROM api_keys WHERE workspace_id = ?").bind(workspace).first<{ id: string }>();
  if (!row) throw new Error("no key");
  return row.id;
}

describe("admission in parallel with the upstream call", () => {
  it("admits first without a view, then in parallel, and charges the same exact amounts", async () => {
    const key = await provision("ws-par-money");
    slowUpstream(5);
    const before = (await ledger("ws-par-money").balance()).balanceMicros;
    const first = await chat(key, ask("one", { max_tokens: 50 }));
    expect(first.status).toBe(200);
    expect(first.headers.get("x-switchyard-admission")).toBe("first");
    const second = await chat(key, ask("two", { max_tokens: 50 }));
    expect(second.status).toBe(200);
    expect(second.headers.get("x-switchyard-admission")).toBe("parallel");
    const charged = ((await first.json()) as RouterCompletion).usage.cost + ((await second.json()) as RouterCompletion).usage.cost;
    await expect.poll(async () => (await ledger("ws-par-money").balance()).heldMicros).toBe(0);
    const after = await ledger("ws-par-money").balance();
    expect(before - after.balanceMicros).toBe(Math.round(charged * 1_000_000));
    expect(charged).toBeGreaterThan(0);
  });

  it("answers a key revoked in the ledger with 401 and aborts the upstream call it started", async () => {
    const key = await provision("ws-par-revoked");
    const hits = slowUpstream(300);
    expect((await chat(key, ask("warm", { max_tokens: 50 }))).status).toBe(200);
    const id = await keyId("ws-par-revoked");
    const before = await ledger("ws-par-revoked").balance();
    // Revoked at the ledger only: this isolate's key cache still says the key is fine.
    await ledger("ws-par-revoked").setKey({ id, disabled: true, expiresAt: null, limitMicros: null, limitReset: null, includeByokInLimit: false, limits: { rpm: null, tpm: null, concurrency: null } });
    const started = Date.now();
    const res = await chat(key, ask("after revocation", { max_tokens: 50 }));
    expect(res.status).toBe(401);
    expect(((await res.json()) as RouterError).error.message).toBe("This API key is disabled");
    // The refusal did not wait for the 300 ms upstream, and the upstream call that had started was aborted.
    expect(Date.now() - started).toBeLessThan(250);
    expect(hits).toHaveLength(2);
    await expect.poll(() => hits[1]!.aborted()).toBe(true);
    const after = await ledger("ws-par-revoked").balance();
    expect(after).toEqual(before);
  });

  for (const stream of [false, true]) {
    it(`refuses with 402 when the balance fell below the floor since the last view (stream: ${stream})`, async () => {
      const ws = `ws-par-402-${stream}`;
      const key = await provision(ws);
      slowUpstream(100, stream);
      const warm = await chat(key, ask("warm", { stream }));
      await warm.text();
      expect(warm.headers.get("x-switchyard-admission")).toBe("first");
      await expect.poll(async () => (await ledger(ws).balance()).heldMicros).toBe(0);
      await leaveCredit(ws, 100);
      const res = await chat(key, ask("now broke", { stream }));
      expect(res.status).toBe(402);
      expect(((await res.json()) as RouterError).error.message).toContain("can only afford");
      const { balanceMicros, heldMicros } = await ledger(ws).balance();
      expect({ balanceMicros, heldMicros }).toEqual({ balanceMicros: 100, heldMicros: 0 });
      // The next request knows the view is gone and admits first.
      const again = await chat(key, ask("still broke", { stream }));
      expect(again.status).toBe(402);
    });

    it(`re-sends the request capped when admission capped it after the upstream call started (stream: ${stream})`, async () => {
      const ws = `ws-par-cap-${stream}`;
      const key = await provision(ws);
      const hits = slowUpstream(50, stream);
      const warm = await chat(key, ask("warm", { stream }));
      await warm.text();
      await expect.poll(async () => (await ledger(ws).balance()).heldMicros).toBe(0);
      await leaveCredit(ws, 5_000);
      const res = await chat(key, ask("capped now", { stream }));
      expect(res.status).toBe(200);
      expect(res.headers.get("x-switchyard-admission")).toBe("parallel");
      const cap = Number(res.headers.get("x-switchyard-max-tokens"));
      // (5,000 − 1) µ$ ÷ 0.6 µ$ per token.
      expect(cap).toBe(8_331);
      if (stream) expect((await readSSE(res)).done).toBe(true);
      else expect(((await res.json()) as RouterCompletion).choices[0]?.message.content).toBe("ok");
      // The uncapped call was aborted and the capped one answered.
      expect(hits.map((h) => h.maxTokens)).toEqual([undefined, undefined, cap]);
      expect(hits[1]!.aborted()).toBe(true);
      await expect.poll(async () => (await ledger(ws).balance()).heldMicros).toBe(0);
      expect((await ledger(ws).balance()).balanceMicros).toBe(5_000 - 2);
    });
  }

  it("admits first when a rate limit is more than half used", async () => {
    const key = await provision("ws-par-rpm");
    expect((await admin("/workspaces/ws-par-rpm", "PUT", { name: "Test", rpm: 4 })).status).toBe(200);
    slowUpstream(1);
    const admissions: (string | null)[] = [];
    for (const content of ["a", "b", "c", "d"]) {
      const res = await chat(key, ask(content, { max_tokens: 10 }));
      expect(res.status).toBe(200);
      admissions.push(res.headers.get("x-switchyard-admission"));
    }
    // Half of 4 used leaves room (parallel); three used is more than half (admission first).
    expect(admissions).toEqual(["first", "parallel", "parallel", "first"]);
  });
});
