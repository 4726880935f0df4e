/**
 * The mock provider on its own: the deterministic answers and faults the other end-to-end tests
 * and the benchmarks rely on, in each family's wire format.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { startMockProvider, type MockProvider } from "../../tools/mock-provider/server.mjs";

let mock: MockProvider;
beforeAll(async () => {
  mock = await startMockProvider({ port: 0 });
});
afterAll(() => mock.close());
beforeEach(async () => {
  await fetch(`${mock.url}/__mock`, { method: "DELETE" });
});

const post = (path: string, body: unknown, headers: Record<string, string> = { authorization: "Bearer k" }) =>
  fetch(`${mock.url}${path}`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) });

/** SSE events as `{event, data}`, whatever the line endings. */
async function events(res: Response) {
  const text = await res.text();
  return text
    .split(/\r?\n\r?\n/)
    .filter(Boolean)
    .map((block) => {
      const event = /^event: (.*)$/m.exec(block)?.[1];
      const data = /^data: (.*)$/m.exec(block)?.[1] ?? "";
      return { event, data: data === "[DONE]" ? data : JSON.parse(data) };
    });
}

const weather = { type: "object", properties: { location: { type: "string" }, days: { type: "integer" } }, required: ["location", "days"] };

describe("OpenAI chat completions", () => {
  it("echoes the last user message and counts tokens", async () => {
    const res = await post("/openai/v1/chat/completions", {
      model: "gpt-4o-mini",
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: "Hello there" },
      ],
    });
    const body = await res.json();

    expect(body.model).toBe("gpt-4o-mini");
    expect(body.choices[0]).toMatchObject({ message: { role: "assistant", content: "Mock reply to: Hello there" }, finish_reason: "stop" });
    expect(body.usage).toMatchObject({ prompt_tokens: 5, completion_tokens: 5, total_tokens: 10, prompt_tokens_details: { cached_tokens: 0 } });
  });

  it("serves Azure deployment paths with the api-key header", async () => {
    const res = await post("/azure/openai/deployments/my-gpt/chat/completions?api-version=2024-10-21", { messages: [{ role: "user", content: "Hi" }] }, { "api-key": "k" });

    expect((await res.json()).model).toBe("my-gpt");
  });

  it("refuses a request without a key in OpenAI's error shape", async () => {
    const res = await post("/openai/v1/chat/completions", { messages: [] }, {});

    expect(res.status).toBe(401);
    expect((await res.json()).error).toMatchObject({ type: "invalid_request_error", code: "invalid_api_key" });
  });

  it("streams parallel tool calls with indexed deltas and a usage chunk", async () => {
    const res = await post("/openai/v1/chat/completions", {
      model: "m",
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: "user", content: "Weather?" }],
      tools: ["a", "b", "c"].map((name) => ({ type: "function", function: { name, parameters: weather } })),
    });
    const all = await events(res);
    const chunks = all.slice(0, -1).map((e) => e.data);

    expect(chunks[0].choices[0].delta.role).toBe("assistant");
    const calls = new Map<number, string>();
    for (const chunk of chunks) for (const call of chunk.choices[0]?.delta.tool_calls ?? []) calls.set(call.index, (calls.get(call.index) ?? "") + call.function.arguments);
    expect([...calls.values()].map((args) => JSON.parse(args))).toEqual([
      { location: "Paris", days: 1 },
      { location: "Paris", days: 1 },
    ]);
    expect(chunks.at(-2).choices[0].finish_reason).toBe("tool_calls");
    expect(chunks.at(-1)).toMatchObject({ choices: [], usage: { prompt_tokens: 2 } });
    expect(all.at(-1)!.data).toBe("[DONE]");
  });

  it("answers from the tool results once the last message is a tool message", async () => {
    const res = await post("/openai/v1/chat/completions", {
      messages: [
        { role: "user", content: "Weather?" },
        { role: "assistant", tool_calls: [{ id: "call_mock_0", type: "function", function: { name: "a", arguments: "{}" } }] },
        { role: "tool", tool_call_id: "call_mock_0", content: "sunny" },
      ],
      tools: [{ type: "function", function: { name: "a", parameters: weather } }],
    });

    expect((await res.json()).choices[0].message.content).toBe("Mock answer using tool result: sunny");
  });

  it("emits exactly N words and stops at max_tokens with finish_reason length", async () => {
    const words = await (await post("/openai/v1/chat/completions", { messages: [{ role: "user", content: "[[words:1000]]" }] })).json();
    const capped = await (await post("/openai/v1/chat/completions", { max_completion_tokens: 2, messages: [{ role: "user", content: "Hi there" }] })).json();

    expect(words.choices[0].message.content.split(" ")).toHaveLength(1000);
    expect(words.usage.completion_tokens).toBe(1000);
    expect(capped.choices[0]).toMatchObject({ message: { content: "Mock reply" }, finish_reason: "length" });
  });
});

describe("Anthropic Messages", () => {
  it("answers with a signed thinking block first when thinking is enabled", async () => {
    const res = await post("/anthropic/v1/messages", {
      model: "claude",
      max_tokens: 100,
      thinking: { type: "enabled", budget_tokens: 1024 },
      messages: [{ role: "user", content: "Hi" }],
    }, { "x-api-key": "k" });
    const body = await res.json();

    expect(body.content).toEqual([
      { type: "thinking", thinking: "Mock thinking.", signature: "mock-signature" },
      { type: "text", text: "Mock reply to: Hi" },
    ]);
    expect(body).toMatchObject({ stop_reason: "end_turn", usage: { input_tokens: 1, output_tokens: 6, cache_read_input_tokens: 0 } });
  });

  it("streams tool_use blocks on Vertex's streamRawPredict with Anthropic's event names", async () => {
    const res = await post("/vertex/v1/projects/p/locations/l/publishers/anthropic/models/claude@1:streamRawPredict", {
      anthropic_version: "vertex-2023-10-16",
      max_tokens: 100,
      messages: [{ role: "user", content: "Weather?" }],
      tools: [{ name: "get_weather", input_schema: weather }],
    });
    const all = await events(res);

    expect(all.map((e) => e.event)).toEqual([
      "message_start",
      "ping",
      "content_block_start",
      "content_block_delta",
      "content_block_delta",
      "content_block_stop",
      "message_delta",
      "message_stop",
    ]);
    expect(all[0]!.data.message.model).toBe("claude@1");
    expect(all[2]!.data.content_block).toMatchObject({ type: "tool_use", id: "toolu_mock_0", name: "get_weather" });
    expect(JSON.parse(all[3]!.data.delta.partial_json + all[4]!.data.delta.partial_json)).toEqual({ location: "Paris", days: 1 });
    expect(all[6]!.data).toMatchObject({ delta: { stop_reason: "tool_use" }, usage: { output_tokens: 8 } }); // ceil(29 characters of arguments / 4)
  });

  it("reports a 503 as overloaded_error", async () => {
    const res = await post("/anthropic/v1/messages", { max_tokens: 5, messages: [{ role: "user", content: "[[fault:503]]" }] }, { "x-api-key": "k" });

    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ type: "error", error: { type: "overloaded_error", message: "Mock fault: HTTP 503" } });
  });
});

describe("Gemini generateContent", () => {
  it("streams SSE with CRLF separators and usage on the last event", async () => {
    const res = await post("/gemini/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", { contents: [{ role: "user", parts: [{ text: "Hello there friend" }] }] }, { "x-goog-api-key": "k" });
    const raw = await res.clone().text();
    const all = await events(res);

    expect(raw).toContain("\r\n\r\n");
    expect(all.map((e) => e.data.candidates[0].content.parts[0].text).join("")).toBe("Mock reply to: Hello there friend");
    expect(all.at(-1)!.data.candidates[0].finishReason).toBe("STOP");
    expect(all.at(-1)!.data.usageMetadata).toEqual({ promptTokenCount: 5, candidatesTokenCount: 6, totalTokenCount: 11 });
  });

  it("streams a JSON array without alt=sse and calls functions with args objects", async () => {
    const res = await post("/gemini/v1beta/models/g:streamGenerateContent?key=k", {
      contents: [{ role: "user", parts: [{ text: "Weather?" }] }],
      tools: [{ functionDeclarations: [{ name: "get_weather", parameters: { type: "OBJECT", properties: { location: { type: "STRING" } }, required: ["location"] } }] }],
    }, {});
    const body = await res.json();

    expect(body[0].candidates[0].content.parts).toEqual([{ functionCall: { name: "get_weather", args: { location: "Paris" } } }]);
  });

  it("stops at maxOutputTokens with MAX_TOKENS and answers errors in Google's shape", async () => {
    const capped = await (await post("/gemini/v1beta/models/g:generateContent", { contents: [{ parts: [{ text: "Hi" }] }], generationConfig: { maxOutputTokens: 1 } })).json();
    const limited = await post("/gemini/v1beta/models/g:generateContent", { contents: [{ parts: [{ text: "[[fault:429]]" }] }] });

    expect(capped.candidates[0]).toMatchObject({ content: { parts: [{ text: "Mock" }] }, finishReason: "MAX_TOKENS" });
    expect(limited.status).toBe(429);
    expect(limited.headers.get("retry-after")).toBe("1");
    expect(await limited.json()).toEqual({ error: { code: 429, message: "Mock fault: HTTP 429", status: "RESOURCE_EXHAUSTED" } });
  });
});

describe("control API", () => {
  const chat = { messages: [{ role: "user", content: "Hi" }] };

  it("applies a fault to the next `count` requests under a prefix and counts hits per prefix", async () => {
    const armed = await fetch(`${mock.url}/__mock/faults`, { method: "POST", body: JSON.stringify({ prefix: "/groq", fault: "500", count: 2 }) });
    expect(armed.status).toBe(201);

    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await post("/groq/v1/chat/completions", chat)).status);
    await post("/together/v1/chat/completions", chat);

    expect(statuses).toEqual([500, 500, 200]);
    expect(await (await fetch(`${mock.url}/__mock/hits`)).json()).toEqual({ "/groq": 3, "/together": 1 });
  });

  it("keeps a fault without count until the faults are cleared", async () => {
    await fetch(`${mock.url}/__mock/faults`, { method: "POST", body: JSON.stringify({ prefix: "/x", fault: "malformed" }) });
    const broken = [await (await post("/x/v1/chat/completions", chat)).text(), await (await post("/x/v1/chat/completions", chat)).text()];
    await fetch(`${mock.url}/__mock/faults`, { method: "DELETE" });

    for (const body of broken) expect(() => JSON.parse(body)).toThrow();
    expect((await post("/x/v1/chat/completions", chat)).status).toBe(200);
  });

  it("rejects an unknown fault", async () => {
    const res = await fetch(`${mock.url}/__mock/faults`, { method: "POST", body: JSON.stringify({ prefix: "/x", fault: "explode" }) });

    expect(res.status).toBe(400);
  });

  it("resets, hangs and cuts streams on request", async () => {
    const reset = await post("/openai/v1/chat/completions", { messages: [{ role: "user", content: "[[fault:reset]]" }] }).catch((e: unknown) => e);
    const hang = await fetch(`${mock.url}/openai/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: "Bearer k" },
      body: JSON.stringify({ messages: [{ role: "user", content: "[[fault:hang]]" }] }),
      signal: AbortSignal.timeout(200),
    }).catch((e: unknown) => e);
    const cut = await post("/openai/v1/chat/completions", { stream: true, messages: [{ role: "user", content: "a b c d [[fault:midstream]]" }] });
    const cutBody = await cut.text().catch((e: unknown) => e);

    expect(reset).toBeInstanceOf(TypeError);
    expect((hang as Error).name).toBe("TimeoutError");
    expect(cut.status).toBe(200);
    expect(cutBody).toBeInstanceOf(TypeError);
  });
});
