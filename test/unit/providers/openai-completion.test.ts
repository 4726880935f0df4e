/**
 * Non-streaming OpenAI-compatible answers: the hand-read path for plain text completions
 * (providers/openai-completion `plainCompletion`) must give exactly what the schema path gives,
 * and must leave to the schema everything it does not read the same way.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { completionFromSchema, parseOpenAICompletion, plainCompletion } from "../../../src/providers/openai-completion";
import { GatewayError } from "../../../src/errors";
import responseDeepSeekReasoner from "../../fixtures/openai/response-deepseek-reasoner.json";
import responseNoUsage from "../../fixtures/openai/response-no-usage.json";
import responseParallelToolCalls from "../../fixtures/openai/response-parallel-tool-calls.json";
import responseText from "../../fixtures/openai/response-text.json";

const SAFE = Number.MAX_SAFE_INTEGER;
/** Token counts on and past the schema's bounds, and wrong types. */
const count = fc.oneof(
  { arbitrary: fc.nat(), weight: 4 },
  fc.constantFrom<unknown>(0, -0, -1, 1.5, SAFE, SAFE + 1, Number.NaN, Infinity, null, undefined, "3", {}),
);
const optional = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined });

const details = (...keys: string[]) =>
  fc.oneof(
    fc.constantFrom<unknown>(undefined, null, 0, [], "x"),
    fc.dictionary(fc.constantFrom(...keys, "audio_tokens"), count, { maxKeys: 3, noNullPrototype: true }),
  );

const usage = fc.oneof(
  fc.constantFrom<unknown>(undefined, null, 0, "usage", [], {}),
  fc.record(
    {
      prompt_tokens: count,
      completion_tokens: count,
      total_tokens: count,
      prompt_tokens_details: details("cached_tokens", "cache_write_tokens"),
      completion_tokens_details: details("reasoning_tokens"),
      prompt_cache_hit_tokens: count,
    },
    { requiredKeys: [], noNullPrototype: true },
  ),
);

const message = fc.record(
  {
    role: fc.constantFrom<unknown>("assistant", 1),
    content: fc.oneof(fc.string({ maxLength: 6 }), fc.constantFrom<unknown>(null, undefined, 1, [], [{ type: "text", text: "x" }])),
    refusal: fc.constantFrom<unknown>(null, "no"),
    annotations: fc.constant([]),
    reasoning: fc.constantFrom<unknown>(null, undefined, "thinking", 1),
    reasoning_content: fc.constantFrom<unknown>(null, undefined, "thinking"),
    reasoning_details: fc.constantFrom<unknown>(null, undefined, [], [{ type: "reasoning.text", text: "x" }], [{}]),
    tool_calls: fc.constantFrom<unknown>(null, undefined, [], [{ id: "c", function: { name: "f" } }], [{ id: 1 }]),
  },
  { requiredKeys: [], noNullPrototype: true },
);

/** What most answers carry: text or nothing, a refusal field, annotations. */
const plainMessage = fc.record(
  { role: fc.constant("assistant"), content: fc.option(fc.string({ maxLength: 6 }), { nil: null }), refusal: fc.constant(null), annotations: fc.constant([]) },
  { requiredKeys: ["content"], noNullPrototype: true },
);

const choice = fc.record(
  {
    index: fc.nat(2),
    message: fc.oneof({ arbitrary: plainMessage, weight: 3 }, message, fc.constantFrom<unknown>(null, "hi", [])),
    finish_reason: fc.oneof(fc.constantFrom<unknown>("stop", "length", "tool_calls", "content_filter", "end_turn", "weird", null, undefined, 1)),
    logprobs: fc.constant(null),
  },
  { requiredKeys: ["message"], noNullPrototype: true },
);

const response = fc.record(
  {
    id: fc.constant("chatcmpl-1"),
    object: fc.constant("chat.completion"),
    choices: fc.oneof(fc.array(choice, { minLength: 1, maxLength: 1 }), fc.array(choice, { maxLength: 3 }), fc.constantFrom<unknown>(null, {}, "x")),
    usage,
  },
  { requiredKeys: ["choices"], noNullPrototype: true },
).map((r) => JSON.parse(JSON.stringify(r)) as unknown); // as it arrives: JSON (NaN and the like are tested raw below)

/** The schema's answer, or the error it throws. */
function viaSchema(json: unknown) {
  try {
    return completionFromSchema(json);
  } catch (error) {
    return error;
  }
}

describe("plainCompletion", () => {
  it("gives exactly the schema's completion whenever it answers", () => {
    let answered = 0;
    fc.assert(
      fc.property(response, (json) => {
        const plain = plainCompletion(json);
        if (plain === undefined) return;
        answered++;
        expect(plain).toStrictEqual(viaSchema(json));
      }),
      { numRuns: 5000 },
    );
    expect(answered).toBeGreaterThan(100);
  });

  it("takes the same, unbroken by JSON: NaN, infinities and unsafe counts go to the schema", () => {
    const base = { choices: [{ message: { content: "hi" }, finish_reason: "stop" }] };
    for (const bad of [Number.NaN, Infinity, -1, 1.5, SAFE + 1, "3"]) {
      for (const json of [
        { ...base, usage: { prompt_tokens: bad } },
        { ...base, usage: { completion_tokens: 1, prompt_tokens_details: { cached_tokens: bad } } },
        { ...base, usage: { completion_tokens_details: { reasoning_tokens: bad } } },
        { ...base, usage: { prompt_cache_hit_tokens: bad } },
      ]) {
        expect(plainCompletion(json)).toBeUndefined();
        expect(viaSchema(json)).toBeInstanceOf(GatewayError);
      }
    }
  });

  it("reads the answers most calls get, and leaves tool calls and reasoning to the schema", () => {
    expect(plainCompletion(responseText)).toStrictEqual(completionFromSchema(responseText));
    expect(plainCompletion(responseText)?.usage).toEqual({ promptTokens: 1342, completionTokens: 23, cachedTokens: 1152, cacheWriteTokens: 0, reasoningTokens: 0 });
    expect(plainCompletion(responseNoUsage)).toStrictEqual(completionFromSchema(responseNoUsage));
    expect(plainCompletion({ choices: [{ message: { content: "x" } }], usage: {} })?.usage).toEqual({ promptTokens: 0, completionTokens: 0, cachedTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0 });
    expect(plainCompletion(responseParallelToolCalls)).toBeUndefined();
    expect(plainCompletion(responseDeepSeekReasoner)).toBeUndefined();
    expect(parseOpenAICompletion(responseParallelToolCalls).toolCalls.length).toBeGreaterThan(1);
  });

  it("still refuses what is not a completion, through the schema's error", () => {
    for (const json of [{}, { choices: [] }, { choices: [{}] }, { choices: [{ message: { content: 1 } }] }, "x", null]) {
      expect(plainCompletion(json)).toBeUndefined();
      expect(() => parseOpenAICompletion(json)).toThrow(GatewayError);
    }
  });
});
