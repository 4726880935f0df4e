import { describe, expect, it } from "vitest";
import { planRoute } from "../../../src/routing/plan";
import { anyKey, catalogOf, chatRequest, modelOf, named } from "./fixtures";

const M = "acme/model";
// small: 8k output, 16k context; big: 100k output, 200k context; open: no output cap.
const catalog = catalogOf(
  modelOf(M, [
    { provider: "small", maxOutputTokens: 8192, contextLength: 16_384 },
    { provider: "big", maxOutputTokens: 100_000, contextLength: 200_000 },
    { provider: "open", maxOutputTokens: null, contextLength: 32_768 },
  ]),
);

/** A prompt of about `tokens` tokens by the gateway's four-characters-a-token estimate. */
const promptOf = (tokens: number) => [{ role: "user", content: "x".repeat(tokens * 4 - 4) }];

function plan(body: Record<string, unknown>) {
  const p = planRoute(catalog, [M], chatRequest(body), anyKey);
  return { kept: p.candidates.map((c) => c.endpoint.providerSlug).sort(), excluded: p.excluded.map((e) => [e.provider, e.constraint, e.reason]) };
}

describe("output and context length filters", () => {
  it.each(named([
    { name: "no max_tokens and a short prompt: every endpoint", body: {}, kept: ["big", "open", "small"], excluded: [] },
    { name: "max_tokens at an endpoint's cap is allowed", body: { max_tokens: 8192 }, kept: ["big", "open", "small"], excluded: [] },
    {
      name: "max_tokens above an endpoint's output cap excludes it, naming both numbers",
      body: { max_tokens: 100_000 },
      kept: ["big"],
      excluded: [
        ["small", "max_tokens", "max_tokens 100000 exceeds the endpoint's 8192 output tokens"],
        ["open", "context length", "~2 prompt tokens + max_tokens 100000 exceed the endpoint's 32768-token context"],
      ],
    },
    {
      name: "max_completion_tokens is checked the same way and named as sent",
      body: { max_completion_tokens: 9000 },
      kept: ["big", "open"],
      excluded: [["small", "max_tokens", "max_completion_tokens 9000 exceeds the endpoint's 8192 output tokens"]],
    },
    {
      name: "prompt plus max_tokens above the context excludes an endpoint whose output cap allows it",
      body: { max_tokens: 8000, messages: promptOf(9000) },
      kept: ["big", "open"],
      excluded: [["small", "context length", "~9000 prompt tokens + max_tokens 8000 exceed the endpoint's 16384-token context"]],
    },
    {
      name: "a prompt alone larger than the context excludes it",
      body: { messages: promptOf(40_000) },
      kept: ["big"],
      excluded: [
        ["small", "context length", "~40000 prompt tokens exceed the endpoint's 16384-token context"],
        ["open", "context length", "~40000 prompt tokens exceed the endpoint's 32768-token context"],
      ],
    },
    {
      name: "a prompt that exactly fills the context with max_tokens is allowed",
      body: { max_tokens: 8192, messages: promptOf(8192) },
      kept: ["big", "open", "small"],
      excluded: [],
    },
  ]))("%s", (_name, { body, kept, excluded }) => {
    expect(plan(body)).toEqual({ kept, excluded });
  });

  it("counts tool definitions in the prompt estimate", () => {
    const tools = [{ type: "function", function: { name: "f", description: "d".repeat(70_000) } }];
    expect(plan({ tools }).kept).toEqual(["big", "open"]);
  });
});
