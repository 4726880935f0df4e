/// <reference types="vite/client" />
import { describe, expect, it } from "vitest";
import { openAICompatible } from "../../../src/providers/openai-compatible";
import type { SSEMessage } from "../../../src/providers/sse";
import type { ProviderOptions, ReasoningDetail, StreamEvent, UpstreamTarget, Usage } from "../../../src/providers/types";
import { chatRequestSchema } from "../../../src/schemas/openai";
import errorBadGateway from "../../fixtures/openai/error-bad-gateway.html?raw";
import errorContextLength from "../../fixtures/openai/error-context-length.json?raw";
import errorInvalidApiKey from "../../fixtures/openai/error-invalid-api-key.json?raw";
import errorInvalidParameter from "../../fixtures/openai/error-invalid-parameter.json?raw";
import errorOverloaded from "../../fixtures/openai/error-overloaded.json?raw";
import errorRateLimit from "../../fixtures/openai/error-rate-limit.json?raw";
import errorServer from "../../fixtures/openai/error-server.json?raw";
import responseDeepSeekReasoner from "../../fixtures/openai/response-deepseek-reasoner.json";
import responseNoUsage from "../../fixtures/openai/response-no-usage.json";
import responseOpenRouterReasoning from "../../fixtures/openai/response-openrouter-reasoning.json";
import responseParallelToolCalls from "../../fixtures/openai/response-parallel-tool-calls.json";
import responseText from "../../fixtures/openai/response-text.json";
import streamDeepSeekReasoning from "../../fixtures/openai/stream-deepseek-reasoning.sse?raw";
import streamError from "../../fixtures/openai/stream-error.sse?raw";
import streamOpenRouterReasoning from "../../fixtures/openai/stream-openrouter-reasoning.sse?raw";
import streamParallelTools from "../../fixtures/openai/stream-parallel-tools.sse?raw";
import streamText from "../../fixtures/openai/stream-text.sse?raw";
import streamToolsIndexZero from "../../fixtures/openai/stream-tools-index-zero.sse?raw";
import { accumulate, caught, decodeText, describeSplitDecoding } from "./harness";

const API_KEY = "sk-proj-test-key-0123456789";
const USER_HI = { role: "user", content: "Hi" } as const;

function target(overrides: Partial<UpstreamTarget> = {}): UpstreamTarget {
  return {
    family: "openai",
    baseUrl: "https://api.openai.com/v1",
    apiKey: API_KEY,
    model: "gpt-4o-mini",
    maxOutputTokens: 16384,
    options: {},
    ...overrides,
  };
}

const openRouter = target({
  baseUrl: "https://openrouter.ai/api/v1",
  model: "openai/gpt-4o-mini",
  options: { headers: { "x-switchyard-dialect": "openrouter" } },
});

/** Requests go through the gateway's own schema, exactly as the route hands them to adapters. */
function build(request: Record<string, unknown>, upstream: UpstreamTarget = target(), stream = false) {
  const built = openAICompatible.buildRequest(
    chatRequestSchema.parse({ model: "openai/gpt-4o-mini", ...request }),
    upstream,
    stream,
  );
  const body: unknown = JSON.parse(built.body);
  return { url: built.url, headers: built.headers, body };
}

/** The wire body as a record, for assertions on single fields. */
function bodyOf(request: Record<string, unknown>, upstream?: UpstreamTarget, stream = false): Record<string, unknown> {
  const { body } = build(request, upstream, stream);
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw new Error("body is not an object");
  return Object.fromEntries(Object.entries(body));
}

/** Only the reasoning-related fields of a wire body, so absent fields are asserted too. */
function reasoningFieldsOf(body: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(body).filter(([key]) => key === "reasoning" || key === "reasoning_effort"));
}

/** Table rows as [name, row], so test titles show the whole name instead of a truncated preview. */
function named<T extends { name: string }>(rows: T[]): [string, T][] {
  return rows.map((row) => [row.name, row]);
}

const decodeSSE = (text: string): Promise<StreamEvent[]> => decodeText(openAICompatible, text);

/** One SSE message carrying a chat completion chunk. */
function chunk(data: Record<string, unknown>): SSEMessage {
  return { event: undefined, id: undefined, data: JSON.stringify({ object: "chat.completion.chunk", ...data }) };
}

function deltaChunk(delta: Record<string, unknown>, finishReason: string | null = null): SSEMessage {
  return chunk({ choices: [{ index: 0, delta, finish_reason: finishReason }] });
}

function usage(promptTokens: number, completionTokens: number, cachedTokens = 0, cacheWriteTokens = 0, reasoningTokens = 0): Usage {
  return { promptTokens, completionTokens, cachedTokens, cacheWriteTokens, reasoningTokens };
}

const weatherTool = {
  type: "function",
  function: {
    name: "get_weather",
    description: "Current weather for a city",
    parameters: {
      type: "object",
      properties: { location: { type: "string" }, unit: { type: "string", enum: ["celsius", "fahrenheit"] } },
      required: ["location", "unit"],
      additionalProperties: false,
    },
    strict: true,
  },
};

describe("openAICompatible.buildRequest", () => {
  describe("endpoint and headers", () => {
    it("posts JSON to {base}/chat/completions with a bearer key by default", () => {
      const { url, headers, body } = build({ messages: [USER_HI] });
      expect(url).toBe("https://api.openai.com/v1/chat/completions");
      expect(headers).toEqual({ "content-type": "application/json", authorization: `Bearer ${API_KEY}` });
      expect(body).toEqual({ model: "gpt-4o-mini", messages: [{ role: "user", content: "Hi" }], stream: false });
    });

    it("drops trailing slashes from the base URL", () => {
      expect(build({ messages: [USER_HI] }, target({ baseUrl: "https://api.mistral.ai/v1//" })).url).toBe(
        "https://api.mistral.ai/v1/chat/completions",
      );
    });

    const authStyles: { name: string; auth: ProviderOptions["auth"]; expected: Record<string, string> }[] = [
      { name: "a bearer token by default", auth: undefined, expected: { authorization: `Bearer ${API_KEY}` } },
      { name: "a bearer token when asked", auth: "bearer", expected: { authorization: `Bearer ${API_KEY}` } },
      { name: "an api-key header (Azure)", auth: "api-key", expected: { "api-key": API_KEY } },
      { name: "an x-api-key header", auth: "x-api-key", expected: { "x-api-key": API_KEY } },
    ];
    it.each(named(authStyles))("sends the key as %s", (_name, { auth, expected }) => {
      expect(build({ messages: [USER_HI] }, target({ options: { auth } })).headers).toEqual({
        "content-type": "application/json",
        ...expected,
      });
    });

    it("sends the catalog's extra headers but never lets them replace the credential", () => {
      const { headers } = build(
        { messages: [USER_HI] },
        target({ options: { headers: { "HTTP-Referer": "https://switchyard.example", "X-Title": "Switchyard", authorization: "Bearer stale" } } }),
      );
      // Names are lower-cased, so the adapter's own credential replaces a stale catalog one.
      expect(headers).toEqual({
        "content-type": "application/json",
        "http-referer": "https://switchyard.example",
        "x-title": "Switchyard",
        authorization: `Bearer ${API_KEY}`,
      });
    });

    it("keeps the x-switchyard-dialect marker inside the gateway", () => {
      const { headers } = build(
        { messages: [USER_HI] },
        target({ options: { headers: { "x-switchyard-dialect": "openrouter", "X-Title": "Switchyard" } } }),
      );
      expect(headers).toEqual({ "content-type": "application/json", "x-title": "Switchyard", authorization: `Bearer ${API_KEY}` });
    });

    it("recognises the dialect marker whatever its case, and never sends any x-switchyard-* header", () => {
      const { headers, body } = build(
        { messages: [USER_HI], reasoning: { effort: "high" } },
        target({ options: { headers: { "X-Switchyard-Dialect": "openrouter", "X-Switchyard-Other": "1" } } }),
      );
      expect(headers).toEqual({ "content-type": "application/json", authorization: `Bearer ${API_KEY}` });
      expect((body as Record<string, unknown>).reasoning).toEqual({ effort: "high" });
    });
  });

  describe("Azure OpenAI", () => {
    const azure = target({
      baseUrl: "https://switchyard-eu.openai.azure.com/",
      apiKey: "0f3c9a7e5b1d4c2a8e6f9b3d7a1c5e0f",
      model: "gpt-4o-mini-eu",
      options: { auth: "api-key", deploymentInPath: true, apiVersion: "2024-10-21" },
    });

    it("puts the deployment in the path, the api-version in the query and the key in api-key", () => {
      const { url, headers, body } = build({ messages: [USER_HI] }, azure);
      expect(url).toBe("https://switchyard-eu.openai.azure.com/openai/deployments/gpt-4o-mini-eu/chat/completions?api-version=2024-10-21");
      expect(headers).toEqual({ "content-type": "application/json", "api-key": "0f3c9a7e5b1d4c2a8e6f9b3d7a1c5e0f" });
      expect(body).toEqual({ model: "gpt-4o-mini-eu", messages: [{ role: "user", content: "Hi" }], stream: false });
    });

    it("defaults the api-version to 2024-10-21 and encodes the deployment name", () => {
      const { url } = build({ messages: [USER_HI] }, target({ ...azure, model: "gpt 4o/mini", options: { auth: "api-key", deploymentInPath: true } }));
      expect(url).toBe("https://switchyard-eu.openai.azure.com/openai/deployments/gpt%204o%2Fmini/chat/completions?api-version=2024-10-21");
    });

    it("adds an api-version to the plain chat completions URL when the deployment is not in the path", () => {
      const { url } = build(
        { messages: [USER_HI] },
        target({ baseUrl: "https://switchyard-eu.openai.azure.com/openai/v1", options: { auth: "api-key", apiVersion: "preview" } }),
      );
      expect(url).toBe("https://switchyard-eu.openai.azure.com/openai/v1/chat/completions?api-version=preview");
    });
  });

  describe("body", () => {
    it("replaces the client's model with the endpoint's own model id", () => {
      expect(bodyOf({ model: "openai/gpt-4o-mini", messages: [USER_HI] }).model).toBe("gpt-4o-mini");
      expect(bodyOf({ model: "openai/gpt-4o-mini", messages: [USER_HI] }, openRouter).model).toBe("openai/gpt-4o-mini");
    });

    it("never forwards the gateway's own fields", () => {
      const body = bodyOf({
        models: ["openai/gpt-4o-mini", "mistralai/mistral-small"],
        messages: [USER_HI],
        provider: { order: ["azure-eu", "openai"], allow_fallbacks: false, data_collection: "deny" },
        session_id: "sess_4f1c9e",
        transforms: ["middle-out"],
        usage: { include: true },
        route: "fallback",
        plugins: [{ id: "web", max_results: 3 }],
        trace: { trace_id: "tr_8d2a", span_name: "summarise" },
        temperature: 0.2,
      });
      expect(body).toEqual({ model: "gpt-4o-mini", messages: [{ role: "user", content: "Hi" }], temperature: 0.2, stream: false });
    });

    it("forwards fields the gateway does not know untouched", () => {
      const unknown = {
        logit_bias: { "50256": -100, "1734": 5 },
        logprobs: true,
        top_logprobs: 3,
        prediction: { type: "content", content: "def add(a, b):\n    return a + b\n" },
        service_tier: "flex",
        metadata: { team: "search" },
        store: false,
        verbosity: "low",
      };
      expect(bodyOf({ messages: [USER_HI], ...unknown })).toEqual({
        model: "gpt-4o-mini",
        messages: [{ role: "user", content: "Hi" }],
        stream: false,
        ...unknown,
      });
    });

    it("forwards the standard sampling parameters as sent", () => {
      const params = {
        max_tokens: 256,
        max_completion_tokens: 512,
        temperature: 0.7,
        top_p: 0.95,
        frequency_penalty: 0.5,
        presence_penalty: -0.5,
        stop: ["\n\n", "###"],
        seed: 42,
        n: 1,
        user: "user-42",
      };
      expect(bodyOf({ messages: [USER_HI], ...params })).toEqual({
        model: "gpt-4o-mini",
        messages: [{ role: "user", content: "Hi" }],
        stream: false,
        ...params,
      });
    });

    it("passes images, tool calls, tools, tool_choice and a json_schema response_format through unchanged", () => {
      const messages = [
        { role: "system", content: "You are a travel assistant." },
        {
          role: "user",
          content: [
            { type: "text", text: "What is this landmark, and what's the weather there?" },
            { type: "image_url", image_url: { url: "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk", detail: "low" } },
            { type: "image_url", image_url: { url: "https://upload.example.org/eiffel.jpg", detail: "high" } },
          ],
        },
        {
          role: "assistant",
          content: null,
          tool_calls: [{ id: "call_Rb7TqX2mVk9NwL4cJd1sYh8e", type: "function", function: { name: "get_weather", arguments: '{"location":"Paris, France","unit":"celsius"}' } }],
        },
        { role: "tool", tool_call_id: "call_Rb7TqX2mVk9NwL4cJd1sYh8e", content: '{"temperature":18,"conditions":"light rain"}' },
      ];
      const toolChoice = { type: "function", function: { name: "get_weather" } };
      const responseFormat = {
        type: "json_schema",
        json_schema: {
          name: "landmark_weather",
          strict: true,
          schema: {
            type: "object",
            properties: { landmark: { type: "string" }, temperature_c: { type: "number" } },
            required: ["landmark", "temperature_c"],
            additionalProperties: false,
          },
        },
      };
      expect(
        bodyOf({ messages, tools: [weatherTool], tool_choice: toolChoice, parallel_tool_calls: false, response_format: responseFormat }),
      ).toEqual({
        model: "gpt-4o-mini",
        messages,
        tools: [weatherTool],
        tool_choice: toolChoice,
        parallel_tool_calls: false,
        response_format: responseFormat,
        stream: false,
      });
    });
  });

  describe("streaming", () => {
    it.each(named([
      { name: "no stream_options", request: {}, expected: { include_usage: true } },
      { name: "include_usage: false", request: { stream_options: { include_usage: false } }, expected: { include_usage: true } },
      {
        name: "other stream options",
        request: { stream_options: { include_usage: false, include_obfuscation: false } },
        expected: { include_usage: true, include_obfuscation: false },
      },
    ]))("forces stream and include_usage when streaming, given %s", (_name, { request, expected }) => {
      const body = bodyOf({ messages: [USER_HI], stream: true, ...request }, target(), true);
      expect(body.stream).toBe(true);
      expect(body.stream_options).toEqual(expected);
    });

    it("sends stream: false and no stream_options for a non-streamed attempt", () => {
      const body = bodyOf({ messages: [USER_HI], stream: true, stream_options: { include_usage: true } }, target(), false);
      expect(body.stream).toBe(false);
      expect(body).not.toHaveProperty("stream_options");
    });
  });

  describe("reasoning", () => {
    it.each(named([
      { name: "an effort becomes reasoning_effort", request: { reasoning: { effort: "high" } }, expected: { reasoning_effort: "high" } },
      { name: "effort none is kept", request: { reasoning: { effort: "none" } }, expected: { reasoning_effort: "none" } },
      {
        name: "reasoning.effort wins over a top-level reasoning_effort",
        request: { reasoning: { effort: "low" }, reasoning_effort: "high" },
        expected: { reasoning_effort: "low" },
      },
      { name: "a bare enabled leaves the model's default effort", request: { reasoning: { enabled: true } }, expected: {} },
      {
        name: "enabled with a top-level reasoning_effort keeps that effort",
        request: { reasoning: { enabled: true }, reasoning_effort: "minimal" },
        expected: { reasoning_effort: "minimal" },
      },
      { name: "a top-level reasoning_effort alone passes through", request: { reasoning_effort: "medium" }, expected: { reasoning_effort: "medium" } },
      { name: "no reasoning sends neither field", request: {}, expected: {} },
      {
        name: "enabled: false turns reasoning off despite a top-level reasoning_effort",
        request: { reasoning: { enabled: false }, reasoning_effort: "high" },
        expected: {},
      },
    ]))("for OpenAI's chat API: %s", (_name, { request, expected }) => {
      expect(reasoningFieldsOf(bodyOf({ messages: [USER_HI], ...request }))).toEqual(expected);
    });

    it.each(named([
      { name: "an openrouter.ai base URL", upstream: target({ baseUrl: "https://openrouter.ai/api/v1", model: "openai/o4-mini" }) },
      { name: "the x-switchyard-dialect header", upstream: openRouter },
      {
        name: "the dialect header on a proxy URL",
        upstream: target({ baseUrl: "https://llm-proxy.internal.example/v1", options: { headers: { "x-switchyard-dialect": "openrouter" } } }),
      },
    ]))("keeps reasoning as OpenRouter's object for %s", (_name, { upstream }) => {
      const reasoning = { effort: "high", exclude: true };
      expect(reasoningFieldsOf(bodyOf({ messages: [USER_HI], reasoning }, upstream))).toEqual({ reasoning });
      expect(reasoningFieldsOf(bodyOf({ messages: [USER_HI], reasoning: { max_tokens: 2048 } }, upstream))).toEqual({
        reasoning: { max_tokens: 2048 },
      });
    });

    it("does not send the dialect marker to an OpenRouter-compatible upstream", () => {
      expect(build({ messages: [USER_HI], reasoning: { effort: "low" } }, openRouter).headers).toEqual({
        "content-type": "application/json",
        authorization: `Bearer ${API_KEY}`,
      });
    });
  });
});

describe("openAICompatible.parseResponse", () => {
  it("returns the text, the finish reason and usage with cached prompt tokens", () => {
    expect(openAICompatible.parseResponse(responseText)).toEqual({
      content: "The Eiffel Tower is about 330 metres tall, antennas included — roughly an 81-storey building.",
      reasoning: null,
      reasoningDetails: [],
      toolCalls: [],
      nativeFinishReason: "stop",
      finishReason: "stop",
      usage: usage(1342, 23, 1152),
    });
  });

  it("returns parallel tool calls in order with reasoning tokens counted", () => {
    expect(openAICompatible.parseResponse(responseParallelToolCalls)).toEqual({
      content: null,
      reasoning: null,
      reasoningDetails: [],
      toolCalls: [
        {
          id: "call_Rb7TqX2mVk9NwL4cJd1sYh8e",
          type: "function",
          function: { name: "get_weather", arguments: '{"location":"Paris, France","unit":"celsius"}' },
        },
        {
          id: "call_Gm3YzP6aHs0KfQ5vTn2wCx9u",
          type: "function",
          function: { name: "get_weather", arguments: '{"location":"Tōkyō, Japan","unit":"celsius"}' },
        },
      ],
      nativeFinishReason: "tool_calls",
      finishReason: "tool_calls",
      usage: usage(214, 245, 0, 0, 192),
    });
  });

  it("reads DeepSeek's reasoning_content and its top-level prompt_cache_hit_tokens", () => {
    expect(openAICompatible.parseResponse(responseDeepSeekReasoner)).toEqual({
      content: "9.11 is smaller than 9.9.",
      reasoning: "Compare 9.11 and 9.9: the integer parts are equal, and 0.11 < 0.90, so 9.11 is smaller.",
      reasoningDetails: [],
      toolCalls: [],
      nativeFinishReason: "stop",
      finishReason: "stop",
      usage: usage(1046, 162, 1024, 0, 148),
    });
  });

  it("reads OpenRouter's reasoning, reasoning_details and cache_write_tokens", () => {
    const [choice] = responseOpenRouterReasoning.choices;
    expect(openAICompatible.parseResponse(responseOpenRouterReasoning)).toEqual({
      content: "27 × 453 = 12231.",
      reasoning: "27 × 400 = 10800, 27 × 53 = 1431, total 12231.",
      reasoningDetails: [
        {
          type: "reasoning.text",
          text: "27 × 400 = 10800, 27 × 53 = 1431, total 12231.",
          signature: choice?.message.reasoning_details[0]?.signature,
          format: "anthropic-claude-v1",
          index: 0,
        },
      ],
      toolCalls: [],
      nativeFinishReason: "stop",
      finishReason: "stop",
      usage: usage(3891, 71, 2048, 1792, 38),
    });
  });

  it("prefers reasoning over reasoning_content when a vendor sends both", () => {
    const body = { choices: [{ message: { content: "4", reasoning: "2 + 2 = 4", reasoning_content: "2 + 2 = 4 (legacy field)" }, finish_reason: "stop" }] };
    expect(openAICompatible.parseResponse(body).reasoning).toBe("2 + 2 = 4");
  });

  it("gives an empty arguments string to a tool call that arrived without arguments", () => {
    const body = { choices: [{ message: { content: null, tool_calls: [{ id: "call_1", type: "function", function: { name: "get_time" } }] }, finish_reason: "tool_calls" }] };
    expect(openAICompatible.parseResponse(body).toolCalls).toEqual([{ id: "call_1", type: "function", function: { name: "get_time", arguments: "" } }]);
  });

  it.each([
    { native: "stop", finish: "stop" },
    { native: "length", finish: "length" },
    { native: "tool_calls", finish: "tool_calls" },
    { native: "function_call", finish: "tool_calls" },
    { native: "content_filter", finish: "content_filter" },
    { native: "error", finish: "error" },
    { native: "end_turn", finish: "stop" },
    { native: "eos", finish: "stop" },
    { native: "max_tokens", finish: "length" },
    { native: "tool_use", finish: "tool_calls" },
    { native: "recitation", finish: "stop" },
    { native: "abort", finish: "stop" },
    { native: null, finish: null },
  ])("maps finish_reason $native to $finish", ({ native, finish }) => {
    const completion = openAICompatible.parseResponse({ choices: [{ message: { content: "x" }, finish_reason: native }] });
    expect({ nativeFinishReason: completion.nativeFinishReason, finishReason: completion.finishReason }).toEqual({
      nativeFinishReason: native,
      finishReason: finish,
    });
  });

  it("reports a missing finish_reason as null", () => {
    expect(openAICompatible.parseResponse({ choices: [{ message: { content: "x" } }] })).toMatchObject({
      nativeFinishReason: null,
      finishReason: null,
    });
  });

  it.each(named([
    { name: "no usage field", body: responseNoUsage, expected: null },
    { name: "usage: null", body: { ...responseNoUsage, usage: null }, expected: null },
    { name: "counts without details", body: { ...responseNoUsage, usage: { prompt_tokens: 9, completion_tokens: 2, total_tokens: 11 } }, expected: usage(9, 2) },
    {
      name: "null details",
      body: { ...responseNoUsage, usage: { prompt_tokens: 9, completion_tokens: 2, prompt_tokens_details: null, completion_tokens_details: { reasoning_tokens: null } } },
      expected: usage(9, 2),
    },
    {
      name: "cached_tokens and prompt_cache_hit_tokens both present",
      body: { ...responseNoUsage, usage: { prompt_tokens: 2000, completion_tokens: 5, prompt_tokens_details: { cached_tokens: 1920 }, prompt_cache_hit_tokens: 1920 } },
      expected: usage(2000, 5, 1920),
    },
  ]))("reads usage from %s", (_name, { body, expected }) => {
    expect(openAICompatible.parseResponse(body).usage).toEqual(expected);
  });

  it.each(named([
    { name: "null", body: null },
    { name: "a string", body: "Internal Server Error" },
    { name: "an array", body: [responseText] },
    { name: "an empty object", body: {} },
    { name: "no choices", body: { ...responseText, choices: [] } },
    { name: "a choice without a message", body: { choices: [{ index: 0, finish_reason: "stop" }] } },
    { name: "content that is a number", body: { choices: [{ message: { content: 42 }, finish_reason: "stop" }] } },
    { name: "a tool call without an id", body: { choices: [{ message: { tool_calls: [{ type: "function", function: { name: "f", arguments: "{}" } }] } }] } },
    { name: "negative token counts", body: { ...responseText, usage: { prompt_tokens: -1, completion_tokens: 3 } } },
    { name: "an error envelope sent with status 200", body: { error: { message: "Model overloaded", type: "server_error" } } },
  ]))("throws an invalid_response upstream error on %s", (_name, { body }) => {
    const error = caught(() => openAICompatible.parseResponse(body));
    expect(error.code).toBe("upstream_error");
    expect(error.message).toBe("Upstream returned a response that is not a chat completion");
    expect(error.metadata).toEqual({ error_type: "invalid_response" });
  });
});

describe("openAI-compatible stream decoder", () => {
  it("streams text, emitting nothing for the role-only first delta, then one finish and the usage-only chunk", async () => {
    expect(await decodeSSE(streamText)).toEqual([
      { type: "delta", content: "Bonjour" },
      { type: "delta", content: " ! La tour Eiffel" },
      { type: "delta", content: " mesure environ 330 m" },
      { type: "delta", content: " — antennes comprises 🗼." },
      { type: "finish", nativeFinishReason: "stop", finishReason: "stop" },
      { type: "usage", usage: usage(1342, 19, 1152) },
    ]);
  });

  it("emits nothing for a role-only delta with empty content", () => {
    const decoder = openAICompatible.createStreamDecoder();
    expect(decoder.decode(deltaChunk({ role: "assistant", content: "", refusal: null }))).toEqual([]);
    expect(decoder.decode(deltaChunk({ role: "assistant", content: null, reasoning: null, tool_calls: [] }))).toEqual([]);
  });

  it("streams two parallel tool calls with indexes 0 and 1 whose arguments concatenate to valid JSON", async () => {
    const events = await decodeSSE(streamParallelTools);
    const first = "call_Xy8WcQ3nKe1pT7vRbL4mZ0sD";
    const second = "call_Hf2JuN6aVq9oG3kYcS5wE8tB";
    expect(events).toEqual([
      { type: "delta", toolCalls: [{ index: 0, id: first, name: "get_weather" }] },
      { type: "delta", toolCalls: [{ index: 0, arguments: '{"lo' }] },
      { type: "delta", toolCalls: [{ index: 0, arguments: "cation" }] },
      { type: "delta", toolCalls: [{ index: 0, arguments: '": "Par' }] },
      { type: "delta", toolCalls: [{ index: 0, arguments: "is, France" }] },
      { type: "delta", toolCalls: [{ index: 0, arguments: '", "unit": "celsius"}' }] },
      { type: "delta", toolCalls: [{ index: 1, id: second, name: "get_weather" }] },
      { type: "delta", toolCalls: [{ index: 1, arguments: '{"lo' }] },
      { type: "delta", toolCalls: [{ index: 1, arguments: "cation" }] },
      { type: "delta", toolCalls: [{ index: 1, arguments: '": "Tōk' }] },
      { type: "delta", toolCalls: [{ index: 1, arguments: "yō, Japan" }] },
      { type: "delta", toolCalls: [{ index: 1, arguments: '", "unit": "celsius"}' }] },
      { type: "finish", nativeFinishReason: "tool_calls", finishReason: "tool_calls" },
      { type: "usage", usage: usage(182, 58) },
    ]);
    const result = accumulate(events);
    expect(result.toolCalls.map((call) => ({ ...call, arguments: JSON.parse(call.arguments) as unknown }))).toEqual([
      { id: first, name: "get_weather", arguments: { location: "Paris, France", unit: "celsius" } },
      { id: second, name: "get_weather", arguments: { location: "Tōkyō, Japan", unit: "celsius" } },
    ]);
  });

  it("numbers calls 0 and 1 when a vendor sends every tool call at index 0 with distinct ids", async () => {
    const events = await decodeSSE(streamToolsIndexZero);
    expect(events).toEqual([
      { type: "delta", toolCalls: [{ index: 0, id: "call_k2b7xq9m4vt1n8zr", name: "get_weather", arguments: '{"city": ' }] },
      { type: "delta", toolCalls: [{ index: 0, arguments: '"Lisbon"}' }] },
      { type: "delta", toolCalls: [{ index: 1, id: "call_p7d3wj6c0sh5e2ly", name: "get_local_time", arguments: '{"timezone": ' }] },
      { type: "delta", toolCalls: [{ index: 1, arguments: '"Europe/Lisbon"}' }] },
      { type: "finish", nativeFinishReason: "tool_calls", finishReason: "tool_calls" },
      { type: "usage", usage: usage(311, 41) },
    ]);
    expect(accumulate(events).toolCalls.map((call) => ({ ...call, arguments: JSON.parse(call.arguments) as unknown }))).toEqual([
      { id: "call_k2b7xq9m4vt1n8zr", name: "get_weather", arguments: { city: "Lisbon" } },
      { id: "call_p7d3wj6c0sh5e2ly", name: "get_local_time", arguments: { timezone: "Europe/Lisbon" } },
    ]);
  });

  it("keeps a call's index when the vendor repeats its id on every delta", () => {
    const decoder = openAICompatible.createStreamDecoder();
    const events = [
      deltaChunk({ tool_calls: [{ index: 0, id: "call_a", type: "function", function: { name: "lookup", arguments: '{"q":' } }] }),
      deltaChunk({ tool_calls: [{ index: 0, id: "call_a", type: "function", function: { arguments: '"x"}' } }] }),
      deltaChunk({ tool_calls: [{ index: 1, id: "call_b", type: "function", function: { name: "lookup", arguments: '{"q":"y"}' } }] }),
    ].flatMap((message) => decoder.decode(message));
    expect(events).toEqual([
      { type: "delta", toolCalls: [{ index: 0, id: "call_a", name: "lookup", arguments: '{"q":' }] },
      { type: "delta", toolCalls: [{ index: 0, id: "call_a", arguments: '"x"}' }] },
      { type: "delta", toolCalls: [{ index: 1, id: "call_b", name: "lookup", arguments: '{"q":"y"}' }] },
    ]);
  });

  it("uses a call's position in the delta when the vendor sends no index", () => {
    const decoder = openAICompatible.createStreamDecoder();
    expect(
      decoder.decode(
        deltaChunk({
          tool_calls: [
            { id: "call_a", type: "function", function: { name: "lookup", arguments: '{"q":"x"}' } },
            { id: "call_b", type: "function", function: { name: "lookup", arguments: '{"q":"y"}' } },
          ],
        }),
      ),
    ).toEqual([
      {
        type: "delta",
        toolCalls: [
          { index: 0, id: "call_a", name: "lookup", arguments: '{"q":"x"}' },
          { index: 1, id: "call_b", name: "lookup", arguments: '{"q":"y"}' },
        ],
      },
    ]);
  });

  it("numbers tool calls from 0 in every stream, so decoders share no state", () => {
    const message = deltaChunk({ tool_calls: [{ index: 3, id: "call_z", type: "function", function: { name: "ping", arguments: "{}" } }] });
    for (const decoder of [openAICompatible.createStreamDecoder(), openAICompatible.createStreamDecoder()]) {
      expect(decoder.decode(message)).toEqual([{ type: "delta", toolCalls: [{ index: 0, id: "call_z", name: "ping", arguments: "{}" }] }]);
    }
  });

  it("streams DeepSeek's reasoning_content as reasoning, with finish and usage from the same final chunk", async () => {
    expect(await decodeSSE(streamDeepSeekReasoning)).toEqual([
      { type: "delta", reasoning: "Compare 9.11 and 9.9" },
      { type: "delta", reasoning: ": the integer parts are equal," },
      { type: "delta", reasoning: " and 0.11 < 0.90." },
      { type: "delta", content: "9.11 is smaller" },
      { type: "delta", content: " than 9.9." },
      { type: "finish", nativeFinishReason: "stop", finishReason: "stop" },
      { type: "usage", usage: usage(20, 151, 0, 0, 139) },
    ]);
  });

  it("streams OpenRouter's reasoning and reasoning_details and emits finish once though the usage chunk repeats it", async () => {
    const events = await decodeSSE(streamOpenRouterReasoning);
    const detail = (fields: Record<string, unknown>): ReasoningDetail => ({ type: "reasoning.text", ...fields, format: "anthropic-claude-v1", index: 0 });
    const signature = /"signature":"([^"]+)"/.exec(streamOpenRouterReasoning)?.[1];
    expect(signature).toMatch(/^ErUBCk/);
    expect(events).toEqual([
      { type: "delta", reasoning: "The user wants 27 × 453.", reasoningDetails: [detail({ text: "The user wants 27 × 453." })] },
      {
        type: "delta",
        reasoning: " 27 × 400 = 10800, 27 × 53 = 1431.",
        reasoningDetails: [detail({ text: " 27 × 400 = 10800, 27 × 53 = 1431." })],
      },
      { type: "delta", reasoningDetails: [detail({ signature })] },
      { type: "delta", content: "27 × 453 = " },
      { type: "delta", content: "12231." },
      { type: "finish", nativeFinishReason: "stop", finishReason: "stop" },
      { type: "usage", usage: usage(3891, 118, 2048, 1792, 64) },
    ]);
  });

  it("emits finish only once when the upstream repeats finish_reason", () => {
    const decoder = openAICompatible.createStreamDecoder();
    const events = [deltaChunk({ content: "Truncat" }, "length"), deltaChunk({}, "length"), deltaChunk({}, "stop")].flatMap((message) =>
      decoder.decode(message),
    );
    expect(events).toEqual([
      { type: "delta", content: "Truncat" },
      { type: "finish", nativeFinishReason: "length", finishReason: "length" },
    ]);
  });

  it.each([
    { native: "function_call", finish: "tool_calls" },
    { native: "content_filter", finish: "content_filter" },
    { native: "length", finish: "length" },
    { native: "something_new", finish: "stop" },
  ])("maps a streamed finish_reason $native to $finish", ({ native, finish }) => {
    expect(openAICompatible.createStreamDecoder().decode(deltaChunk({}, native))).toEqual([
      { type: "finish", nativeFinishReason: native, finishReason: finish },
    ]);
  });

  it("turns an error object mid-stream into an error event after the text so far, with no finish", async () => {
    const events = await decodeSSE(streamError);
    expect(events).toEqual([
      { type: "delta", content: "Once upon a time" },
      { type: "delta", content: ", in a harbour town" },
      // The error's numeric code classifies it (502 → provider_unavailable).
      { type: "error", message: "Provider disconnected before the response was complete", errorType: "provider_unavailable" },
    ]);
  });

  it("keeps one tool call when later deltas repeat an empty id", () => {
    const decoder = openAICompatible.createStreamDecoder();
    const first = decoder.decode(deltaChunk({ tool_calls: [{ index: 0, id: "call_1", function: { name: "f", arguments: '{"a"' } }] }));
    const second = decoder.decode(deltaChunk({ tool_calls: [{ index: 0, id: "", function: { arguments: ":1}" } }] }));
    expect([...first, ...second]).toEqual([
      { type: "delta", toolCalls: [{ index: 0, id: "call_1", name: "f", arguments: '{"a"' }] },
      { type: "delta", toolCalls: [{ index: 0, arguments: ":1}" }] },
    ]);
  });

  it("falls back to a generic message for an error object without one", () => {
    expect(openAICompatible.createStreamDecoder().decode(chunk({ error: { code: 500 } }))).toEqual([
      { type: "error", message: "Upstream stream error", errorType: "server" },
    ]);
  });

  it.each(named([
    { name: "[DONE]", data: "[DONE]" },
    { name: "[DONE] with surrounding whitespace", data: " [DONE] " },
    { name: "empty data", data: "" },
    { name: "blank data", data: "  " },
    { name: "a chunk with no choices and no usage", data: '{"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[]}' },
  ]))("emits nothing for %s", (_name, { data }) => {
    expect(openAICompatible.createStreamDecoder().decode({ event: undefined, id: undefined, data })).toEqual([]);
  });

  it.each(named([
    { name: "truncated JSON", data: '{"id":"chatcmpl-1","choices":[{"delta":{"content":"Hel' },
    { name: "text that is not JSON", data: "upstream connect error or disconnect/reset before headers" },
    { name: "choices that are not an array", data: '{"choices":{"0":{"delta":{"content":"x"}}}}' },
    { name: "content that is a number", data: '{"choices":[{"index":0,"delta":{"content":7}}]}' },
    { name: "a JSON string", data: '"hello"' },
  ]))("throws an invalid_response upstream error on %s", (_name, { data }) => {
    const error = caught(() => openAICompatible.createStreamDecoder().decode({ event: undefined, id: undefined, data }));
    expect(error.code).toBe("upstream_error");
    expect(error.metadata).toEqual({ error_type: "invalid_response" });
  });

  describeSplitDecoding(
    openAICompatible,
    { streamText, streamParallelTools, streamToolsIndexZero, streamDeepSeekReasoning, streamOpenRouterReasoning, streamError },
    { seed: 0x0a1c, maxPieces: [1, 2, 3, 7, 31, 200] },
  );
});

describe("openAICompatible.parseError", () => {
  it.each(named([
    {
      name: "a bad API key",
      status: 401,
      body: errorInvalidApiKey,
      expected: {
        message:
          "Incorrect API key provided: sk-proj-********************************************************************************************************************************************************Xq7T. You can find your API key at https://platform.openai.com/account/api-keys.",
        errorType: "authentication",
      },
    },
    {
      name: "an over-long prompt",
      status: 400,
      body: errorContextLength,
      expected: {
        message:
          "This model's maximum context length is 128000 tokens. However, your messages resulted in 131584 tokens (131107 in the messages, 477 in the functions). Please reduce the length of the messages or functions.",
        errorType: "context_length_exceeded",
      },
    },
    {
      name: "an invalid parameter",
      status: 400,
      body: errorInvalidParameter,
      expected: {
        message: "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.",
        errorType: "invalid_request",
      },
    },
    {
      name: "an unknown model",
      status: 404,
      body: '{"error":{"message":"The model `gpt-5-turbo` does not exist or you do not have access to it.","type":"invalid_request_error","param":null,"code":"model_not_found"}}',
      expected: { message: "The model `gpt-5-turbo` does not exist or you do not have access to it.", errorType: "not_found" },
    },
    {
      name: "a rate limit",
      status: 429,
      body: errorRateLimit,
      expected: {
        message:
          "Rate limit reached for gpt-4o-mini in organization org-Qd7TkX2vLm9RbW4nHc1sYp8e on tokens per min (TPM): Limit 200000, Used 198812, Requested 2841. Please try again in 495ms. Visit https://platform.openai.com/account/rate-limits to learn more.",
        errorType: "rate_limit_exceeded",
      },
    },
    {
      name: "a server error",
      status: 500,
      body: errorServer,
      expected: { message: "The server had an error while processing your request. Sorry about that!", errorType: "server" },
    },
    {
      name: "an overloaded engine",
      status: 503,
      body: errorOverloaded,
      expected: { message: "The engine is currently overloaded, please try again later.", errorType: "provider_unavailable" },
    },
    { name: "an empty gateway timeout", status: 504, body: "", expected: { message: "HTTP 504", errorType: "timeout" } },
  ]))("explains %s with the provider's own message", (_name, { status, body, expected }) => {
    expect(openAICompatible.parseError(status, body)).toEqual(expected);
  });

  it("keeps the first 500 characters of an HTML 502 page and calls the provider unavailable", () => {
    const failure = openAICompatible.parseError(502, errorBadGateway);
    expect(errorBadGateway.length).toBeGreaterThan(500);
    expect(failure).toEqual({ message: `${errorBadGateway.trim().slice(0, 500)}…`, errorType: "provider_unavailable" });
    expect(failure.message.startsWith("<!DOCTYPE html>")).toBe(true);
  });
});
