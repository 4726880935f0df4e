/**
 * Malformed chat requests, generated on purpose: every one must be refused with a 4xx in
 * OpenRouter's error shape, never a 5xx, and none may reach a provider.
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, expectError, mswServer, provision, recordUpstream } from "../helpers";

const PATH = "/api/v1/chat/completions";
const TIMEOUT_MS = 60_000;

let key: string;
const upstream = recordUpstream();
/** Every outbound request msw saw, handled or not. */
let outbound = 0;

beforeAll(async () => {
  mswServer.listen({ onUnhandledRequest: "error" });
  mswServer.use(upstream.handler);
  mswServer.events.on("request:start", () => {
    outbound++;
  });
  key = await provision("ws-fuzz");
});
afterAll(() => mswServer.close());

function post(body: string, contentType = "application/json"): Promise<Response> {
  return call(PATH, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": contentType },
    body,
  });
}

function expectNoUpstream(): void {
  expect(upstream.hits).toEqual([]);
  expect(outbound).toBe(0);
}

/** What JSON.parse rejects, also after the BOM a UTF-8 decoder strips. */
function isNotJson(text: string): boolean {
  for (const candidate of [text, text.replace(/^\uFEFF/, "")]) {
    try {
      JSON.parse(candidate);
      return false;
    } catch {
      // Rejected, as wanted.
    }
  }
  return true;
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** The 400 message names `path` (or a field inside it) as the first problem. */
function namesField(message: string, path: string): boolean {
  return new RegExp(`^Invalid request at \`${escapeRegExp(path)}[.\`]`).test(message);
}

// ---- valid requests, the raw material ----

type Json = fc.JsonValue;
type Body = Record<string, Json>;
/** A chat request: `messages` may hold a malformed entry once corrupted. */
type ChatBody = Body & { messages: Json[] };

const MODELS = ["openai/gpt-4o-mini", "anthropic/claude-haiku-4.5", "google/gemini-2.5-flash", "meta-llama/llama-3.3-70b-instruct"];
const text = fc.string({ maxLength: 40 });

const validMessage: fc.Arbitrary<Body> = fc.oneof(
  fc.record({ role: fc.constantFrom("system", "developer"), content: text }),
  fc.record({ role: fc.constant("user"), content: text }),
  fc.record({ role: fc.constant("user"), content: fc.array(fc.record({ type: fc.constant("text"), text }), { minLength: 1, maxLength: 3 }) }),
  fc.record({ role: fc.constant("assistant"), content: text }),
  fc.record({ role: fc.constant("tool"), content: text, tool_call_id: fc.constant("call_1") }),
);

const validRequest: fc.Arbitrary<ChatBody> = fc.record(
  {
    model: fc.constantFrom(...MODELS),
    messages: fc.array(validMessage, { minLength: 1, maxLength: 4 }),
    temperature: fc.double({ min: 0, max: 2, noNaN: true }),
    top_p: fc.double({ min: 0, max: 1, noNaN: true }),
    max_tokens: fc.integer({ min: 1, max: 4096 }),
    stream: fc.boolean(),
    user: fc.string({ maxLength: 128 }),
    session_id: fc.string({ maxLength: 256 }),
    stop: fc.oneof(text, fc.array(text, { maxLength: 4 })),
  },
  { requiredKeys: ["model", "messages"] },
);

// ---- the malformed families ----

const notJsonText = fc
  .oneof(
    fc.string({ unit: "binary", maxLength: 200 }),
    fc.string({ unit: "grapheme-ascii", maxLength: 200 }),
    // Almost-JSON: a valid document with one stray token spliced in.
    fc
      .tuple(fc.jsonValue({ maxDepth: 3 }), fc.nat(), fc.constantFrom("{", "}", "[", "]", ",", ":", '"', "'", "undefined", "NaN", "\\", "//"))
      .map(([value, at, junk]) => {
        const json = JSON.stringify(value);
        const i = at % (json.length + 1);
        return json.slice(0, i) + junk + json.slice(i);
      }),
  )
  .filter(isNotJson);

const truncatedRequest = validRequest
  .chain((req) => {
    const json = JSON.stringify(req);
    return fc.nat({ max: json.length - 1 }).map((cut) => json.slice(0, cut));
  })
  .filter(isNotJson);

const notAnObject: fc.Arbitrary<Json> = fc.oneof(
  fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 5 }),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.string({ maxLength: 50 }),
  fc.constant(null),
  fc.boolean(),
);

/** Keys the request schema does not know, so they pass through and cannot fail on their own. */
const KNOWN_FIELDS = new Set([
  "model", "models", "messages", "stream", "stream_options", "max_tokens", "max_completion_tokens", "temperature",
  "top_p", "top_k", "frequency_penalty", "presence_penalty", "stop", "seed", "n", "tools", "tool_choice",
  "parallel_tool_calls", "response_format", "reasoning", "reasoning_effort", "user", "session_id", "provider",
  "transforms", "usage", "__proto__",
]);
const unknownKey = fc.string({ minLength: 1, maxLength: 12 }).filter((k) => !KNOWN_FIELDS.has(k));

const badMessages: fc.Arbitrary<Body> = fc.oneof(
  // No messages at all.
  fc.tuple(fc.option(fc.constantFrom(...MODELS), { nil: undefined }), fc.dictionary(unknownKey, fc.jsonValue({ maxDepth: 2 }), { maxKeys: 5 })).map(
    ([model, extra]) => ({ ...extra, ...(model === undefined ? {} : { model }) }),
  ),
  // Empty messages.
  fc.constantFrom(...MODELS).map((model) => ({ model, messages: [] })),
  // messages that is not an array.
  fc
    .tuple(
      fc.constantFrom(...MODELS),
      fc.oneof(
        fc.string({ maxLength: 20 }),
        fc.integer(),
        fc.boolean(),
        fc.constant(null),
        validMessage,
        validMessage.map((m) => ({ "0": m })),
      ),
    )
    .map(([model, messages]) => ({ model, messages })),
);

/** One field of a valid request made wrong; `path` is where the 400 must point. */
interface Corruption {
  label: string;
  apply(req: ChatBody, index: number): { body: Body; path: string };
  /** How fast-check prints it in a counterexample. */
  [fc.toStringMethod](): string;
}

function corruption(label: string, apply: Corruption["apply"]): Corruption {
  return { label, apply, [fc.toStringMethod]: () => JSON.stringify(label) };
}

function field(name: string, value: Json, path = name): Corruption {
  return corruption(`${name} = ${JSON.stringify(value).slice(0, 60)}`, (req) => ({ body: { ...req, [name]: value }, path }));
}

function message(label: string, bad: Json): Corruption {
  return corruption(`messages[i] ${label}`, (req, index) => {
    const i = index % (req.messages.length + 1);
    const messages = [...req.messages];
    messages.splice(i, 0, bad);
    return { body: { ...req, messages }, path: `messages.${i}` };
  });
}

const CORRUPTIONS: Corruption[] = [
  field("model", 42),
  field("model", ""),
  field("model", "m".repeat(300)),
  message("with an unknown role", { role: "wizard", content: "hi" }),
  message("with numeric content", { role: "user", content: 42 }),
  message("tool without tool_call_id", { role: "tool", content: "72F" }),
  message("assistant tool call with object arguments", {
    role: "assistant",
    content: null,
    tool_calls: [{ id: "call_1", type: "function", function: { name: "get_weather", arguments: { city: "Paris" } } }],
  }),
  message("image part without url", { role: "user", content: [{ type: "image_url", image_url: {} }] }),
  field("temperature", 3),
  field("temperature", -1),
  field("temperature", "hot"),
  field("top_p", 2),
  field("max_tokens", 0),
  field("max_tokens", -5),
  field("max_tokens", 1.5),
  field("max_tokens", "10"),
  field("stream", "yes"),
  field("tools", { type: "function", function: { name: "get_weather" } }),
  field("tools", [{ type: "function", function: { description: "no name" } }]),
  field("tool_choice", "sometimes"),
  field("tool_choice", { type: "function" }),
  field("response_format", { type: "xml" }),
  field("response_format", { type: "json_schema", json_schema: { schema: { type: "object" } } }),
  field("stop", 42),
  field("n", 2),
  field("provider", { order: "openai" }, "provider.order"),
  field("provider", { sort: "random" }, "provider.sort"),
  field("provider", { max_price: { prompt: "cheap" } }, "provider.max_price.prompt"),
  field("reasoning", { effort: "extreme" }, "reasoning.effort"),
  field("user", "u".repeat(200)),
  field("session_id", "s".repeat(300)),
  // Beyond the brief's list: more wrong types and out-of-range values.
  message("user text part without text", { role: "user", content: [{ type: "text" }] }),
  message("content part without a type", { role: "user", content: [{ text: "hi" }] }),
  message("assistant tool call with an empty function name", {
    role: "assistant",
    content: null,
    tool_calls: [{ id: "call_1", type: "function", function: { name: "", arguments: "{}" } }],
  }),
  message("without a role", { content: "hi" }),
  message("that is null", null),
  message("that is a string", "hi"),
  field("models", "openai/gpt-4o-mini"),
  field("models", Array.from({ length: 17 }, () => "openai/gpt-4o-mini")),
  field("max_tokens", 1e300),
  field("max_completion_tokens", 0),
  field("top_k", -1),
  field("frequency_penalty", 3),
  field("presence_penalty", -3),
  field("seed", 1.5),
  field("stream_options", { include_usage: "yes" }, "stream_options.include_usage"),
  field("reasoning", { max_tokens: 0 }, "reasoning.max_tokens"),
  field("reasoning_effort", "max"),
  field("provider", { quantizations: "fp8" }, "provider.quantizations"),
  field("provider", { data_collection: "never" }, "provider.data_collection"),
  field("provider", { only: [""] }, "provider.only"),
  field("provider", { max_price: { prompt: -1 } }, "provider.max_price.prompt"),
  field("provider", { preferred_max_latency: -1 }, "provider.preferred_max_latency"),
  field("usage", { include: "yes" }, "usage.include"),
  field("transforms", "middle-out"),
  field("parallel_tool_calls", "yes"),
  field("user", 5),
];

interface CorruptedCase {
  req: ChatBody;
  corruption: Corruption;
  index: number;
}
const corrupted: fc.Arbitrary<CorruptedCase> = fc.record({ req: validRequest, corruption: fc.constantFrom(...CORRUPTIONS), index: fc.nat() });

// ---- properties ----

async function refuses(body: string): Promise<string> {
  const res = await post(body);
  expect(res.status, `5xx for ${JSON.stringify(body).slice(0, 200)}`).toBeLessThan(500);
  return (await expectError(res, 400)).message;
}

describe("malformed chat requests", () => {
  it(
    "refuses text that is not JSON with 400",
    async () => {
      await fc.assert(
        fc.asyncProperty(notJsonText, async (body) => {
          expect(await refuses(body)).toMatch(/^Request body is (not valid JSON|empty)/);
        }),
        { numRuns: 80 },
      );
      expectNoUpstream();
    },
    TIMEOUT_MS,
  );

  it(
    "refuses a truncated valid request with 400",
    async () => {
      await fc.assert(
        fc.asyncProperty(truncatedRequest, async (body) => {
          expect(await refuses(body)).toMatch(/^Request body is (not valid JSON|empty)/);
        }),
        { numRuns: 50 },
      );
      expectNoUpstream();
    },
    TIMEOUT_MS,
  );

  it(
    "refuses JSON that is not an object with 400",
    async () => {
      await fc.assert(
        fc.asyncProperty(notAnObject, async (value) => {
          expect(await refuses(JSON.stringify(value))).toMatch(/^Invalid request: Invalid input: expected object, received /);
        }),
        { numRuns: 60 },
      );
      expectNoUpstream();
    },
    TIMEOUT_MS,
  );

  it(
    "refuses an object without messages, with empty messages or with non-array messages, naming `messages`",
    async () => {
      await fc.assert(
        fc.asyncProperty(badMessages, async (body) => {
          const message = await refuses(JSON.stringify(body));
          expect(namesField(message, "messages"), message).toBe(true);
        }),
        { numRuns: 70 },
      );
      expectNoUpstream();
    },
    TIMEOUT_MS,
  );

  it(
    "refuses a valid request with one field corrupted, naming that field",
    async () => {
      const base: ChatBody = { model: "openai/gpt-4o-mini", messages: [{ role: "user", content: "hi" }] };
      const examples = CORRUPTIONS.map((corruption): [CorruptedCase] => [{ req: base, corruption, index: 1 }]);
      await fc.assert(
        fc.asyncProperty(corrupted, async ({ req, corruption, index }) => {
          const { body, path } = corruption.apply(req, index);
          const message = await refuses(JSON.stringify(body));
          expect(namesField(message, path), `${corruption.label}: ${message}`).toBe(true);
        }),
        // Every corruption once on a minimal request, then random combinations.
        { numRuns: 150, examples },
      );
      expectNoUpstream();
    },
    TIMEOUT_MS,
  );
});

describe("pathological JSON", () => {
  it("refuses deeply nested JSON with 400", async () => {
    const depth = 100_000;
    expect(await refuses("[".repeat(depth) + "]".repeat(depth))).toMatch(/^Invalid request: Invalid input: expected object, received array/);
    expect(await refuses('{"a":'.repeat(depth) + "1" + "}".repeat(depth))).toMatch(/^Invalid request at `messages`/);
    const nestedContent = `{"model":"openai/gpt-4o-mini","messages":[{"role":"user","content":${"[".repeat(depth)}${"]".repeat(depth)}}]}`;
    expect(namesField(await refuses(nestedContent), "messages.0")).toBe(true);
    expectNoUpstream();
  });

  it("refuses numbers JSON cannot hold exactly with 400", async () => {
    for (const [body, path] of [
      ['{"model":"openai/gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"max_tokens":1e400}', "max_tokens"],
      ['{"model":"openai/gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"temperature":-1e400}', "temperature"],
      ['{"model":"openai/gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"max_tokens":9007199254740993}', "max_tokens"],
    ] as const) {
      const message = await refuses(body);
      expect(namesField(message, path), message).toBe(true);
    }
    expectNoUpstream();
  });
});

describe("requests that are well-formed but cannot be served", () => {
  it("answers 404 for an unknown model", async () => {
    const res = await post(JSON.stringify({ model: "nobody/no-such-model", messages: [{ role: "user", content: "hi" }] }));
    const error = await expectError(res, 404);
    expect(error.message).toBe("Model not found: nobody/no-such-model");
    expectNoUpstream();
  });

  it("answers 400 when no model is given and the workspace has no default", async () => {
    const error = await expectError(await post(JSON.stringify({ messages: [{ role: "user", content: "hi" }] })), 400);
    expect(error.message).toBe("No model given: set `model` (or `models`) in the request");
    expectNoUpstream();
  });

  it("answers 400 for a body that is not declared as JSON", async () => {
    const body = JSON.stringify({ model: "openai/gpt-4o-mini", messages: [{ role: "user", content: "hi" }] });
    const error = await expectError(await post(body, "text/plain"), 400);
    expect(error.message).toBe("Expected a JSON body (content-type application/json), got text/plain");
    expectNoUpstream();
  });

  it("answers 400 for an empty body", async () => {
    const error = await expectError(await post(""), 400);
    expect(error.message).toBe("Request body is empty; expected a JSON object");
    const noBody = await call(PATH, { method: "POST", headers: { authorization: `Bearer ${key}`, "content-type": "application/json" } });
    expect((await expectError(noBody, 400)).message).toBe("Request body is empty; expected a JSON object");
    expectNoUpstream();
  });
});
