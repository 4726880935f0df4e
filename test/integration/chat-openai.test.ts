import { http, HttpResponse } from "msw";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { chat, mswServer, provision, readSSE, sseBody, sseResponse, type RouterCompletion } from "../helpers";

const OPENAI = "https://openai.upstream.test/v1/chat/completions";

let key: string;
beforeAll(async () => {
  mswServer.listen({ onUnhandledRequest: "error" });
  key = await provision();
});
afterEach(() => mswServer.resetHandlers());
afterAll(() => mswServer.close());

const completion = {
  id: "chatcmpl-1",
  object: "chat.completion",
  created: 1,
  model: "gpt-4o-mini",
  choices: [{ index: 0, message: { role: "assistant", content: "Hello!" }, finish_reason: "stop" }],
  usage: { prompt_tokens: 1000, completion_tokens: 500, total_tokens: 1500, prompt_tokens_details: { cached_tokens: 400 } },
};

describe("chat completions through an OpenAI-compatible upstream", () => {
  it("answers in OpenRouter's shape with exact cost", async () => {
    let sent: Record<string, unknown> = {};
    let auth = "";
    mswServer.use(
      http.post(OPENAI, async ({ request }) => {
        sent = (await request.json()) as Record<string, unknown>;
        auth = request.headers.get("authorization") ?? "";
        return HttpResponse.json(completion);
      }),
    );
    const res = await chat(key, {
      model: "openai/gpt-4o-mini",
      messages: [{ role: "user", content: "Hi" }],
      provider: { order: ["openai"] },
      logit_bias: { "50256": -100 },
      session_id: "s1",
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as RouterCompletion;
    expect(body.id).toMatch(/^gen-/);
    expect(res.headers.get("x-generation-id")).toBe(body.id);
    expect(body.model).toBe("openai/gpt-4o-mini");
    expect(body.provider).toBe("OpenAI");
    expect(body.choices[0]!.message.content).toBe("Hello!");
    expect(body.choices[0]!.finish_reason).toBe("stop");
    expect(body.choices[0]!.native_finish_reason).toBe("stop");
    // 600 × $0.15/M + 400 × $0.075/M + 500 × $0.60/M = 90 + 30 + 300 µ$
    expect(body.usage.cost).toBe(0.00042);
    expect(body.usage.prompt_tokens_details.cached_tokens).toBe(400);
    // Unknown fields pass through; gateway-only fields do not; the upstream model id is used.
    expect(sent.logit_bias).toEqual({ "50256": -100 });
    expect(sent.model).toBe("gpt-4o-mini");
    expect(sent).not.toHaveProperty("provider");
    expect(sent).not.toHaveProperty("session_id");
    expect(auth).toBe("Bearer test-openai-key");
  });

  it("streams role first, content, one finish, one usage chunk, then [DONE]", async () => {
    mswServer.use(
      http.post(OPENAI, () =>
        sseResponse(
          sseBody([
            { choices: [{ index: 0, delta: { role: "assistant", content: "" } }] },
            { choices: [{ index: 0, delta: { content: "Hel" } }] },
            { choices: [{ index: 0, delta: { content: "lo" } }] },
            { choices: [{ index: 0, delta: {}, finish_reason: "stop" }] },
            { choices: [], usage: { prompt_tokens: 10, completion_tokens: 2, total_tokens: 12 } },
            "[DONE]",
          ]),
        ),
      ),
    );
    const res = await chat(key, { model: "openai/gpt-4o-mini", messages: [{ role: "user", content: "Hi" }], stream: true, provider: { order: ["openai"] } });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/event-stream");
    const { chunks, done, comments } = await readSSE(res);
    expect(done).toBe(true);
    expect(comments).toBeGreaterThanOrEqual(1);
    const deltas = chunks.map((c) => c.choices[0]?.delta);
    expect(deltas[0]).toEqual({ role: "assistant", content: "" });
    expect(deltas.map((d) => d?.content ?? "").join("")).toBe("Hello");
    const finishes = chunks.filter((c) => c.choices[0]?.finish_reason);
    expect(finishes).toHaveLength(1);
    const usage = chunks.filter((c) => c.usage);
    expect(usage).toHaveLength(1);
    expect(usage[0]!.choices).toEqual([]);
    expect(chunks.indexOf(usage[0]!)).toBe(chunks.length - 1);
    // 10 × $0.15/M + 2 × $0.60/M = 2.7 µ$, rounded once to 3 µ$
    expect(usage[0]!.usage!.cost).toBe(0.000003);
  });
});
