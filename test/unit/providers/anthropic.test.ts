/// <reference types="vite/client" />
import { describe, expect, it } from "vitest";
import { anthropic } from "../../../src/providers/anthropic";
import type { SSEMessage } from "../../../src/providers/sse";
import type { StreamEvent, UpstreamTarget } from "../../../src/providers/types";
import { chatRequestSchema } from "../../../src/schemas/openai";
import errorAuthentication from "../../fixtures/anthropic/error-authentication.json?raw";
import errorContextLimit from "../../fixtures/anthropic/error-context-limit.json?raw";
import errorOverloaded from "../../fixtures/anthropic/error-overloaded.json?raw";
import errorPromptTooLong from "../../fixtures/anthropic/error-prompt-too-long.json?raw";
import responseText from "../../fixtures/anthropic/response-text.json";
import responseThinkingTools from "../../fixtures/anthropic/response-thinking-tools.json";
import streamError from "../../fixtures/anthropic/stream-error.sse?raw";
import streamTextTools from "../../fixtures/anthropic/stream-text-tools.sse?raw";
import streamThinking from "../../fixtures/anthropic/stream-thinking.sse?raw";
import { accumulate, caught, decodeText, describeSplitDecoding } from "./harness";

const MODEL = "claude-sonnet-4-5-20250929";
const USER_HI = { role: "user", content: "Hi" } as const;

function target(overrides: Partial<UpstreamTarget> = {}): UpstreamTarget {
  return {
    family: "anthropic",
    baseUrl: "https://api.anthropic.com/v1/",
    apiKey: "sk-ant-test-key",
    model: MODEL,
    maxOutputTokens: 64000,
    options: {},
    ...overrides,
  };
}

/** Requests go through the gateway's own schema, exactly as the route hands them to adapters. */
function build(request: Record<string, unknown>, upstream: UpstreamTarget = target(), stream = false) {
  const built = anthropic.buildRequest(chatRequestSchema.parse({ model: "anthropic/claude-sonnet-4.5", ...request }), upstream, stream);
  const body: unknown = JSON.parse(built.body);
  return { url: built.url, headers: built.headers, body };
}

/** The wire body, for assertions on single fields. */
function bodyOf(request: Record<string, unknown>, upstream?: UpstreamTarget): Record<string, unknown> {
  const { body } = build(request, upstream);
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw new Error("body is not an object");
  return Object.fromEntries(Object.entries(body));
}

const decodeSSE = (text: string): Promise<StreamEvent[]> => decodeText(anthropic, text);

function sse(type: string, data: Record<string, unknown>): SSEMessage {
  return { event: type, data: JSON.stringify({ type, ...data }), id: undefined };
}

describe("anthropic.buildRequest", () => {
  describe("endpoint and headers", () => {
    it("posts to /messages with x-api-key and the default anthropic-version", () => {
      const { url, headers } = build({ messages: [USER_HI] });
      expect(url).toBe("https://api.anthropic.com/v1/messages");
      expect(headers).toEqual({
        "content-type": "application/json",
        "anthropic-version": "2023-06-01",
        "x-api-key": "sk-ant-test-key",
      });
    });

    it("sends a bearer token when the catalog asks for it and lets catalog headers override anthropic-version", () => {
      const { headers } = build(
        { messages: [USER_HI] },
        target({
          options: {
            auth: "bearer",
            headers: { "Anthropic-Version": "2024-10-22", "anthropic-beta": "context-1m-2025-08-07", "x-switchyard-dialect": "x" },
          },
        }),
      );
      expect(headers).toEqual({
        "content-type": "application/json",
        "anthropic-version": "2024-10-22",
        "anthropic-beta": "context-1m-2025-08-07",
        authorization: "Bearer sk-ant-test-key",
      });
    });
  });

  describe("Vertex AI", () => {
    const vertex = target({
      baseUrl: "https://us-east5-aiplatform.googleapis.com/v1/projects/acme/locations/us-east5/publishers/anthropic/",
      model: "claude-sonnet-4-5@20250929",
      apiKey: "ya29.vertex-access-token",
      options: { vertex: true, headers: { "anthropic-version": "2023-06-01", "anthropic-beta": "token-efficient-tools-2025-02-19" } },
    });

    it("calls rawPredict with the model in the path and anthropic_version in the body instead of model", () => {
      const { url, headers, body } = build({ messages: [USER_HI], max_tokens: 100 }, vertex);
      expect(url).toBe(
        "https://us-east5-aiplatform.googleapis.com/v1/projects/acme/locations/us-east5/publishers/anthropic/models/claude-sonnet-4-5@20250929:rawPredict",
      );
      expect(body).toEqual({
        anthropic_version: "vertex-2023-10-16",
        max_tokens: 100,
        messages: [{ role: "user", content: [{ type: "text", text: "Hi" }] }],
      });
      expect(headers).toEqual({
        "content-type": "application/json",
        "anthropic-beta": "token-efficient-tools-2025-02-19",
        authorization: "Bearer ya29.vertex-access-token",
      });
    });

    it("calls streamRawPredict when streaming", () => {
      const { url, body } = build({ messages: [USER_HI], max_tokens: 100 }, vertex, true);
      expect(url).toMatch(/\/models\/claude-sonnet-4-5@20250929:streamRawPredict$/);
      expect(body).toEqual({
        anthropic_version: "vertex-2023-10-16",
        max_tokens: 100,
        messages: [{ role: "user", content: [{ type: "text", text: "Hi" }] }],
        stream: true,
      });
    });
  });

  it("forwards only fields Anthropic knows", () => {
    const body = bodyOf({
      messages: [{ role: "user", content: "Hi", name: "alice" }],
      max_tokens: 256,
      temperature: 0.3,
      top_p: 0.9,
      top_k: 40,
      frequency_penalty: 0.5,
      presence_penalty: 0.1,
      seed: 7,
      n: 1,
      logit_bias: { "50256": -100 },
      logprobs: true,
      stream_options: { include_usage: true },
      provider: { order: ["anthropic"] },
      transforms: ["middle-out"],
      session_id: "s-1",
      usage: { include: true },
      service_tier: "auto",
      made_up_field: { nested: true },
    });
    expect(body).toEqual({
      model: MODEL,
      max_tokens: 256,
      messages: [{ role: "user", content: [{ type: "text", text: "Hi" }] }],
      temperature: 0.3,
      top_p: 0.9,
      top_k: 40,
    });
  });

  it("sets stream only for streaming requests", () => {
    expect(build({ messages: [USER_HI] }, target(), true).body).toMatchObject({ stream: true });
    expect(bodyOf({ messages: [USER_HI], stream: true })).not.toHaveProperty("stream");
  });

  it.each([
    { name: "max_completion_tokens first", request: { max_completion_tokens: 300, max_tokens: 200 }, maxOutput: 64000, expected: 300 },
    { name: "then max_tokens", request: { max_tokens: 200 }, maxOutput: 64000, expected: 200 },
    { name: "then the endpoint's output cap", request: {}, maxOutput: 8192, expected: 8192 },
    { name: "then 4096", request: {}, maxOutput: null, expected: 4096 },
  ])("always sends max_tokens: $name", ({ request, maxOutput, expected }) => {
    expect(bodyOf({ messages: [USER_HI], ...request }, target({ maxOutputTokens: maxOutput })).max_tokens).toBe(expected);
  });

  it("maps stop to stop_sequences and user to metadata.user_id", () => {
    expect(bodyOf({ messages: [USER_HI], stop: "END", user: "user-42" })).toMatchObject({
      stop_sequences: ["END"],
      metadata: { user_id: "user-42" },
    });
    expect(bodyOf({ messages: [USER_HI], stop: ["\n\nHuman:", "###"] }).stop_sequences).toEqual(["\n\nHuman:", "###"]);
    expect(bodyOf({ messages: [USER_HI], stop: [] })).not.toHaveProperty("stop_sequences");
  });

  describe("messages", () => {
    it("moves system and developer messages, wherever they are, into the top-level system with cache_control kept", () => {
      const body = bodyOf({
        messages: [
          { role: "system", content: "You are terse." },
          {
            role: "developer",
            content: [
              { type: "text", text: "Long reference document…", cache_control: { type: "ephemeral", ttl: "1h" } },
              { type: "text", text: "" },
            ],
          },
          USER_HI,
          { role: "system", content: "Answer in French." },
          { role: "assistant", content: "Bonjour." },
        ],
      });
      expect(body.system).toEqual([
        { type: "text", text: "You are terse." },
        { type: "text", text: "Long reference document…", cache_control: { type: "ephemeral", ttl: "1h" } },
        { type: "text", text: "Answer in French." },
      ]);
      expect(body.messages).toEqual([
        { role: "user", content: [{ type: "text", text: "Hi" }] },
        { role: "assistant", content: [{ type: "text", text: "Bonjour." }] },
      ]);
    });

    it("merges consecutive messages of one role so turns alternate", () => {
      const body = bodyOf({
        messages: [
          { role: "user", content: "First." },
          { role: "user", content: [{ type: "text", text: "Second." }] },
          { role: "assistant", content: "A." },
          { role: "assistant", content: "B." },
          { role: "user", content: "Third." },
        ],
      });
      expect(body.messages).toEqual([
        { role: "user", content: [{ type: "text", text: "First." }, { type: "text", text: "Second." }] },
        { role: "assistant", content: [{ type: "text", text: "A." }, { type: "text", text: "B." }] },
        { role: "user", content: [{ type: "text", text: "Third." }] },
      ]);
    });

    it("translates base64 data URL images, http(s) image URLs and PDF files, keeping cache_control", () => {
      const body = bodyOf({
        messages: [
          {
            role: "user",
            content: [
              { type: "text", text: "Compare these.", cache_control: { type: "ephemeral" } },
              { type: "image_url", image_url: { url: "data:image/png;base64,iVBORw0KGgoAAAANSUhEUg==" } },
              { type: "image_url", image_url: { url: "https://example.com/cat.jpg", detail: "high" }, cache_control: { type: "ephemeral" } },
              { type: "file", file: { filename: "report.pdf", file_data: "data:application/pdf;base64,JVBERi0xLjQK" } },
            ],
          },
        ],
      });
      expect(body.messages).toEqual([
        {
          role: "user",
          content: [
            { type: "text", text: "Compare these.", cache_control: { type: "ephemeral" } },
            { type: "image", source: { type: "base64", media_type: "image/png", data: "iVBORw0KGgoAAAANSUhEUg==" } },
            { type: "image", source: { type: "url", url: "https://example.com/cat.jpg" }, cache_control: { type: "ephemeral" } },
            { type: "document", source: { type: "base64", media_type: "application/pdf", data: "JVBERi0xLjQK" } },
          ],
        },
      ]);
    });

    it.each([
      { name: "a non-base64 data URL", part: { type: "image_url", image_url: { url: "data:image/svg+xml,<svg/>" } }, message: /base64/ },
      { name: "an ftp image URL", part: { type: "image_url", image_url: { url: "ftp://example.com/a.png" } }, message: /http\(s\)/ },
      { name: "audio input", part: { type: "input_audio", input_audio: { data: "AAAA", format: "wav" } }, message: /"input_audio"/ },
    ])("rejects $name with bad_request instead of dropping it", ({ part, message }) => {
      const error = caught(() => build({ messages: [{ role: "user", content: [part] }] }));
      expect(error.code).toBe("bad_request");
      expect(error.message).toMatch(message);
    });

    it("rejects non-text parts in system messages", () => {
      const error = caught(() =>
        build({ messages: [{ role: "system", content: [{ type: "image_url", image_url: { url: "https://example.com/a.png" } }] }, USER_HI] }),
      );
      expect(error.code).toBe("bad_request");
      expect(error.message).toBe('Anthropic does not accept "image_url" content in system messages');
    });

    it("rejects a conversation made only of system messages", () => {
      expect(caught(() => build({ messages: [{ role: "system", content: "Hi" }] })).code).toBe("bad_request");
    });

    it("trims trailing whitespace from a final assistant prefill", () => {
      expect(bodyOf({ messages: [USER_HI, { role: "assistant", content: "Sure, here is the JSON:  \n" }] }).messages).toEqual([
        { role: "user", content: [{ type: "text", text: "Hi" }] },
        { role: "assistant", content: [{ type: "text", text: "Sure, here is the JSON:" }] },
      ]);
    });
  });

  describe("tools", () => {
    const weatherTool = {
      type: "function",
      function: {
        name: "get_weather",
        description: "Current weather for a city",
        parameters: { type: "object", properties: { location: { type: "string" } }, required: ["location"] },
        strict: true,
      },
      cache_control: { type: "ephemeral" },
    };
    const clockTool = { type: "function", function: { name: "get_time" } };

    it("sends tools with input_schema, an empty object schema when parameters are missing, and cache_control", () => {
      expect(bodyOf({ messages: [USER_HI], tools: [weatherTool, clockTool] }).tools).toEqual([
        {
          name: "get_weather",
          description: "Current weather for a city",
          input_schema: { type: "object", properties: { location: { type: "string" } }, required: ["location"] },
          cache_control: { type: "ephemeral" },
        },
        { name: "get_time", input_schema: { type: "object", properties: {} } },
      ]);
    });

    it.each([
      { tool_choice: undefined, parallel_tool_calls: undefined, expected: undefined },
      { tool_choice: "auto", parallel_tool_calls: undefined, expected: { type: "auto" } },
      { tool_choice: "required", parallel_tool_calls: undefined, expected: { type: "any" } },
      { tool_choice: "none", parallel_tool_calls: undefined, expected: { type: "none" } },
      { tool_choice: { type: "function", function: { name: "get_time" } }, parallel_tool_calls: undefined, expected: { type: "tool", name: "get_time" } },
      { tool_choice: undefined, parallel_tool_calls: false, expected: { type: "auto", disable_parallel_tool_use: true } },
      { tool_choice: "auto", parallel_tool_calls: false, expected: { type: "auto", disable_parallel_tool_use: true } },
      { tool_choice: "required", parallel_tool_calls: false, expected: { type: "any", disable_parallel_tool_use: true } },
      {
        tool_choice: { type: "function", function: { name: "get_time" } },
        parallel_tool_calls: false,
        expected: { type: "tool", name: "get_time", disable_parallel_tool_use: true },
      },
      { tool_choice: "none", parallel_tool_calls: false, expected: { type: "none" } },
      { tool_choice: "auto", parallel_tool_calls: true, expected: { type: "auto" } },
    ])("maps tool_choice $tool_choice with parallel_tool_calls $parallel_tool_calls", ({ tool_choice, parallel_tool_calls, expected }) => {
      const body = bodyOf({ messages: [USER_HI], tools: [clockTool], tool_choice, parallel_tool_calls });
      if (expected === undefined) expect(body).not.toHaveProperty("tool_choice");
      else expect(body.tool_choice).toEqual(expected);
    });

    it("sends no tool_choice when there are no tools", () => {
      const body = bodyOf({ messages: [USER_HI], tool_choice: "required", parallel_tool_calls: false });
      expect(body).not.toHaveProperty("tool_choice");
      expect(body).not.toHaveProperty("tools");
    });

    it("turns tool calls into tool_use blocks and consecutive tool messages into one user turn, results first", () => {
      const body = bodyOf({
        messages: [
          { role: "user", content: "Weather in Paris and Tokyo?" },
          {
            role: "assistant",
            content: "Checking both.",
            tool_calls: [
              { id: "toolu_01A", type: "function", function: { name: "get_weather", arguments: '{"location":"Paris"}' } },
              { id: "toolu_01B", type: "function", function: { name: "get_weather", arguments: '{"location":"Tokyo"}' } },
              { id: "toolu_01C", type: "function", function: { name: "get_time", arguments: "" } },
            ],
          },
          { role: "tool", tool_call_id: "toolu_01A", content: "18°C, cloudy" },
          { role: "tool", tool_call_id: "toolu_01B", content: [{ type: "text", text: "24°C, sunny" }] },
          { role: "tool", tool_call_id: "toolu_01C", content: "09:00" },
          { role: "user", content: "Thanks! Which is warmer?" },
        ],
        tools: [weatherTool, clockTool],
      });
      expect(body.messages).toEqual([
        { role: "user", content: [{ type: "text", text: "Weather in Paris and Tokyo?" }] },
        {
          role: "assistant",
          content: [
            { type: "text", text: "Checking both." },
            { type: "tool_use", id: "toolu_01A", name: "get_weather", input: { location: "Paris" } },
            { type: "tool_use", id: "toolu_01B", name: "get_weather", input: { location: "Tokyo" } },
            { type: "tool_use", id: "toolu_01C", name: "get_time", input: {} },
          ],
        },
        {
          role: "user",
          content: [
            { type: "tool_result", tool_use_id: "toolu_01A", content: "18°C, cloudy" },
            { type: "tool_result", tool_use_id: "toolu_01B", content: [{ type: "text", text: "24°C, sunny" }] },
            { type: "tool_result", tool_use_id: "toolu_01C", content: "09:00" },
            { type: "text", text: "Thanks! Which is warmer?" },
          ],
        },
      ]);
    });

    it.each([
      { args: '{"location": "Par', message: 'Arguments of the assistant\'s call to tool "get_weather" are not valid JSON' },
      { args: '["Paris"]', message: 'Arguments of the assistant\'s call to tool "get_weather" must be a JSON object' },
    ])("rejects tool call arguments $args with bad_request", ({ args, message }) => {
      const error = caught(() =>
        build({
          messages: [
            USER_HI,
            { role: "assistant", content: null, tool_calls: [{ id: "toolu_1", type: "function", function: { name: "get_weather", arguments: args } }] },
            { role: "tool", tool_call_id: "toolu_1", content: "ok" },
          ],
        }),
      );
      expect(error.code).toBe("bad_request");
      expect(error.status).toBe(400);
      expect(error.message).toBe(message);
    });
  });

  describe("reasoning", () => {
    it.each([
      { name: "effort high within a large output cap", request: { reasoning: { effort: "high" } }, maxOutput: 64000, maxTokens: 64000, budget: 24576 },
      { name: "effort xhigh", request: { reasoning: { effort: "xhigh" } }, maxOutput: 64000, maxTokens: 64000, budget: 32000 },
      { name: "reasoning_effort medium", request: { reasoning_effort: "medium" }, maxOutput: 64000, maxTokens: 64000, budget: 8192 },
      { name: "enabled alone as medium", request: { reasoning: { enabled: true } }, maxOutput: 64000, maxTokens: 64000, budget: 8192 },
      { name: "an effort budget shrunk to 80% of the client's cap", request: { max_completion_tokens: 16000, reasoning: { effort: "high" } }, maxOutput: 64000, maxTokens: 16000, budget: 12800 },
      { name: "an effort budget shrunk to 80% of the endpoint's cap", request: { reasoning: { effort: "high" } }, maxOutput: 8192, maxTokens: 8192, budget: 6553 },
      { name: "the minimum budget with max_tokens raised above it", request: { max_tokens: 1000, reasoning: { effort: "low" } }, maxOutput: 64000, maxTokens: 2024, budget: 1024 },
      { name: "minimal effort at the minimum budget", request: { max_tokens: 2000, reasoning: { effort: "minimal" } }, maxOutput: 64000, maxTokens: 2000, budget: 1024 },
      { name: "an explicit budget with max_tokens raised to hold it", request: { max_tokens: 5000, reasoning: { max_tokens: 10000 } }, maxOutput: 64000, maxTokens: 15000, budget: 10000 },
      { name: "an explicit budget over the effort", request: { reasoning: { max_tokens: 3000, effort: "high" } }, maxOutput: 64000, maxTokens: 64000, budget: 3000 },
      { name: "an explicit budget below the minimum", request: { reasoning: { max_tokens: 500 } }, maxOutput: 64000, maxTokens: 64000, budget: 1024 },
      { name: "a budget raised over the 4096 default", request: { reasoning_effort: "high" }, maxOutput: null, maxTokens: 28672, budget: 24576 },
      { name: "an explicit budget clamped under the endpoint's cap", request: { reasoning: { max_tokens: 30000 } }, maxOutput: 20000, maxTokens: 20000, budget: 19999 },
    ])("enables thinking with $name", ({ request, maxOutput, maxTokens, budget }) => {
      const body = bodyOf({ messages: [USER_HI], ...request }, target({ maxOutputTokens: maxOutput }));
      expect(body.thinking).toEqual({ type: "enabled", budget_tokens: budget });
      expect(body.max_tokens).toBe(maxTokens);
    });

    it.each([
      { name: "effort none", request: { reasoning: { effort: "none" } } },
      { name: "reasoning_effort none", request: { reasoning_effort: "none" } },
      { name: "enabled false, even with a reasoning_effort", request: { reasoning: { enabled: false }, reasoning_effort: "high" } },
      { name: "only exclude", request: { reasoning: { exclude: true } } },
      { name: "no reasoning fields", request: {} },
    ])("leaves thinking off for $name", ({ request }) => {
      const body = bodyOf({ messages: [USER_HI], temperature: 0.2, ...request });
      expect(body).not.toHaveProperty("thinking");
      expect(body.temperature).toBe(0.2);
      expect(body.max_tokens).toBe(64000);
    });

    it("refuses thinking when the endpoint cannot output more than the minimum budget", () => {
      const error = caught(() => build({ messages: [USER_HI], reasoning: { effort: "low" } }, target({ maxOutputTokens: 1024 })));
      expect(error.code).toBe("bad_request");
      expect(error.message).toBe("Extended thinking needs an output limit above 1024 tokens; this endpoint allows 1024");
    });

    it("drops temperature and top_k with thinking on, and top_p below 0.95", () => {
      const low = bodyOf({ messages: [USER_HI], reasoning: { effort: "low" }, temperature: 0.7, top_k: 20, top_p: 0.5 });
      expect(low).not.toHaveProperty("temperature");
      expect(low).not.toHaveProperty("top_k");
      expect(low).not.toHaveProperty("top_p");
      expect(bodyOf({ messages: [USER_HI], reasoning: { effort: "low" }, top_p: 0.95 }).top_p).toBe(0.95);
    });

    it("hands signed and redacted thinking back before text and tool_use, merging streamed fragments by index", () => {
      const body = bodyOf({
        messages: [
          USER_HI,
          {
            role: "assistant",
            content: "Let me look.",
            reasoning: "Need the weather.",
            reasoning_details: [
              { type: "reasoning.text", text: "Need the ", format: "anthropic-claude-v1", index: 0 },
              { type: "reasoning.text", text: "weather.", format: "anthropic-claude-v1", index: 0 },
              { type: "reasoning.text", signature: "EqQBsig0", format: "anthropic-claude-v1", index: 0 },
              { type: "reasoning.encrypted", data: "EmwKredacted", format: "anthropic-claude-v1", index: 1 },
              { type: "reasoning.text", text: "Second block.", signature: "EqQBsig2", format: "anthropic-claude-v1", index: 2 },
              { type: "reasoning.text", text: "Unsigned, cannot be verified.", format: "anthropic-claude-v1", index: 3 },
              { type: "reasoning.encrypted", data: "gAAAAopenai", format: "openai-responses-v1", index: 0 },
              { type: "reasoning.summary", summary: "A summary", format: "anthropic-claude-v1", index: 4 },
              { type: "reasoning.text", text: "No index, no format.", signature: "EqQBsig5" },
            ],
            tool_calls: [{ id: "toolu_1", type: "function", function: { name: "get_weather", arguments: '{"location":"Paris"}' } }],
          },
          { role: "tool", tool_call_id: "toolu_1", content: "18°C" },
        ],
        reasoning: { max_tokens: 2048 },
      });
      expect(body.messages).toEqual([
        { role: "user", content: [{ type: "text", text: "Hi" }] },
        {
          role: "assistant",
          content: [
            { type: "thinking", thinking: "Need the weather.", signature: "EqQBsig0" },
            { type: "redacted_thinking", data: "EmwKredacted" },
            { type: "thinking", thinking: "Second block.", signature: "EqQBsig2" },
            { type: "thinking", thinking: "No index, no format.", signature: "EqQBsig5" },
            { type: "text", text: "Let me look." },
            { type: "tool_use", id: "toolu_1", name: "get_weather", input: { location: "Paris" } },
          ],
        },
        { role: "user", content: [{ type: "tool_result", tool_use_id: "toolu_1", content: "18°C" }] },
      ]);
    });

    it("sends back exactly the reasoning details a non-streamed response produced", () => {
      const completion = anthropic.parseResponse(responseThinkingTools);
      const body = bodyOf({
        messages: [
          USER_HI,
          {
            role: "assistant",
            content: completion.content,
            reasoning_details: completion.reasoningDetails,
            tool_calls: completion.toolCalls,
          },
        ],
      });
      const [, assistant] = Array.isArray(body.messages) ? body.messages : [];
      expect(assistant).toEqual({
        role: "assistant",
        content: [
          { type: "thinking", thinking: responseThinkingTools.content[0]!.thinking, signature: responseThinkingTools.content[0]!.signature },
          { type: "redacted_thinking", data: responseThinkingTools.content[1]!.data },
          { type: "text", text: "I'll check both cities." },
          { type: "tool_use", id: "toolu_01D7FLrfh4GYq7yT1ULFeyMV", name: "get_weather", input: { location: "Paris, France", unit: "celsius" } },
          { type: "tool_use", id: "toolu_01Nq4kPbWz8Sx2VhJcR3tYeA", name: "get_weather", input: { location: "Tōkyō, Japan", unit: "celsius" } },
        ],
      });
    });
  });

  describe("response_format", () => {
    const schema = { type: "object", properties: { city: { type: "string" } }, required: ["city"], additionalProperties: false };

    it("appends a JSON schema instruction after the client's system prompt", () => {
      const body = bodyOf({
        messages: [{ role: "system", content: "You extract places." }, USER_HI],
        response_format: { type: "json_schema", json_schema: { name: "place", description: "The city mentioned", schema, strict: true } },
      });
      expect(body.system).toEqual([
        { type: "text", text: "You extract places." },
        {
          type: "text",
          text:
            "Respond with JSON only: no prose before or after it and no Markdown code fences. The response must be a single JSON value that validates against the JSON schema \"place\" (The city mentioned):\n" +
            JSON.stringify(schema),
        },
      ]);
      expect(body).not.toHaveProperty("response_format");
    });

    it("asks for a JSON object for json_object and adds nothing for text", () => {
      expect(bodyOf({ messages: [USER_HI], response_format: { type: "json_object" } }).system).toEqual([
        {
          type: "text",
          text: "Respond with JSON only: no prose before or after it and no Markdown code fences. The response must be a single valid JSON object.",
        },
      ]);
      expect(bodyOf({ messages: [USER_HI], response_format: { type: "text" } })).not.toHaveProperty("system");
    });
  });
});

describe("anthropic.parseResponse", () => {
  it("joins text blocks and counts cache reads and writes into the prompt tokens", () => {
    expect(anthropic.parseResponse(responseText)).toEqual({
      content: "The Eiffel Tower is about 330 metres tall, including its antennas.",
      reasoning: null,
      reasoningDetails: [],
      toolCalls: [],
      nativeFinishReason: "end_turn",
      finishReason: "stop",
      usage: { promptTokens: 21 + 4096 + 1536, completionTokens: 17, cachedTokens: 4096, cacheWriteTokens: 1536, reasoningTokens: 0 },
    });
  });

  it("returns thinking as reasoning, signed and redacted blocks as reasoning details, and both tool calls", () => {
    expect(anthropic.parseResponse(responseThinkingTools)).toEqual({
      content: "I'll check both cities.",
      reasoning: "The user wants the weather in two cities. I can call get_weather for both at once.",
      reasoningDetails: [
        {
          type: "reasoning.text",
          text: "The user wants the weather in two cities. I can call get_weather for both at once.",
          signature: responseThinkingTools.content[0]!.signature,
          format: "anthropic-claude-v1",
          index: 0,
        },
        { type: "reasoning.encrypted", data: responseThinkingTools.content[1]!.data, format: "anthropic-claude-v1", index: 1 },
      ],
      toolCalls: [
        { id: "toolu_01D7FLrfh4GYq7yT1ULFeyMV", type: "function", function: { name: "get_weather", arguments: '{"location":"Paris, France","unit":"celsius"}' } },
        { id: "toolu_01Nq4kPbWz8Sx2VhJcR3tYeA", type: "function", function: { name: "get_weather", arguments: '{"location":"Tōkyō, Japan","unit":"celsius"}' } },
      ],
      nativeFinishReason: "tool_use",
      finishReason: "tool_calls",
      usage: { promptTokens: 412, completionTokens: 187, cachedTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0 },
    });
  });

  it.each([
    { stop: "end_turn", finish: "stop" },
    { stop: "stop_sequence", finish: "stop" },
    { stop: "max_tokens", finish: "length" },
    { stop: "tool_use", finish: "tool_calls" },
    { stop: "refusal", finish: "content_filter" },
    { stop: "pause_turn", finish: "stop" },
    { stop: "model_context_window_exceeded", finish: "length" },
    { stop: null, finish: null },
  ])("maps stop_reason $stop to $finish", ({ stop, finish }) => {
    const completion = anthropic.parseResponse({ ...responseText, stop_reason: stop });
    expect(completion.finishReason).toBe(finish);
    expect(completion.nativeFinishReason).toBe(stop);
  });

  it("returns null content when there is no text block and skips server tool blocks", () => {
    const completion = anthropic.parseResponse({
      ...responseText,
      content: [
        { type: "server_tool_use", id: "srvtoolu_01", name: "web_search", input: { query: "weather" } },
        { type: "web_search_tool_result", tool_use_id: "srvtoolu_01", content: [] },
      ],
    });
    expect(completion.content).toBeNull();
    expect(completion.toolCalls).toEqual([]);
  });

  it("returns null usage when the response has none", () => {
    const { usage: _usage, ...withoutUsage } = responseText;
    expect(anthropic.parseResponse(withoutUsage).usage).toBeNull();
  });

  it.each([
    { name: "null", body: null },
    { name: "an empty object", body: {} },
    { name: "a chat completion", body: { choices: [{ message: { content: "hi" }, finish_reason: "stop" }] } },
    { name: "a text block without text", body: { ...responseText, content: [{ type: "text" }] } },
    { name: "a tool_use whose input is a string", body: { ...responseText, content: [{ type: "tool_use", id: "t", name: "n", input: "{}" }] } },
    { name: "negative token counts", body: { ...responseText, usage: { input_tokens: -1, output_tokens: 3 } } },
  ])("rejects $name as an invalid upstream response", ({ body }) => {
    const error = caught(() => anthropic.parseResponse(body));
    expect(error.code).toBe("upstream_error");
    expect(error.metadata).toEqual({ error_type: "invalid_response" });
  });
});

describe("anthropic stream decoder", () => {
  it("streams text and two tool calls numbered from 0 regardless of Anthropic's block indexes", async () => {
    const events = await decodeSSE(streamTextTools);
    expect(events).toEqual([
      { type: "usage", usage: { promptTokens: 2520, completionTokens: 1, cachedTokens: 2048, cacheWriteTokens: 0, reasoningTokens: 0 } },
      { type: "delta", content: "Je vérifie la météo" },
      { type: "delta", content: " à Paris et à Tōkyō — un instant 🌦️." },
      { type: "delta", toolCalls: [{ index: 0, id: "toolu_01T1x1fJ34qAmk2tNTrN7Up6", name: "get_weather", arguments: "" }] },
      { type: "delta", toolCalls: [{ index: 0, arguments: '{"location": "Par' }] },
      { type: "delta", toolCalls: [{ index: 0, arguments: 'is, France", "unit": "cel' }] },
      { type: "delta", toolCalls: [{ index: 0, arguments: 'sius"}' }] },
      { type: "delta", toolCalls: [{ index: 1, id: "toolu_01Ux8bKz3mNqRw5LcYv2HdJf", name: "get_weather", arguments: "" }] },
      { type: "delta", toolCalls: [{ index: 1, arguments: '{"location": "Tōk' }] },
      { type: "delta", toolCalls: [{ index: 1, arguments: 'yō, Japan", "unit"' }] },
      { type: "delta", toolCalls: [{ index: 1, arguments: ': "celsius"}' }] },
      { type: "finish", nativeFinishReason: "tool_use", finishReason: "tool_calls" },
      { type: "usage", usage: { promptTokens: 2520, completionTokens: 118, cachedTokens: 2048, cacheWriteTokens: 0, reasoningTokens: 0 } },
    ]);
    const result = accumulate(events);
    expect(result.toolCalls.map((call) => ({ ...call, arguments: JSON.parse(call.arguments) as unknown }))).toEqual([
      { id: "toolu_01T1x1fJ34qAmk2tNTrN7Up6", name: "get_weather", arguments: { location: "Paris, France", unit: "celsius" } },
      { id: "toolu_01Ux8bKz3mNqRw5LcYv2HdJf", name: "get_weather", arguments: { location: "Tōkyō, Japan", unit: "celsius" } },
    ]);
  });

  it("keeps each tool call's arguments apart when deltas of two blocks interleave", () => {
    const decoder = anthropic.createStreamDecoder();
    const events = [
      sse("content_block_start", { index: 0, content_block: { type: "text", text: "" } }),
      sse("content_block_start", { index: 1, content_block: { type: "tool_use", id: "toolu_A", name: "lookup", input: {} } }),
      sse("content_block_start", { index: 2, content_block: { type: "tool_use", id: "toolu_B", name: "lookup", input: {} } }),
      sse("content_block_delta", { index: 2, delta: { type: "input_json_delta", partial_json: '{"q":' } }),
      sse("content_block_delta", { index: 1, delta: { type: "input_json_delta", partial_json: '{"q":' } }),
      sse("content_block_delta", { index: 1, delta: { type: "input_json_delta", partial_json: '"first"}' } }),
      sse("content_block_delta", { index: 2, delta: { type: "input_json_delta", partial_json: '"second"}' } }),
    ].flatMap((message) => decoder.decode(message));
    expect(accumulate(events).toolCalls).toEqual([
      { id: "toolu_A", name: "lookup", arguments: '{"q":"first"}' },
      { id: "toolu_B", name: "lookup", arguments: '{"q":"second"}' },
    ]);
  });

  it("completes a tool call that streamed no input with empty-object arguments", () => {
    const decoder = anthropic.createStreamDecoder();
    const events = [
      sse("content_block_start", { index: 0, content_block: { type: "tool_use", id: "toolu_T", name: "get_time", input: {} } }),
      sse("content_block_delta", { index: 0, delta: { type: "input_json_delta", partial_json: "" } }),
      sse("content_block_stop", { index: 0 }),
    ].flatMap((message) => decoder.decode(message));
    expect(events).toEqual([
      { type: "delta", toolCalls: [{ index: 0, id: "toolu_T", name: "get_time", arguments: "" }] },
      { type: "delta", toolCalls: [{ index: 0, arguments: "{}" }] },
    ]);
  });

  it("streams thinking as reasoning plus signed reasoning details, and redacted thinking as encrypted details", async () => {
    const events = await decodeSSE(streamThinking);
    const signature = "EqQBCkgIBxABGAIiQFv8kP3mZt0cR2xLwq9NbD4sYhJ7aEuGiV1oTfK6pW5nXzC8yMrB3dQeSjHlA0gUvOiN2kPtRmYwZbLxEhJzaWduYXR1cmUtZml4dHVyZQ==";
    const redacted = "EmwKAhgBEgyPq8sT2wKn5cVb7LdXm0aDFr3Yh9Ji1oQeCzNt4UwIwA6pRfGk2sVm8HyDx0bLnT5cWq3Ej7KuZi9aPo4vMdBg1rNs6XtYf2hCeL8wJkQzUy0iOa";
    expect(events).toEqual([
      { type: "usage", usage: { promptTokens: 4238, completionTokens: 4, cachedTokens: 3000, cacheWriteTokens: 1200, reasoningTokens: 0 } },
      {
        type: "delta",
        reasoning: "27 × 453: 27 × 400 = 10800",
        reasoningDetails: [{ type: "reasoning.text", text: "27 × 453: 27 × 400 = 10800", format: "anthropic-claude-v1", index: 0 }],
      },
      {
        type: "delta",
        reasoning: ", 27 × 53 = 1431, total 12231.",
        reasoningDetails: [{ type: "reasoning.text", text: ", 27 × 53 = 1431, total 12231.", format: "anthropic-claude-v1", index: 0 }],
      },
      { type: "delta", reasoningDetails: [{ type: "reasoning.text", signature, format: "anthropic-claude-v1", index: 0 }] },
      { type: "delta", reasoningDetails: [{ type: "reasoning.encrypted", data: redacted, format: "anthropic-claude-v1", index: 1 }] },
      { type: "delta", content: "27 × 453 = " },
      { type: "delta", content: "12231" },
      { type: "finish", nativeFinishReason: "end_turn", finishReason: "stop" },
      { type: "usage", usage: { promptTokens: 4238, completionTokens: 96, cachedTokens: 3000, cacheWriteTokens: 1200, reasoningTokens: 0 } },
    ]);
  });

  it("lets streamed reasoning details round-trip into thinking blocks on the next request", async () => {
    const result = accumulate(await decodeSSE(streamThinking));
    const body = bodyOf({
      messages: [USER_HI, { role: "assistant", content: result.content, reasoning_details: result.reasoningDetails }, { role: "user", content: "And 28 × 453?" }],
    });
    const [, assistant] = Array.isArray(body.messages) ? body.messages : [];
    expect(assistant).toEqual({
      role: "assistant",
      content: [
        {
          type: "thinking",
          thinking: "27 × 453: 27 × 400 = 10800, 27 × 53 = 1431, total 12231.",
          signature: "EqQBCkgIBxABGAIiQFv8kP3mZt0cR2xLwq9NbD4sYhJ7aEuGiV1oTfK6pW5nXzC8yMrB3dQeSjHlA0gUvOiN2kPtRmYwZbLxEhJzaWduYXR1cmUtZml4dHVyZQ==",
        },
        {
          type: "redacted_thinking",
          data: "EmwKAhgBEgyPq8sT2wKn5cVb7LdXm0aDFr3Yh9Ji1oQeCzNt4UwIwA6pRfGk2sVm8HyDx0bLnT5cWq3Ej7KuZi9aPo4vMdBg1rNs6XtYf2hCeL8wJkQzUy0iOa",
        },
        { type: "text", text: "27 × 453 = 12231" },
      ],
    });
  });

  it("emits usage snapshots whose last one holds input with cache tokens and the final output", async () => {
    const { usage } = accumulate(await decodeSSE(streamTextTools));
    expect(usage).toHaveLength(2);
    expect(usage.at(-1)).toEqual({ promptTokens: 472 + 2048, completionTokens: 118, cachedTokens: 2048, cacheWriteTokens: 0, reasoningTokens: 0 });
  });

  it("takes input counts from message_delta when Anthropic reports them there", () => {
    const decoder = anthropic.createStreamDecoder();
    decoder.decode(sse("message_start", { message: { usage: { input_tokens: 10, output_tokens: 1 } } }));
    expect(decoder.decode(sse("message_delta", { delta: { stop_reason: null }, usage: { input_tokens: 12, cache_read_input_tokens: 5, output_tokens: 30 } }))).toEqual([
      { type: "usage", usage: { promptTokens: 17, completionTokens: 30, cachedTokens: 5, cacheWriteTokens: 0, reasoningTokens: 0 } },
    ]);
  });

  it("turns an error event mid-stream into an error after the text so far", async () => {
    const events = await decodeSSE(streamError);
    expect(events.slice(1)).toEqual([
      { type: "delta", content: "Once upon a time" },
      { type: "error", message: "Overloaded", errorType: "provider_overloaded" },
    ]);
  });

  it.each([
    { type: "overloaded_error", errorType: "provider_overloaded" },
    { type: "rate_limit_error", errorType: "rate_limit_exceeded" },
    { type: "api_error", errorType: "server" },
    { type: "invalid_request_error", errorType: "invalid_request" },
    { type: "authentication_error", errorType: "authentication" },
    { type: "something_new_error", errorType: "server" },
  ])("maps a stream error of type $type to $errorType", ({ type, errorType }) => {
    const decoder = anthropic.createStreamDecoder();
    expect(decoder.decode(sse("error", { error: { type, message: `It failed: ${type}` } }))).toEqual([
      { type: "error", message: `It failed: ${type}`, errorType },
    ]);
  });

  it("ignores ping, stop events, citation deltas and event types it does not know", () => {
    const decoder = anthropic.createStreamDecoder();
    const quiet = [
      sse("ping", {}),
      sse("content_block_start", { index: 0, content_block: { type: "text", text: "" } }),
      sse("content_block_delta", { index: 0, delta: { type: "citations_delta", citation: { type: "char_location", cited_text: "x" } } }),
      sse("content_block_stop", { index: 0 }),
      sse("content_block_start", { index: 1, content_block: { type: "server_tool_use", id: "srvtoolu_1", name: "web_search", input: {} } }),
      sse("message_stop", {}),
      sse("brand_new_event", { whatever: [1, 2, 3] }),
      { event: undefined, data: "", id: undefined },
    ];
    expect(quiet.flatMap((message) => decoder.decode(message))).toEqual([]);
  });

  it.each([
    { name: "data that is not JSON", message: { event: "content_block_delta", data: '{"type":"content_block_delta","index":0,', id: undefined } },
    { name: "an event without a type", message: { event: undefined, data: '{"index":0}', id: undefined } },
    { name: "a delta without its delta", message: sse("content_block_delta", { index: 0 }) },
    { name: "a text delta whose text is a number", message: sse("content_block_delta", { index: 0, delta: { type: "text_delta", text: 5 } }) },
    { name: "tool arguments for a block that is not a tool call", message: sse("content_block_delta", { index: 7, delta: { type: "input_json_delta", partial_json: "{}" } }) },
    { name: "a signature for a block that is not thinking", message: sse("content_block_delta", { index: 7, delta: { type: "signature_delta", signature: "x" } }) },
  ])("throws an invalid_response upstream error on $name", ({ message }) => {
    const error = caught(() => anthropic.createStreamDecoder().decode(message));
    expect(error.code).toBe("upstream_error");
    expect(error.metadata).toEqual({ error_type: "invalid_response" });
  });

  describeSplitDecoding(anthropic, { streamTextTools, streamThinking, streamError }, { seed: 0x5eed, maxPieces: [1, 2, 3, 5, 17, 64] });
});

describe("anthropic.parseError", () => {
  it.each([
    { name: "529 overloaded", status: 529, body: errorOverloaded, expected: { message: "Overloaded", errorType: "provider_overloaded" } },
    {
      name: "a prompt that is too long",
      status: 400,
      body: errorPromptTooLong,
      expected: { message: "prompt is too long: 215834 tokens > 200000 maximum", errorType: "context_length_exceeded" },
    },
    {
      name: "input plus max_tokens over the context limit",
      status: 400,
      body: errorContextLimit,
      expected: {
        message: "input length and `max_tokens` exceed context limit: 196710 + 8192 > 200000, decrease input length or `max_tokens` and try again",
        errorType: "context_length_exceeded",
      },
    },
    { name: "a bad API key", status: 401, body: errorAuthentication, expected: { message: "invalid x-api-key", errorType: "authentication" } },
    {
      name: "a rate limit",
      status: 429,
      body: '{"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"}}',
      expected: { message: "Number of request tokens has exceeded your per-minute rate limit", errorType: "rate_limit_exceeded" },
    },
    {
      name: "a plain-text gateway error",
      status: 502,
      body: "<html>502 Bad Gateway</html>",
      expected: { message: "<html>502 Bad Gateway</html>", errorType: "provider_unavailable" },
    },
  ])("explains $name with Anthropic's own message", ({ status, body, expected }) => {
    expect(anthropic.parseError(status, body)).toEqual(expected);
  });
});
