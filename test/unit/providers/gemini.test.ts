/// <reference types="vite/client" />
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { gemini } from "../../../src/providers/gemini";
import type { StreamEvent, UpstreamTarget } from "../../../src/providers/types";
import { chatRequestSchema, type ChatRequest } from "../../../src/schemas/openai";
import blockedPrompt from "../../fixtures/gemini/blocked-prompt.json";
import apiKeyInvalid from "../../fixtures/gemini/error-api-key-invalid.json?raw";
import contextLength from "../../fixtures/gemini/error-context-length.json?raw";
import locationUnsupported from "../../fixtures/gemini/error-location-unsupported.json?raw";
import modelNotFound from "../../fixtures/gemini/error-model-not-found.json?raw";
import overloaded from "../../fixtures/gemini/error-overloaded.json?raw";
import rateLimit from "../../fixtures/gemini/error-rate-limit.json?raw";
import vertexPermissionDenied from "../../fixtures/gemini/error-vertex-permission-denied.json?raw";
import parallelFunctionCalls from "../../fixtures/gemini/parallel-function-calls.json";
import toolConversationBody from "../../fixtures/gemini/request-tool-conversation.json";
import streamError from "../../fixtures/gemini/stream-error.sse?raw";
import streamToolCalls from "../../fixtures/gemini/stream-tool-calls.sse?raw";
import textResponse from "../../fixtures/gemini/text.json";
import thinkingResponse from "../../fixtures/gemini/thinking.json";
import { caught, decodeChunks } from "./harness";

const API_KEY = "AIzaSyD-test-key-0123456789abcdefghijk";

const aiStudio: UpstreamTarget = {
  family: "gemini",
  baseUrl: "https://generativelanguage.googleapis.com/v1beta/",
  apiKey: API_KEY,
  model: "gemini-2.5-flash",
  maxOutputTokens: 65536,
  options: {},
};

const vertex: UpstreamTarget = {
  family: "gemini",
  baseUrl:
    "https://europe-west4-aiplatform.googleapis.com/v1/projects/switchyard-prod/locations/europe-west4/publishers/google",
  apiKey: "ya29.vertex-access-token",
  model: "gemini-2.5-pro",
  maxOutputTokens: 65536,
  options: { auth: "bearer" },
};

const SIGNATURE = "CiQBVKhc7tVb4hYq7Tz0aEwYgS5gT5e0lXbZ3l6dYt9Qj2pYdCoSCmwBVKhc7j0v9mQ2c8pQ1yQ3Z6o=";
const CALL_ID = /^call_[0-9a-f]{24}$/;

/** A request as the HTTP layer hands it over: validated by the gateway's own schema. */
function chat(body: Record<string, unknown>): ChatRequest {
  return chatRequestSchema.parse({ model: "google/gemini-2.5-flash", ...body });
}

function hi(extra: Record<string, unknown> = {}): ChatRequest {
  return chat({ messages: [{ role: "user", content: "Hi" }], ...extra });
}

function bodyOf(req: ChatRequest, target: UpstreamTarget = aiStudio, stream = false): unknown {
  return JSON.parse(gemini.buildRequest(req, target, stream).body);
}

function generationConfigOf(req: ChatRequest): unknown {
  const body = bodyOf(req);
  return typeof body === "object" && body !== null && "generationConfig" in body ? body.generationConfig : undefined;
}

const weatherTool = {
  type: "function",
  function: {
    name: "get_weather",
    description: "Current weather for a city",
    parameters: {
      $schema: "http://json-schema.org/draft-07/schema#",
      type: "object",
      properties: {
        city: { type: "string", description: "City name, e.g. Paris" },
        unit: { type: ["string", "null"], enum: ["celsius", "fahrenheit"] },
      },
      required: ["city"],
      additionalProperties: false,
    },
  },
};

describe("gemini.buildRequest: contents", () => {
  it("translates a tool conversation into the recorded Gemini body", () => {
    const req = chat({
      messages: [
        { role: "system", content: "You are a concise travel assistant. Answer in one sentence." },
        { role: "user", content: [{ type: "text", text: "What's the weather in Paris and São Paulo right now?" }] },
        {
          role: "assistant",
          content: "Let me check both cities.",
          tool_calls: [
            { id: "call_paris", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } },
            {
              id: "call_sao_paulo",
              type: "function",
              function: { name: "get_weather", arguments: '{"city":"São Paulo","unit":"celsius"}' },
            },
          ],
          reasoning_details: [
            { type: "reasoning.encrypted", data: SIGNATURE, id: "call_paris", format: "google-gemini-v1" },
          ],
        },
        { role: "tool", tool_call_id: "call_paris", content: '{"temperature_c":18,"conditions":"light rain"}' },
        { role: "tool", tool_call_id: "call_sao_paulo", content: "Sunny, 27 °C" },
      ],
      tools: [weatherTool],
      tool_choice: "auto",
      temperature: 0.3,
      max_tokens: 512,
      reasoning: { effort: "low" },
    });
    expect(bodyOf(req)).toEqual(toolConversationBody);
  });

  it("sends system and developer messages as systemInstruction parts, in order, and not as contents", () => {
    const req = chat({
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: "Hi" },
        { role: "developer", content: [{ type: "text", text: "Answer in French." }] },
      ],
    });
    expect(bodyOf(req)).toEqual({
      contents: [{ role: "user", parts: [{ text: "Hi" }] }],
      systemInstruction: { parts: [{ text: "Be brief." }, { text: "Answer in French." }] },
    });
  });

  it("merges consecutive user turns and consecutive assistant turns into one content each", () => {
    const req = chat({
      messages: [
        { role: "user", content: "First question." },
        { role: "user", content: "Second question." },
        { role: "assistant", content: "First answer." },
        { role: "assistant", content: "Second answer." },
        { role: "user", content: "Thanks." },
      ],
    });
    expect(bodyOf(req)).toEqual({
      contents: [
        { role: "user", parts: [{ text: "First question." }, { text: "Second question." }] },
        { role: "model", parts: [{ text: "First answer." }, { text: "Second answer." }] },
        { role: "user", parts: [{ text: "Thanks." }] },
      ],
    });
  });

  it("drops empty text and assistant messages without content instead of sending empty parts", () => {
    const req = chat({
      messages: [
        { role: "user", content: "Hi" },
        { role: "assistant", content: null },
        { role: "user", content: [{ type: "text", text: "" }, { type: "text", text: "Still there?" }] },
      ],
    });
    expect(bodyOf(req)).toEqual({ contents: [{ role: "user", parts: [{ text: "Hi" }, { text: "Still there?" }] }] });
  });

  it("sends data URL images inline and remote images as fileData with a MIME type guessed from the extension", () => {
    const req = chat({
      messages: [
        {
          role: "user",
          content: [
            { type: "text", text: "Compare these." },
            { type: "image_url", image_url: { url: "data:image/png;base64,iVBORw0KGgoAAAANSUhEUg==" } },
            { type: "image_url", image_url: { url: "https://example.com/photos/cat.PNG" } },
            { type: "image_url", image_url: { url: "https://cdn.example.com/a/dog.webp?w=512#top" } },
            { type: "image_url", image_url: { url: "https://example.com/render?id=42", detail: "high" } },
            { type: "image_url", image_url: { url: "gs://switchyard-media/scans/page-1.jpeg" } },
          ],
        },
      ],
    });
    expect(bodyOf(req)).toEqual({
      contents: [
        {
          role: "user",
          parts: [
            { text: "Compare these." },
            { inlineData: { mimeType: "image/png", data: "iVBORw0KGgoAAAANSUhEUg==" } },
            { fileData: { mimeType: "image/png", fileUri: "https://example.com/photos/cat.PNG" } },
            { fileData: { mimeType: "image/webp", fileUri: "https://cdn.example.com/a/dog.webp?w=512#top" } },
            { fileData: { mimeType: "image/jpeg", fileUri: "https://example.com/render?id=42" } },
            { fileData: { mimeType: "image/jpeg", fileUri: "gs://switchyard-media/scans/page-1.jpeg" } },
          ],
        },
      ],
    });
  });

  it("sends input_audio and base64 file parts inline", () => {
    const req = chat({
      messages: [
        {
          role: "user",
          content: [
            { type: "input_audio", input_audio: { data: "UklGRiQAAABXQVZF", format: "wav" } },
            { type: "file", file: { filename: "invoice.pdf", file_data: "data:application/pdf;base64,JVBERi0xLjcK" } },
          ],
        },
      ],
    });
    expect(bodyOf(req)).toEqual({
      contents: [
        {
          role: "user",
          parts: [
            { inlineData: { mimeType: "audio/wav", data: "UklGRiQAAABXQVZF" } },
            { inlineData: { mimeType: "application/pdf", data: "JVBERi0xLjcK" } },
          ],
        },
      ],
    });
  });

  it("rejects a data URL image that is not base64-encoded", () => {
    const req = chat({
      messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "data:image/svg+xml,%3Csvg%3E" } }] }],
    });
    const error = caught(() => gemini.buildRequest(req, aiStudio, false));
    expect(error.code).toBe("bad_request");
    expect(error.message).toBe("image_url data URLs must be base64-encoded (data:<mime>;base64,<data>)");
  });

  it("rejects content parts Gemini cannot take rather than dropping them", () => {
    const req = chat({ messages: [{ role: "user", content: [{ type: "file", file: { file_id: "file-abc123" } }] }] });
    const error = caught(() => gemini.buildRequest(req, aiStudio, false));
    expect(error.code).toBe("bad_request");
    expect(error.message).toBe('Gemini does not accept content parts of type "file" in this form');
  });

  it("rejects a conversation made only of system messages", () => {
    const req = chat({ messages: [{ role: "system", content: "Be brief." }] });
    expect(caught(() => gemini.buildRequest(req, aiStudio, false)).code).toBe("bad_request");
  });
});

describe("gemini.buildRequest: tools", () => {
  it("removes JSON Schema keywords Gemini rejects at every depth and rewrites those it has an equivalent for", () => {
    const req = hi({
      tools: [
        {
          type: "function",
          function: {
            name: "create_event",
            description: "Create a calendar event",
            strict: true,
            parameters: {
              $schema: "https://json-schema.org/draft/2020-12/schema",
              $id: "https://example.com/create-event",
              type: "object",
              additionalProperties: false,
              properties: {
                title: { type: "string", minLength: 1, examples: ["Standup"] },
                starts_at: { type: "string", format: "date-time" },
                organiser: { type: "string", format: "email", description: "Organiser's address" },
                kind: { const: "meeting" },
                priority: { type: "integer", exclusiveMinimum: 0, maximum: 5, default: 3 },
                location: { anyOf: [{ $ref: "#/$defs/Place" }, { type: "null" }] },
                attendees: {
                  type: "array",
                  maxItems: 50,
                  items: {
                    type: "object",
                    additionalProperties: false,
                    patternProperties: { "^x-": { type: "string" } },
                    properties: {
                      email: { type: "string", format: "email" },
                      role: { oneOf: [{ type: "string", enum: ["required", "optional"] }, { type: "integer" }] },
                    },
                    required: ["email"],
                  },
                },
              },
              required: ["title", "starts_at"],
              $defs: {
                Place: {
                  type: "object",
                  additionalProperties: false,
                  properties: { name: { type: "string" }, room: { type: ["string", "integer"] } },
                },
              },
            },
          },
        },
      ],
    });
    expect(bodyOf(req)).toMatchObject({
      tools: [
        {
          functionDeclarations: [
            {
              name: "create_event",
              description: "Create a calendar event",
              parameters: {
                type: "object",
                properties: {
                  title: { type: "string", minLength: 1 },
                  starts_at: { type: "string", format: "date-time" },
                  organiser: { type: "string", description: "Organiser's address" },
                  kind: { type: "string", enum: ["meeting"] },
                  priority: { type: "integer", maximum: 5, default: 3 },
                  location: {
                    type: "object",
                    properties: { name: { type: "string" }, room: { anyOf: [{ type: "string" }, { type: "integer" }] } },
                    nullable: true,
                  },
                  attendees: {
                    type: "array",
                    maxItems: 50,
                    items: {
                      type: "object",
                      properties: {
                        email: { type: "string" },
                        role: { anyOf: [{ type: "string", enum: ["required", "optional"] }, { type: "integer" }] },
                      },
                      required: ["email"],
                    },
                  },
                },
                required: ["title", "starts_at"],
              },
            },
          ],
        },
      ],
    });
    const serialised = JSON.stringify(bodyOf(req));
    for (const rejected of [
      "$schema",
      "$id",
      "$defs",
      "$ref",
      "additionalProperties",
      "patternProperties",
      "examples",
      "exclusiveMinimum",
      "oneOf",
      "const",
      "strict",
      '"email"}',
    ]) {
      expect(serialised).not.toContain(rejected);
    }
  });

  it("bounds recursive $ref definitions instead of expanding them forever", () => {
    const req = hi({
      tools: [
        {
          type: "function",
          function: {
            name: "save_tree",
            parameters: {
              type: "object",
              properties: { root: { $ref: "#/definitions/Node" } },
              definitions: {
                Node: {
                  type: "object",
                  properties: { label: { type: "string" }, children: { type: "array", items: { $ref: "#/definitions/Node" } } },
                },
              },
            },
          },
        },
      ],
    });
    const serialised = JSON.stringify(bodyOf(req));
    expect(serialised).not.toContain("$ref");
    expect(serialised.split('"label"').length - 1).toBe(8);
  });

  it("states the object and array types a JSON Schema leaves implied", () => {
    const req = hi({
      tools: [
        {
          type: "function",
          function: {
            name: "tag",
            parameters: { properties: { tags: { items: { type: "string" } } } },
          },
        },
      ],
    });
    expect(bodyOf(req)).toMatchObject({
      tools: [
        {
          functionDeclarations: [
            { name: "tag", parameters: { type: "object", properties: { tags: { type: "array", items: { type: "string" } } } } },
          ],
        },
      ],
    });
  });

  it("omits parameters for a function that takes no arguments", () => {
    const req = hi({
      tools: [{ type: "function", function: { name: "get_time", parameters: { type: "object", properties: {} } } }],
    });
    expect(bodyOf(req)).toMatchObject({ tools: [{ functionDeclarations: [{ name: "get_time" }] }] });
    expect(JSON.stringify(bodyOf(req))).not.toContain("parameters");
  });

  it.each([
    ["auto", { mode: "AUTO" }],
    ["none", { mode: "NONE" }],
    ["required", { mode: "ANY" }],
    [{ type: "function", function: { name: "get_weather" } }, { mode: "ANY", allowedFunctionNames: ["get_weather"] }],
  ])("maps tool_choice %j to functionCallingConfig %j", (toolChoice, config) => {
    expect(bodyOf(hi({ tools: [weatherTool], tool_choice: toolChoice }))).toMatchObject({
      toolConfig: { functionCallingConfig: config },
    });
  });

  it("sends no toolConfig when the client leaves tool_choice unset", () => {
    expect(bodyOf(hi({ tools: [weatherTool] }))).not.toHaveProperty("toolConfig");
  });

  it("names each function response after the call with the same id in an earlier assistant message", () => {
    const req = chat({
      messages: [
        { role: "user", content: "Weather and time in Tokyo?" },
        {
          role: "assistant",
          content: null,
          tool_calls: [
            { id: "toolu_01", type: "function", function: { name: "get_weather", arguments: '{"city":"Tokyo"}' } },
            { id: "toolu_02", type: "function", function: { name: "get_time", arguments: '{"timezone":"Asia/Tokyo"}' } },
          ],
        },
        { role: "tool", tool_call_id: "toolu_02", content: '{"time":"21:04"}' },
        { role: "tool", tool_call_id: "toolu_01", content: [{ type: "text", text: "Clear, 12 °C" }] },
        { role: "user", content: "And tomorrow?" },
      ],
    });
    expect(bodyOf(req)).toEqual({
      contents: [
        { role: "user", parts: [{ text: "Weather and time in Tokyo?" }] },
        {
          role: "model",
          parts: [
            { functionCall: { name: "get_weather", args: { city: "Tokyo" } } },
            { functionCall: { name: "get_time", args: { timezone: "Asia/Tokyo" } } },
          ],
        },
        {
          role: "user",
          parts: [
            { functionResponse: { name: "get_time", response: { time: "21:04" } } },
            { functionResponse: { name: "get_weather", response: { content: "Clear, 12 °C" } } },
            { text: "And tomorrow?" },
          ],
        },
      ],
    });
  });

  it.each([
    ["a JSON array", "[1,2,3]"],
    ["a JSON number", "42"],
    ["a JSON string", '"done"'],
    ["plain text", "not json {"],
  ])("wraps a tool result that is %s as {content}", (_kind, content) => {
    const req = chat({
      messages: [
        { role: "user", content: "Go" },
        { role: "assistant", tool_calls: [{ id: "c1", type: "function", function: { name: "run", arguments: "{}" } }] },
        { role: "tool", tool_call_id: "c1", content },
      ],
    });
    expect(bodyOf(req)).toMatchObject({
      contents: [{}, {}, { role: "user", parts: [{ functionResponse: { name: "run", response: { content } } }] }],
    });
  });

  it("rejects a tool message whose tool_call_id no earlier assistant message called", () => {
    const req = chat({
      messages: [
        { role: "user", content: "Go" },
        { role: "tool", tool_call_id: "call_missing", content: "{}" },
      ],
    });
    const error = caught(() => gemini.buildRequest(req, aiStudio, false));
    expect(error.code).toBe("bad_request");
    expect(error.message).toBe(
      'Tool message answers tool_call_id "call_missing", which no earlier assistant message called; Gemini needs the function name',
    );
  });

  it("rejects assistant tool calls whose arguments are not valid JSON", () => {
    const req = chat({
      messages: [
        { role: "user", content: "Go" },
        { role: "assistant", tool_calls: [{ id: "c1", type: "function", function: { name: "run", arguments: '{"cmd": ls' } }] },
      ],
    });
    const error = caught(() => gemini.buildRequest(req, aiStudio, false));
    expect(error.code).toBe("bad_request");
    expect(error.status).toBe(400);
    expect(error.message).toBe('Arguments of the assistant\'s call to tool "run" are not valid JSON');
  });

  it("rejects assistant tool call arguments that are JSON but not an object", () => {
    const req = chat({
      messages: [
        { role: "user", content: "Go" },
        { role: "assistant", tool_calls: [{ id: "c1", type: "function", function: { name: "run", arguments: "[1]" } }] },
      ],
    });
    const error = caught(() => gemini.buildRequest(req, aiStudio, false));
    expect(error.code).toBe("bad_request");
    expect(error.message).toBe('Arguments of the assistant\'s call to tool "run" must be a JSON object');
  });

  it("treats empty tool call arguments as an empty object", () => {
    const req = chat({
      messages: [
        { role: "user", content: "Go" },
        { role: "assistant", tool_calls: [{ id: "c1", type: "function", function: { name: "get_time", arguments: "" } }] },
      ],
    });
    expect(bodyOf(req)).toMatchObject({ contents: [{}, { parts: [{ functionCall: { name: "get_time", args: {} } }] }] });
  });

  it("hands Gemini thought signatures back on the function calls they were issued for, ignoring other providers' blocks", () => {
    const req = chat({
      messages: [
        { role: "user", content: "Plan my trip" },
        {
          role: "assistant",
          content: "Checking flights and hotels.",
          tool_calls: [
            { id: "call_a", type: "function", function: { name: "search_flights", arguments: '{"to":"LIS"}' } },
            { id: "call_b", type: "function", function: { name: "search_hotels", arguments: '{"city":"Lisbon"}' } },
            { id: "call_c", type: "function", function: { name: "get_visa_rules", arguments: '{"country":"PT"}' } },
          ],
          reasoning_details: [
            { type: "reasoning.text", text: "Thinking about the trip", format: "google-gemini-v1" },
            { type: "reasoning.encrypted", data: "c2lnLWZvci1i", id: "call_b", format: "google-gemini-v1" },
            { type: "reasoning.encrypted", data: "YW50aHJvcGlj", id: "call_c", format: "anthropic-claude-v1" },
            { type: "reasoning.encrypted", data: "c2lnLWZvci1h", id: "call_a", format: "google-gemini-v1" },
            { type: "reasoning.encrypted", data: "c2lnLWZvci10ZXh0", format: "google-gemini-v1" },
          ],
        },
      ],
    });
    expect(bodyOf(req)).toMatchObject({
      contents: [
        {},
        {
          role: "model",
          parts: [
            { text: "Checking flights and hotels.", thoughtSignature: "c2lnLWZvci10ZXh0" },
            { functionCall: { name: "search_flights", args: { to: "LIS" } }, thoughtSignature: "c2lnLWZvci1h" },
            { functionCall: { name: "search_hotels", args: { city: "Lisbon" } }, thoughtSignature: "c2lnLWZvci1i" },
            { functionCall: { name: "get_visa_rules", args: { country: "PT" } } },
          ],
        },
      ],
    });
    expect(JSON.stringify(bodyOf(req))).not.toContain("YW50aHJvcGlj");
  });

  it("round-trips the signature of a parsed response onto the next request", () => {
    const completion = gemini.parseResponse(parallelFunctionCalls);
    const [weather, time] = completion.toolCalls;
    const req = chat({
      messages: [
        { role: "user", content: "Weather in Paris and time in Tokyo?" },
        { role: "assistant", content: completion.content, tool_calls: completion.toolCalls, reasoning_details: completion.reasoningDetails },
        { role: "tool", tool_call_id: weather?.id, content: '{"temperature_c":17}' },
        { role: "tool", tool_call_id: time?.id, content: '{"time":"21:04"}' },
      ],
    });
    expect(bodyOf(req)).toMatchObject({
      contents: [
        {},
        {
          role: "model",
          parts: [
            {
              functionCall: { name: "get_weather", args: { city: "Paris", unit: "celsius" } },
              thoughtSignature:
                "CiIBVKhc7oDyo1QDIY0CBjE0dj3Ppc1pN4bqfGEw9nW36dFkEm8KbAFUqFzuQ0O1uX6fEybm5e8QPkN3W2QhJ1xkS6b3d0c5f0FUhs8fGm8=",
            },
            { functionCall: { name: "get_time", args: { timezone: "Asia/Tokyo" } } },
          ],
        },
        {
          role: "user",
          parts: [
            { functionResponse: { name: "get_weather", response: { temperature_c: 17 } } },
            { functionResponse: { name: "get_time", response: { time: "21:04" } } },
          ],
        },
      ],
    });
  });
});

describe("gemini.buildRequest: generationConfig", () => {
  it("maps sampling parameters, preferring max_completion_tokens over max_tokens", () => {
    const req = hi({
      temperature: 0.7,
      top_p: 0.9,
      top_k: 40,
      max_tokens: 100,
      max_completion_tokens: 200,
      stop: "END",
      seed: 1234,
      presence_penalty: 0.5,
      frequency_penalty: -0.25,
    });
    expect(generationConfigOf(req)).toEqual({
      temperature: 0.7,
      topP: 0.9,
      topK: 40,
      maxOutputTokens: 200,
      stopSequences: ["END"],
      seed: 1234,
      presencePenalty: 0.5,
      frequencyPenalty: -0.25,
    });
  });

  it("uses max_tokens when max_completion_tokens is absent and passes stop arrays as they are", () => {
    expect(generationConfigOf(hi({ max_tokens: 64, stop: ["\n\n", "User:"] }))).toEqual({
      maxOutputTokens: 64,
      stopSequences: ["\n\n", "User:"],
    });
  });

  it("keeps a zero temperature", () => {
    expect(generationConfigOf(hi({ temperature: 0 }))).toEqual({ temperature: 0 });
  });

  it("sends no generationConfig when the client sets nothing", () => {
    expect(bodyOf(hi())).toEqual({ contents: [{ role: "user", parts: [{ text: "Hi" }] }] });
  });

  it("asks for JSON output for response_format json_object", () => {
    expect(generationConfigOf(hi({ response_format: { type: "json_object" } }))).toEqual({
      responseMimeType: "application/json",
    });
  });

  it("keeps a json_schema response format as a cleaned responseSchema", () => {
    const req = hi({
      response_format: {
        type: "json_schema",
        json_schema: {
          name: "city",
          strict: true,
          schema: {
            $schema: "http://json-schema.org/draft-07/schema#",
            type: "object",
            properties: {
              name: { type: "string" },
              population: { type: "integer", format: "int64" },
              founded: { type: ["string", "null"], format: "date" },
            },
            required: ["name", "population", "founded"],
            additionalProperties: false,
          },
        },
      },
    });
    expect(generationConfigOf(req)).toEqual({
      responseMimeType: "application/json",
      responseSchema: {
        type: "object",
        properties: {
          name: { type: "string" },
          population: { type: "integer", format: "int64" },
          founded: { type: "string", nullable: true },
        },
        required: ["name", "population", "founded"],
      },
    });
  });

  it("leaves response_format text as the default", () => {
    expect(bodyOf(hi({ response_format: { type: "text" } }))).not.toHaveProperty("generationConfig");
  });

  it.each([
    [{ reasoning: { effort: "minimal" } }, { thinkingBudget: 1024, includeThoughts: true }],
    [{ reasoning: { effort: "low" } }, { thinkingBudget: 1024, includeThoughts: true }],
    [{ reasoning: { effort: "medium" } }, { thinkingBudget: 8192, includeThoughts: true }],
    [{ reasoning: { effort: "high" } }, { thinkingBudget: 24576, includeThoughts: true }],
    [{ reasoning_effort: "medium" }, { thinkingBudget: 8192, includeThoughts: true }],
    [{ reasoning: { effort: "high" }, reasoning_effort: "low" }, { thinkingBudget: 24576, includeThoughts: true }],
    [{ reasoning: { max_tokens: 3000 } }, { thinkingBudget: 3000, includeThoughts: true }],
    [{ reasoning: { max_tokens: 3000, exclude: true } }, { thinkingBudget: 3000 }],
    [{ reasoning: { enabled: true } }, { includeThoughts: true }],
    [{ reasoning: { effort: "none" } }, { thinkingBudget: 0 }],
    [{ reasoning_effort: "none" }, { thinkingBudget: 0 }],
    [{ reasoning: { enabled: false, max_tokens: 2048 } }, { thinkingBudget: 0 }],
  ])("maps %j to thinkingConfig %j", (fields, thinkingConfig) => {
    expect(generationConfigOf(hi(fields))).toEqual({ thinkingConfig });
  });
});

describe("gemini.buildRequest: endpoint and credentials", () => {
  it("calls generateContent on AI Studio with the key in x-goog-api-key", () => {
    const request = gemini.buildRequest(hi(), aiStudio, false);
    expect(request.url).toBe("https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent");
    expect(request.headers).toEqual({ "content-type": "application/json", "x-goog-api-key": API_KEY });
  });

  it("calls streamGenerateContent with alt=sse when streaming", () => {
    expect(gemini.buildRequest(hi(), aiStudio, true).url).toBe(
      "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
    );
  });

  it("calls the Vertex AI publisher path with a Bearer token", () => {
    const request = gemini.buildRequest(hi(), vertex, true);
    expect(request.url).toBe(
      "https://europe-west4-aiplatform.googleapis.com/v1/projects/switchyard-prod/locations/europe-west4/publishers/google/models/gemini-2.5-pro:streamGenerateContent?alt=sse",
    );
    expect(request.headers).toEqual({ "content-type": "application/json", authorization: "Bearer ya29.vertex-access-token" });
  });

  it.each([
    ["AI Studio", aiStudio],
    ["Vertex AI", vertex],
  ])("never puts the %s credential in the URL or the body", (_name, target) => {
    for (const stream of [false, true]) {
      const request = gemini.buildRequest(hi(), target, stream);
      expect(request.url).not.toContain(target.apiKey);
      expect(new URL(request.url).searchParams.has("key")).toBe(false);
      expect(request.body).not.toContain(target.apiKey);
    }
  });

  it("adds the catalog's extra headers but never lets them replace the credential", () => {
    const target: UpstreamTarget = {
      ...aiStudio,
      options: { headers: { "x-goog-user-project": "switchyard-billing", "x-goog-api-key": "stale-key" } },
    };
    expect(gemini.buildRequest(hi(), target, false).headers).toEqual({
      "content-type": "application/json",
      "x-goog-user-project": "switchyard-billing",
      "x-goog-api-key": API_KEY,
    });
  });

  it("does not forward OpenAI or gateway fields that Gemini does not know", () => {
    const req = hi({
      stream: true,
      stream_options: { include_usage: true },
      n: 1,
      user: "user-42",
      parallel_tool_calls: false,
      logprobs: true,
      metadata: { trace: "x" },
      models: ["google/gemini-2.5-pro"],
      provider: { order: ["google-ai-studio"] },
      session_id: "s-1",
      transforms: ["middle-out"],
      usage: { include: true },
    });
    expect(bodyOf(req)).toEqual({ contents: [{ role: "user", parts: [{ text: "Hi" }] }] });
  });
});

describe("gemini.parseResponse", () => {
  it("reads text and usage from a plain answer", () => {
    expect(gemini.parseResponse(textResponse)).toEqual({
      content: "The capital of Australia is Canberra. It was purpose-built as a compromise between Sydney and Melbourne.",
      reasoning: null,
      reasoningDetails: [],
      toolCalls: [],
      nativeFinishReason: "STOP",
      finishReason: "stop",
      usage: { promptTokens: 9, completionTokens: 21, cachedTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0 },
    });
  });

  it("separates thought parts as reasoning and bills thoughts as completion tokens, with cached tokens inside the prompt", () => {
    expect(gemini.parseResponse(thinkingResponse)).toEqual({
      content: 'There are **3** r\'s in "strawberry".',
      reasoning:
        '**Counting the letters**\n\nI\'m going through "strawberry" one letter at a time: s-t-r-a-w-b-e-r-r-y. The letter r appears at positions 3, 8 and 9.\n\n',
      reasoningDetails: [],
      toolCalls: [],
      nativeFinishReason: "STOP",
      finishReason: "stop",
      usage: { promptTokens: 1520, completionTokens: 424, cachedTokens: 1024, cacheWriteTokens: 0, reasoningTokens: 412 },
    });
  });

  it("returns parallel function calls with distinct ids and the signature keyed by its call's id", () => {
    const completion = gemini.parseResponse(parallelFunctionCalls);
    const [weather, time] = completion.toolCalls;
    expect(weather?.id).toMatch(CALL_ID);
    expect(time?.id).toMatch(CALL_ID);
    expect(weather?.id).not.toBe(time?.id);
    expect(completion).toEqual({
      content: null,
      reasoning: null,
      reasoningDetails: [
        {
          type: "reasoning.encrypted",
          data: "CiIBVKhc7oDyo1QDIY0CBjE0dj3Ppc1pN4bqfGEw9nW36dFkEm8KbAFUqFzuQ0O1uX6fEybm5e8QPkN3W2QhJ1xkS6b3d0c5f0FUhs8fGm8=",
          id: weather?.id,
          format: "google-gemini-v1",
        },
      ],
      toolCalls: [
        { id: weather?.id, type: "function", function: { name: "get_weather", arguments: '{"city":"Paris","unit":"celsius"}' } },
        { id: time?.id, type: "function", function: { name: "get_time", arguments: '{"timezone":"Asia/Tokyo"}' } },
      ],
      nativeFinishReason: "STOP",
      finishReason: "tool_calls",
      usage: { promptTokens: 142, completionTokens: 112, cachedTokens: 0, cacheWriteTokens: 0, reasoningTokens: 74 },
    });
  });

  it("keeps Gemini's own function call id when it sends one, and empty args as {}", () => {
    const completion = gemini.parseResponse({
      candidates: [
        { content: { role: "model", parts: [{ functionCall: { id: "fc-7d1e", name: "get_time" } }] }, finishReason: "STOP" },
      ],
    });
    expect(completion.toolCalls).toEqual([{ id: "fc-7d1e", type: "function", function: { name: "get_time", arguments: "{}" } }]);
  });

  it("keeps a thought signature on a text part as a reasoning detail without a tool call id", () => {
    const completion = gemini.parseResponse({
      candidates: [
        { content: { role: "model", parts: [{ text: "Done.", thoughtSignature: "dGV4dC1zaWc=" }] }, finishReason: "STOP" },
      ],
    });
    expect(completion.content).toBe("Done.");
    expect(completion.reasoningDetails).toEqual([
      { type: "reasoning.encrypted", data: "dGV4dC1zaWc=", format: "google-gemini-v1" },
    ]);
  });

  it.each([
    ["STOP", "stop"],
    ["MAX_TOKENS", "length"],
    ["SAFETY", "content_filter"],
    ["RECITATION", "content_filter"],
    ["BLOCKLIST", "content_filter"],
    ["PROHIBITED_CONTENT", "content_filter"],
    ["SPII", "content_filter"],
    ["IMAGE_SAFETY", "content_filter"],
    ["MALFORMED_FUNCTION_CALL", "error"],
    ["OTHER", "stop"],
    ["FINISH_REASON_UNSPECIFIED", "stop"],
    ["LANGUAGE", "stop"],
  ])("maps finishReason %s to %s and keeps the native reason", (native, normalised) => {
    const completion = gemini.parseResponse({
      candidates: [{ content: { role: "model", parts: [{ text: "…" }] }, finishReason: native }],
    });
    expect(completion.nativeFinishReason).toBe(native);
    expect(completion.finishReason).toBe(normalised);
  });

  it("reports a safety stop that carries no content as content_filter with null content", () => {
    const completion = gemini.parseResponse({
      candidates: [{ finishReason: "SAFETY", index: 0, safetyRatings: [{ category: "HARM_CATEGORY_HARASSMENT", probability: "HIGH", blocked: true }] }],
      usageMetadata: { promptTokenCount: 12, totalTokenCount: 12 },
    });
    expect(completion).toEqual({
      content: null,
      reasoning: null,
      reasoningDetails: [],
      toolCalls: [],
      nativeFinishReason: "SAFETY",
      finishReason: "content_filter",
      usage: { promptTokens: 12, completionTokens: 0, cachedTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0 },
    });
  });

  it("reports a blocked prompt as content_filter with the block reason as native finish reason", () => {
    expect(gemini.parseResponse(blockedPrompt)).toEqual({
      content: null,
      reasoning: null,
      reasoningDetails: [],
      toolCalls: [],
      nativeFinishReason: "PROHIBITED_CONTENT",
      finishReason: "content_filter",
      usage: { promptTokens: 31, completionTokens: 0, cachedTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0 },
    });
  });

  it("counts tool-use prompt tokens as prompt tokens", () => {
    const completion = gemini.parseResponse({
      candidates: [{ content: { role: "model", parts: [{ text: "ok" }] }, finishReason: "STOP" }],
      usageMetadata: { promptTokenCount: 50, toolUsePromptTokenCount: 20, candidatesTokenCount: 2, totalTokenCount: 72 },
    });
    expect(completion.usage).toEqual({ promptTokens: 70, completionTokens: 2, cachedTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0 });
  });

  it.each([
    ["an empty object", {}],
    ["null", null],
    ["a string", "<html>502</html>"],
    ["candidates that are not an array", { candidates: { content: {} } }],
    ["a function call without a name", { candidates: [{ content: { parts: [{ functionCall: { args: {} } }] } }] }],
    ["negative token counts", { candidates: [], promptFeedback: { blockReason: "SAFETY" }, usageMetadata: { promptTokenCount: -1 } }],
  ])("rejects %s as an invalid upstream response", (_kind, body) => {
    const error = caught(() => gemini.parseResponse(body));
    expect(error.code).toBe("upstream_error");
    expect(error.metadata).toEqual({ error_type: "invalid_response" });
  });
});

const decodeSSE = (chunks: Uint8Array[]): Promise<StreamEvent[]> => decodeChunks(gemini, chunks);

function splitAt(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [0, ...[...new Set(cuts)].sort((a, b) => a - b), bytes.length];
  return points.slice(1).map((end, i) => bytes.slice(points[i], end));
}

/** Generated tool call ids differ per run; replace them by their order of first appearance. */
function withStableIds(events: StreamEvent[]): unknown {
  const seen = new Map<string, string>();
  const text = JSON.stringify(events).replace(/call_[0-9a-f]{24}/g, (id) => {
    if (!seen.has(id)) seen.set(id, `<call ${seen.size}>`);
    return seen.get(id) ?? id;
  });
  return JSON.parse(text);
}

function usage(promptTokens: number, completionTokens: number, reasoningTokens: number): StreamEvent {
  return { type: "usage", usage: { promptTokens, completionTokens, cachedTokens: 0, cacheWriteTokens: 0, reasoningTokens } };
}

const toolStreamEvents = [
  {
    type: "delta",
    reasoning:
      "**Planning the lookups**\n\nThe user wants the weather in Paris and in São Paulo, so I'll call get_weather once per city.",
  },
  usage(118, 60, 60),
  { type: "delta", content: "Let me check " },
  usage(118, 63, 60),
  { type: "delta", content: "both cities — one moment." },
  usage(118, 70, 60),
  {
    type: "delta",
    reasoningDetails: [{ type: "reasoning.encrypted", data: SIGNATURE, id: "<call 0>", format: "google-gemini-v1" }],
    toolCalls: [{ index: 0, id: "<call 0>", name: "get_weather", arguments: '{"city":"Paris","unit":"celsius"}' }],
  },
  usage(118, 88, 60),
  {
    type: "delta",
    toolCalls: [{ index: 1, id: "<call 1>", name: "get_weather", arguments: '{"city":"São Paulo","unit":"celsius"}' }],
  },
  { type: "finish", nativeFinishReason: "STOP", finishReason: "tool_calls" },
  usage(118, 106, 60),
];

describe("gemini stream decoder", () => {
  const encoder = new TextEncoder();

  it("turns text, thoughts and two whole function calls into deltas with tool indexes 0 and 1, a tool_calls finish and usage", async () => {
    const events = await decodeSSE([encoder.encode(streamToolCalls)]);
    expect(withStableIds(events)).toEqual(toolStreamEvents);
    const ids = events.flatMap((event) => (event.type === "delta" ? (event.toolCalls ?? []).map((call) => call.id) : []));
    expect(ids).toHaveLength(2);
    for (const id of ids) expect(id).toMatch(CALL_ID);
  });

  it("decodes identically however the upstream bytes are split, including inside UTF-8 sequences", async () => {
    const bytes = encoder.encode(streamToolCalls);
    const expected = withStableIds(await decodeSSE([bytes]));
    for (let cut = 1; cut < bytes.length; cut += 7) {
      expect(withStableIds(await decodeSSE(splitAt(bytes, [cut])))).toEqual(expected);
    }
    const oneBytePieces = Array.from(bytes, (byte) => Uint8Array.of(byte));
    expect(withStableIds(await decodeSSE(oneBytePieces))).toEqual(expected);
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(fc.integer({ min: 1, max: bytes.length - 1 }), { maxLength: 60 }), async (cuts) => {
        expect(withStableIds(await decodeSSE(splitAt(bytes, cuts)))).toEqual(expected);
      }),
      { numRuns: 150 },
    );
  });

  it("reports an error object inside the stream as an error event after the text already sent", async () => {
    expect(await decodeSSE([encoder.encode(streamError)])).toEqual([
      { type: "delta", content: "Once upon a time" },
      usage(7, 4, 0),
      { type: "error", message: "The model is overloaded. Please try again later.", errorType: "provider_unavailable" },
    ]);
  });

  it.each([
    ["RESOURCE_EXHAUSTED", 429, "rate_limit_exceeded"],
    ["UNAVAILABLE", 503, "provider_unavailable"],
    ["INVALID_ARGUMENT", 400, "invalid_request"],
    ["PERMISSION_DENIED", 403, "authentication"],
    ["UNAUTHENTICATED", 401, "authentication"],
    ["DEADLINE_EXCEEDED", 504, "timeout"],
    ["INTERNAL", 500, "server"],
    [undefined, undefined, "server"],
  ])("maps a stream error with status %s to %s", (status, code, errorType) => {
    const decoder = gemini.createStreamDecoder();
    const data = JSON.stringify({ error: { code, message: "Something went wrong", status } });
    expect(decoder.decode({ data })).toEqual([
      { type: "error", message: "Something went wrong", errorType },
    ]);
  });

  it("reports a prompt blocked mid-stream as a content_filter finish", () => {
    const decoder = gemini.createStreamDecoder();
    const data = JSON.stringify({ promptFeedback: { blockReason: "SAFETY" }, usageMetadata: { promptTokenCount: 9, totalTokenCount: 9 } });
    expect(decoder.decode({ data })).toEqual([
      { type: "finish", nativeFinishReason: "SAFETY", finishReason: "content_filter" },
      usage(9, 0, 0),
    ]);
  });

  it("finishes with length on MAX_TOKENS even when the final chunk has no parts", () => {
    const decoder = gemini.createStreamDecoder();
    const data = JSON.stringify({ candidates: [{ content: { role: "model" }, finishReason: "MAX_TOKENS", index: 0 }] });
    expect(decoder.decode({ data })).toEqual([
      { type: "finish", nativeFinishReason: "MAX_TOKENS", finishReason: "length" },
    ]);
  });

  it("numbers tool calls from 0 in every stream, so decoders share no state", () => {
    const data = JSON.stringify({ candidates: [{ content: { parts: [{ functionCall: { name: "ping", args: {} } }] } }] });
    for (const decoder of [gemini.createStreamDecoder(), gemini.createStreamDecoder()]) {
      const [event] = decoder.decode({ data });
      expect(event?.type === "delta" ? event.toolCalls?.map((call) => call.index) : undefined).toEqual([0]);
    }
  });

  it("ignores empty data lines", () => {
    expect(gemini.createStreamDecoder().decode({ data: "  " })).toEqual([]);
  });

  it.each([
    ["truncated JSON", '{"candidates":[{"content":'],
    ["not JSON", "[DONE"],
    ["a chunk of the wrong shape", '{"candidates":{"0":{}}}'],
  ])("throws an invalid_response upstream error on %s", (_kind, data) => {
    const error = caught(() => gemini.createStreamDecoder().decode({ data }));
    expect(error.code).toBe("upstream_error");
    expect(error.metadata).toEqual({ error_type: "invalid_response" });
  });
});

describe("gemini.parseError", () => {
  it.each([
    [
      "a quota error",
      429,
      rateLimit,
      "You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.",
      "rate_limit_exceeded",
    ],
    ["an invalid AI Studio key", 400, apiKeyInvalid, "API key not valid. Please pass a valid API key.", "authentication"],
    [
      "an over-long prompt",
      400,
      contextLength,
      "The input token count (1249852) exceeds the maximum number of tokens allowed (1048576).",
      "context_length_exceeded",
    ],
    [
      "a Vertex permission error wrapped in an array",
      403,
      vertexPermissionDenied,
      "Permission 'aiplatform.endpoints.predict' denied on resource '//aiplatform.googleapis.com/projects/switchyard-prod/locations/europe-west4/publishers/google/models/gemini-2.5-flash' (or it may not exist).",
      "authentication",
    ],
    ["an overloaded model", 503, overloaded, "The model is overloaded. Please try again later.", "provider_unavailable"],
    ["an unsupported location", 400, locationUnsupported, "User location is not supported for the API use.", "invalid_request"],
    [
      "an unknown model",
      404,
      modelNotFound,
      "models/gemini-1.0-pro is not found for API version v1beta, or is not supported for generateContent. Call ListModels to see the list of available models and their supported methods.",
      "not_found",
    ],
  ])("keeps Google's message and classifies %s", (_kind, status, body, message, errorType) => {
    expect(gemini.parseError(status, body)).toEqual({ message, errorType });
  });

  it("classifies a deadline by Google's status even when the HTTP status says less", () => {
    const body = JSON.stringify({ error: { code: 500, message: "Deadline expired before operation could complete.", status: "DEADLINE_EXCEEDED" } });
    expect(gemini.parseError(500, body)).toEqual({ message: "Deadline expired before operation could complete.", errorType: "timeout" });
  });

  it("falls back to the HTTP status for a body that is not Google's JSON", () => {
    expect(gemini.parseError(502, "<html><body>Bad Gateway</body></html>")).toEqual({
      message: "<html><body>Bad Gateway</body></html>",
      errorType: "provider_unavailable",
    });
    expect(gemini.parseError(500, "")).toEqual({ message: "HTTP 500", errorType: "server" });
  });
});
