/// <reference types="vite/client" />
import { http, HttpResponse } from "msw";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import anthropicStream from "../fixtures/anthropic/stream-text-tools.sse?raw";
import anthropicThinking from "../fixtures/anthropic/response-thinking-tools.json";
import geminiStream from "../fixtures/gemini/stream-tool-calls.sse?raw";
import geminiText from "../fixtures/gemini/text.json";
import { chat, mswServer, provision, readSSE, sseResponse, type RouterCompletion, type RouterToolCall } from "../helpers";

const ANTHROPIC = "https://anthropic.upstream.test/v1/messages";
const GEMINI = "https://gemini.upstream.test/v1beta/models/:call";

let key: string;
beforeAll(async () => {
  mswServer.listen({ onUnhandledRequest: "error" });
  // Equal-price endpoints (e.g. Gemini 2.5 Flash) in a fixed order instead of load balanced.
  key = await provision("ws-families", "100", { sort: "price" });
});
afterEach(() => mswServer.resetHandlers());
afterAll(() => mswServer.close());

const weatherTool = {
  type: "function",
  function: { name: "get_weather", parameters: { type: "object", properties: { location: { type: "string" } }, required: ["location"] } },
};

/** Join streamed tool-call deltas by index, as OpenAI clients do. */
function assembleToolCalls(deltas: RouterToolCall[]): Array<{ id: string; name: string; arguments: string }> {
  const calls: Array<{ id: string; name: string; arguments: string }> = [];
  for (const d of deltas) {
    const i = d.index ?? 0;
    calls[i] ??= { id: "", name: "", arguments: "" };
    if (d.id) calls[i]!.id = d.id;
    if (d.function.name) calls[i]!.name = d.function.name;
    calls[i]!.arguments += d.function.arguments ?? "";
  }
  return calls;
}

describe("Anthropic upstream behind the OpenAI shape", () => {
  it("translates a thinking + parallel tool-use answer with reasoning and exact cost", async () => {
    let sent: Record<string, unknown> = {};
    mswServer.use(
      http.post(ANTHROPIC, async ({ request }) => {
        sent = (await request.json()) as Record<string, unknown>;
        expect(request.headers.get("x-api-key")).toBe("test-anthropic-key");
        return HttpResponse.json(anthropicThinking);
      }),
    );
    const res = await chat(key, {
      model: "anthropic/claude-haiku-4.5",
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: "Weather in Paris and Tokyo?" },
      ],
      tools: [weatherTool],
      reasoning: { max_tokens: 2048 },
      max_tokens: 4096,
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as RouterCompletion;
    expect(sent.model).toBe("claude-haiku-4-5");
    expect(sent.system).toEqual([{ type: "text", text: "Be brief." }]);
    expect(sent.thinking).toEqual({ type: "enabled", budget_tokens: 2048 });
    const choice = body.choices[0]!;
    expect(body.provider).toBe("Anthropic");
    expect(choice.finish_reason).toBe("tool_calls");
    expect(choice.native_finish_reason).toBe("tool_use");
    expect(choice.message.content).toBe("I'll check both cities.");
    expect(choice.message.reasoning).toContain("two cities");
    expect(choice.message.tool_calls?.map((t) => JSON.parse(t.function.arguments ?? ""))).toEqual([
      { location: "Paris, France", unit: "celsius" },
      { location: "Tōkyō, Japan", unit: "celsius" },
    ]);
    // 412 × $1/M + 187 × $5/M = 412 + 935 µ$
    expect(body.usage.prompt_tokens).toBe(412);
    expect(body.usage.completion_tokens).toBe(187);
    expect(body.usage.cost).toBe(0.001347);
  });

  it("streams text and two tool calls with their own indexes, cache reads priced apart", async () => {
    mswServer.use(http.post(ANTHROPIC, () => sseResponse(anthropicStream)));
    const res = await chat(key, {
      model: "anthropic/claude-haiku-4.5",
      messages: [{ role: "user", content: "Weather in Paris and Tokyo?" }],
      tools: [weatherTool],
      stream: true,
    });
    const { chunks, done } = await readSSE(res);
    expect(done).toBe(true);
    expect(chunks[0]!.choices[0]!.delta).toEqual({ role: "assistant", content: "" });
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? "").join("")).toBe("Je vérifie la météo à Paris et à Tōkyō — un instant 🌦️.");
    const calls = assembleToolCalls(chunks.flatMap((c) => c.choices[0]?.delta.tool_calls ?? []));
    expect(calls).toEqual([
      { id: "toolu_01T1x1fJ34qAmk2tNTrN7Up6", name: "get_weather", arguments: '{"location": "Paris, France", "unit": "celsius"}' },
      { id: "toolu_01Ux8bKz3mNqRw5LcYv2HdJf", name: "get_weather", arguments: '{"location": "Tōkyō, Japan", "unit": "celsius"}' },
    ]);
    expect(chunks.filter((c) => c.choices[0]?.finish_reason).map((c) => c.choices[0]!.finish_reason)).toEqual(["tool_calls"]);
    const usage = chunks.filter((c) => c.usage).map((c) => c.usage!);
    expect(usage).toHaveLength(1);
    expect(usage[0]!.prompt_tokens).toBe(2520);
    expect(usage[0]!.prompt_tokens_details.cached_tokens).toBe(2048);
    expect(usage[0]!.completion_tokens).toBe(118);
    // 472 × $1/M + 2048 × $0.10/M + 118 × $5/M = 472 + 204.8 + 590 = 1266.8 → 1267 µ$
    expect(usage[0]!.cost).toBe(0.001267);
  });
});

describe("Gemini upstream behind the OpenAI shape", () => {
  it("translates a text answer", async () => {
    let url = "";
    mswServer.use(
      http.post(GEMINI, ({ request }) => {
        url = request.url;
        expect(request.headers.get("x-goog-api-key")).toBe("test-gemini-key");
        return HttpResponse.json(geminiText);
      }),
    );
    const res = await chat(key, { model: "google/gemini-2.5-flash", messages: [{ role: "user", content: "Hello" }] });
    expect(res.status).toBe(200);
    const body = (await res.json()) as RouterCompletion;
    expect(url).toBe("https://gemini.upstream.test/v1beta/models/gemini-2.5-flash:generateContent");
    expect(body.provider).toBe("Google AI Studio");
    expect(body.choices[0]!.finish_reason).toBe("stop");
    expect(body.choices[0]!.message.content?.length).toBeGreaterThan(0);
    expect(body.usage.total_tokens).toBe(body.usage.prompt_tokens + body.usage.completion_tokens);
  });

  it("streams thoughts, text and two function calls, thoughts billed as reasoning", async () => {
    let url = "";
    mswServer.use(
      http.post(GEMINI, ({ request }) => {
        url = request.url;
        return sseResponse(geminiStream);
      }),
    );
    const res = await chat(key, {
      model: "google/gemini-2.5-flash",
      messages: [{ role: "user", content: "Weather in Paris and São Paulo?" }],
      tools: [weatherTool],
      stream: true,
    });
    const { chunks, done } = await readSSE(res);
    expect(url).toBe("https://gemini.upstream.test/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse");
    expect(done).toBe(true);
    expect(chunks.map((c) => c.choices[0]?.delta.reasoning ?? "").join("")).toContain("Planning the lookups");
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? "").join("")).toBe("Let me check both cities — one moment.");
    const calls = assembleToolCalls(chunks.flatMap((c) => c.choices[0]?.delta.tool_calls ?? []));
    expect(calls.map((c) => [c.name, JSON.parse(c.arguments)])).toEqual([
      ["get_weather", { city: "Paris", unit: "celsius" }],
      ["get_weather", { city: "São Paulo", unit: "celsius" }],
    ]);
    expect(new Set(calls.map((c) => c.id)).size).toBe(2);
    expect(chunks.filter((c) => c.choices[0]?.finish_reason).map((c) => c.choices[0]!.finish_reason)).toEqual(["tool_calls"]);
    const usage = chunks.filter((c) => c.usage).map((c) => c.usage!);
    expect(usage).toHaveLength(1);
    expect(usage[0]!.completion_tokens).toBe(106);
    expect(usage[0]!.completion_tokens_details.reasoning_tokens).toBe(60);
    // 118 × $0.30/M + 106 × $2.50/M = 35.4 + 265 = 300.4 → 300 µ$
    expect(usage[0]!.cost).toBe(0.0003);
  });
});
