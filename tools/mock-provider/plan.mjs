// @ts-check
/**
 * @module mock-provider/plan
 * What the mock answers, decided once per request and independent of the wire family: the reply
 * text split into words, or the tool calls, the finish reason, token counts and the directives
 * found in the last user message. Each family module extracts a {@link Conversation} from its own
 * request shape and renders the {@link Plan} in its own response shape, so the three families
 * behave identically and tests can predict every byte.
 */

/**
 * @typedef {{ name: string, schema: unknown }} ToolSpec
 *
 * @typedef {object} Conversation  What a family module extracts from a request.
 * @property {string} model
 * @property {boolean} stream
 * @property {string} lastUserText  Text of the last user message that carries text.
 * @property {string[] | null} toolResults  Tool results of the last turn, when the last message holds them.
 * @property {ToolSpec[]} tools  Tools the model may call (already empty when tool choice is "none").
 * @property {boolean} parallelTools  False when the request forbids parallel calls.
 * @property {number} promptChars  Characters of all message text, for the prompt token estimate.
 * @property {number | null} maxTokens
 * @property {boolean} thinking  Whether the request asked for visible reasoning.
 *
 * @typedef {object} Directives  Parsed from `[[…]]` markers in the last user text.
 * @property {string | null} fault  "500" | "503" | "429" | "reset" | "hang" | "midstream" | "malformed" | other status
 * @property {number} slowMs  Delay before the first byte.
 * @property {number} gapMs  Delay between stream chunks.
 * @property {number | null} words  Emit exactly this many words.
 *
 * @typedef {{ id: string, name: string, args: string }} PlannedCall
 *
 * @typedef {object} Plan
 * @property {string} model
 * @property {boolean} stream
 * @property {string[]} words  Reply words (possibly cut by the token limit); empty for tool calls.
 * @property {PlannedCall[]} calls
 * @property {"stop" | "length" | "tool_calls"} finish
 * @property {number} promptTokens
 * @property {number} completionTokens  Words emitted, or the arguments' size for tool calls.
 * @property {string | null} thinking  Reasoning text to emit first, when asked for.
 * @property {Directives} directives
 */

export const THINKING_TEXT = "Mock thinking.";
export const THINKING_SIGNATURE = "mock-signature";
const THINKING_WORDS = 2;

const DIRECTIVE = /\[\[(fault|slow|gap|words):([A-Za-z0-9_-]+)\]\]/g;

/**
 * Read `[[fault:X]]`, `[[slow:MS]]`, `[[gap:MS]]`, `[[words:N]]` and return the text without them.
 * @param {string} text
 * @returns {{ directives: Directives, text: string }}
 */
export function parseDirectives(text) {
  /** @type {Directives} */
  const directives = { fault: null, slowMs: 0, gapMs: 0, words: null };
  if (!text.includes("[[")) return { directives, text };
  const stripped = text.replace(DIRECTIVE, (_match, kind, value) => {
    if (kind === "fault") directives.fault = value;
    else if (kind === "slow") directives.slowMs = Number(value) || 0;
    else if (kind === "gap") directives.gapMs = Number(value) || 0;
    else directives.words = Math.max(0, Math.floor(Number(value) || 0));
    return "";
  });
  return { directives, text: stripped.replace(/\s+/g, " ").trim() };
}

/** @type {string[]} */
const wordCache = [];

/**
 * `N` filler words for benchmarks: "w1 w2 … wN", cached so large counts cost nothing per request.
 * @param {number} n
 */
function fillerWords(n) {
  for (let i = wordCache.length; i < n; i++) wordCache.push(`w${i + 1}`);
  return wordCache.slice(0, n);
}

/**
 * A value that satisfies a JSON schema well enough for a demo call: enum → first value, string →
 * "Paris", number/integer → 1, boolean → true, array → one sample item, object → its required
 * properties. Gemini's upper-case type names are accepted.
 * @param {unknown} schema
 * @param {number} [depth]
 * @returns {unknown}
 */
export function sampleValue(schema, depth = 0) {
  if (!isRecord(schema) || depth > 6) return "Paris";
  if (Array.isArray(schema.enum) && schema.enum.length > 0) return schema.enum[0];
  if ("const" in schema) return schema.const;
  let type = schema.type;
  if (Array.isArray(type)) type = type.find((t) => t !== "null") ?? type[0];
  switch (typeof type === "string" ? type.toLowerCase() : schema.properties ? "object" : "string") {
    case "number":
    case "integer":
      return 1;
    case "boolean":
      return true;
    case "null":
      return null;
    case "array":
      return [sampleValue(schema.items, depth + 1)];
    case "object":
      return sampleObject(schema, depth + 1);
    default:
      return "Paris";
  }
}

/**
 * @param {Record<string, unknown>} schema
 * @param {number} depth
 */
function sampleObject(schema, depth) {
  /** @type {Record<string, unknown>} */
  const out = {};
  const props = isRecord(schema.properties) ? schema.properties : {};
  const required = Array.isArray(schema.required) ? schema.required : [];
  for (const key of required) {
    if (typeof key === "string") out[key] = sampleValue(props[key], depth);
  }
  return out;
}

/**
 * The JSON arguments the mock sends for a tool, e.g. `{"location":"Paris"}`.
 * @param {unknown} schema
 */
export function sampleArguments(schema) {
  return JSON.stringify(isRecord(schema) ? sampleObject(schema, 0) : {});
}

/** @param {number} chars */
export const estimateTokens = (chars) => Math.max(1, Math.ceil(chars / 4));

/**
 * Decide the answer.
 * @param {Conversation} conv
 * @param {Directives} directives
 * @param {string} userText  The last user text with directives removed.
 * @returns {Plan}
 */
export function makePlan(conv, directives, userText) {
  /** @type {Plan} */
  const plan = {
    model: conv.model,
    stream: conv.stream,
    words: [],
    calls: [],
    finish: "stop",
    promptTokens: estimateTokens(conv.promptChars),
    completionTokens: 0,
    thinking: conv.thinking ? THINKING_TEXT : null,
    directives,
  };
  if (conv.toolResults === null && conv.tools.length > 0) {
    const tools = conv.tools.slice(0, conv.parallelTools ? 2 : 1);
    let argChars = 0;
    plan.calls = tools.map((tool, i) => {
      const args = sampleArguments(tool.schema);
      argChars += args.length;
      return { id: `call_mock_${i}`, name: tool.name, args };
    });
    plan.finish = "tool_calls";
    plan.completionTokens = estimateTokens(argChars);
  } else {
    let words;
    if (directives.words !== null) words = fillerWords(directives.words);
    else if (conv.toolResults !== null) words = `Mock answer using tool result: ${conv.toolResults.join("; ")}`.split(" ");
    else words = `Mock reply to: ${userText}`.trim().split(" ");
    if (conv.maxTokens !== null && conv.maxTokens >= 0 && words.length > conv.maxTokens) {
      words = words.slice(0, conv.maxTokens);
      plan.finish = "length";
    }
    plan.words = words;
    plan.completionTokens = words.length;
  }
  if (plan.thinking) plan.completionTokens += THINKING_WORDS;
  return plan;
}

/**
 * The text of the `i`-th streamed word: words after the first carry their leading space, so the
 * chunks concatenate to the full reply.
 * @param {string[]} words
 * @param {number} i
 */
export const wordChunk = (words, i) => (i === 0 ? words[0] : ` ${words[i]}`);

/**
 * @param {unknown} value
 * @returns {value is Record<string, unknown>}
 */
export function isRecord(value) {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Text of an OpenAI- or Anthropic-style content value: a string, or an array of parts whose
 * `text` fields are joined.
 * @param {unknown} content
 */
export function contentText(content) {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  let out = "";
  for (const part of content) {
    if (isRecord(part) && typeof part.text === "string") out += out ? ` ${part.text}` : part.text;
  }
  return out;
}
