/**
 * The zod-free check for common chat bodies (schemas/plain-chat-request) must never accept what
 * `chatRequestSchema` would reject or change, and must accept the bodies clients usually send,
 * or it costs a second validation for nothing.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { chatRequestSchema } from "../../../src/schemas/openai";
import { plainChatRequest } from "../../../src/schemas/plain-chat-request";
import { agreesWithSchema } from "./agrees-with-schema";

const SAFE = Number.MAX_SAFE_INTEGER;
const x = (n: number) => "x".repeat(n);
const many = (n: number, value: unknown) => Array.from({ length: n }, () => value);

/** Every JSON type, and the numbers and lengths the schema draws lines at. */
const anyValue = fc.oneof(
  fc.constantFrom(null, true, false, 0, -0, 1, -1, 2, -2, 0.5, 16, 256, SAFE, SAFE + 1, -SAFE - 2, 1e308, Number.NaN, Infinity, -Infinity),
  fc.double(),
  fc.integer(),
  fc.string({ maxLength: 4 }),
  fc.array(fc.oneof(fc.string({ maxLength: 3 }), fc.integer()), { maxLength: 3 }),
  fc.constantFrom([], {}, { include_usage: true }, { other: 1 }, ["a", "b"]),
);

/** Per field: values on and just past each of its bounds, and wrong types. */
const EDGES: Record<string, unknown[]> = {
  model: ["", "m", x(256), x(257), 1, null],
  models: [[], ["m"], many(16, "m"), many(17, "m"), [""], [x(256)], [x(257)], "m", null],
  stream: [true, false, null, "true", 0],
  stream_options: [{}, { include_usage: true }, { include_usage: null }, { include_usage: "x" }, { x: 1 }, null, []],
  max_tokens: [1, 0, -1, 1.5, SAFE, SAFE + 1, null, "1", Number.NaN, Infinity],
  max_completion_tokens: [1, 0, 1.5, SAFE, SAFE + 1, null, "1", Infinity],
  temperature: [0, -0, 2, 1.5, 2.0000001, -1e-9, null, Number.NaN, Infinity, "1"],
  top_p: [0, 1, 0.5, 1.0000001, -1e-9, null, Number.NaN, -Infinity],
  top_k: [0, 3, -1, 1.5, SAFE + 1, null, "3"],
  frequency_penalty: [-2, 2, 0, -2.0000001, 2.0000001, null, Number.NaN, -Infinity],
  presence_penalty: [-2, 2, 0, -2.0000001, 2.0000001, null, Infinity],
  stop: ["x", "", [], many(16, "s"), many(17, "s"), [1], null, 1],
  seed: [0, -1, 1.5, -SAFE, -SAFE - 2, SAFE, SAFE + 1, null, "1"],
  n: [1, 2, 0, null, "1", 1.0000001],
  parallel_tool_calls: [true, false, null, "x"],
  user: ["", x(128), x(129), 1, null],
  session_id: ["", x(256), x(257), null, 1],
  tools: [[]],
  tool_choice: ["auto"],
  provider: [{}],
  reasoning: [{}],
  unknown_field: [1],
  constructor: [1],
  toString: ["x"],
};
const FIELD_NAMES = Object.keys(EDGES);

/** A message that may be anything a client gets wrong: role, content type, one extra key. */
const doubtfulMessage = fc
  .tuple(
    fc.constantFrom("system", "developer", "user", "assistant", "tool", "function", "", 1),
    fc.oneof(fc.string({ maxLength: 8 }), fc.constant(null), fc.constant([{ type: "text", text: "hi" }]), fc.integer()),
    fc.option(fc.constantFrom<[string, unknown]>(["name", "n"], ["name", 1], ["name", null], ["tool_call_id", "c"], ["extra", true]), { nil: undefined }),
  )
  .map(([role, content, extra]) => ({ role, content, ...(extra ? { [extra[0]]: extra[1] } : {}) }));

/** A message missing its role or its content (an assistant's content may be null, not absent). */
const incompleteMessage = fc.constantFrom<Record<string, unknown>>({ content: "hi" }, { content: null }, { role: "user" }, { role: "assistant" }, { name: "n", content: "hi" });

const userMessage = fc.record({ role: fc.constantFrom("system", "developer", "user"), content: fc.string() }, { noNullPrototype: true });

/** What clients usually send: always plain, whatever the values within the schema's bounds. */
const commonBody = fc.record(
  {
    model: fc.string({ minLength: 1, maxLength: 256 }),
    messages: fc.array(
      fc.oneof(
        userMessage,
        fc.record({ role: fc.constant("assistant"), content: fc.option(fc.string(), { nil: null }) }, { noNullPrototype: true }),
        fc.record({ role: fc.constant("user"), content: fc.string(), name: fc.string() }, { noNullPrototype: true }),
      ),
      { minLength: 1, maxLength: 4 },
    ),
    stream: fc.option(fc.boolean(), { nil: null }),
    stream_options: fc.record({ include_usage: fc.boolean() }, { requiredKeys: [], noNullPrototype: true }),
    max_tokens: fc.integer({ min: 1, max: 1_000_000 }),
    temperature: fc.double({ min: 0, max: 2, noNaN: true }),
    top_p: fc.double({ min: 0, max: 1, noNaN: true }),
    stop: fc.oneof(fc.string(), fc.array(fc.string(), { maxLength: 16 })),
    seed: fc.integer(),
    user: fc.string({ maxLength: 128 }),
  },
  { requiredKeys: ["messages"], noNullPrototype: true },
);

/** A common body with one to three fields set to an edge or anything, and sometimes doubtful messages. */
const anyBody = fc
  .tuple(
    commonBody,
    fc.array(
      fc.constantFrom(...FIELD_NAMES).chain((name) => fc.tuple(fc.constant(name), fc.oneof(fc.constantFrom(...(EDGES[name] ?? [null])), anyValue))),
      { minLength: 1, maxLength: 3 },
    ),
    fc.option(fc.array(fc.oneof(userMessage, doubtfulMessage, incompleteMessage), { minLength: 1, maxLength: 2 }), { nil: undefined }),
  )
  .map(([body, fields, messages]) => {
    const out: Record<string, unknown> = { ...body };
    for (const [name, value] of fields) Object.defineProperty(out, name, { value, enumerable: true, writable: true, configurable: true });
    if (messages !== undefined) out.messages = messages;
    return out;
  });

describe("plainChatRequest", () => {
  it("accepts only what the chat schema accepts, and exactly as the schema would return it", () => {
    const { accepted } = agreesWithSchema(anyBody, plainChatRequest, chatRequestSchema, 5000);
    // The generator must reach the accepting branch, or the property says nothing.
    expect(accepted).toBeGreaterThan(0);
  });

  it("accepts the bodies clients usually send", () => {
    fc.assert(
      fc.property(commonBody, (body) => {
        expect(chatRequestSchema.safeParse(body).success).toBe(true);
        expect(plainChatRequest(body)).toBe(body);
      }),
      { numRuns: 1000 },
    );
  });

  it("leaves tools, content parts, tool messages and unknown fields to zod", () => {
    const base = { model: "m", messages: [{ role: "user", content: "hi" }] };
    expect(plainChatRequest(base)).toBe(base);
    expect(plainChatRequest({ ...base, tools: [] })).toBeUndefined();
    expect(plainChatRequest({ ...base, vendor_field: 1 })).toBeUndefined();
    expect(plainChatRequest({ model: "m", messages: [{ role: "user", content: [{ type: "text", text: "hi" }] }] })).toBeUndefined();
    expect(plainChatRequest({ model: "m", messages: [{ role: "tool", content: "x", tool_call_id: "c" }] })).toBeUndefined();
    expect(plainChatRequest(JSON.parse('{"messages":[{"role":"user","content":"hi"}],"__proto__":{"x":1}}'))).toBeUndefined();
    expect(plainChatRequest(JSON.parse('{"messages":[{"role":"user","content":"hi"}],"constructor":1}'))).toBeUndefined();
  });

  it("leaves every body the schema rejects to zod, so zod writes the 400", () => {
    for (const body of [
      { model: "m" },
      { model: "m", messages: [] },
      { model: "", messages: [{ role: "user", content: "hi" }] },
      { messages: [{ role: "user", content: "hi" }], max_tokens: 0 },
      { messages: [{ role: "user", content: "hi" }], max_tokens: 1.5 },
      { messages: [{ role: "user", content: "hi" }], temperature: 2.5 },
      { messages: [{ role: "user", content: null }] },
      { messages: [{ role: "user", content: "hi" }], n: 2 },
      [],
      null,
    ]) {
      expect(plainChatRequest(body)).toBeUndefined();
      expect(chatRequestSchema.safeParse(body).success).toBe(false);
    }
  });
});
