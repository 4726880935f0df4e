/**
 * @module schemas/plain-chat-request
 * The common chat body (a model, text messages, a few sampling numbers) recognised without zod.
 * Workers forbid code generation, so zod validates by interpretation, and the chat schema is the
 * largest one on the request path. This check accepts only bodies that `chatRequestSchema` accepts
 * unchanged (a property test holds the two together) and answers `undefined` for everything else:
 * tools, content parts, provider preferences, any field it does not know, any value it doubts. The
 * caller then runs zod, which also writes the error message, so this file never decides a 400.
 */
import type { ChatRequest } from "./openai";
import { type Check, boundedString, integerIn, isBoolean, isRecord, isString, listOf, nullable, numberIn } from "./plain-checks";

const modelId = boundedString(1, 256);

const stopList = listOf(isString, 16);

const ROLES = new Set(["system", "developer", "user", "assistant"]);

/** `{ role, content, name? }` with text content; an assistant's content may be null. */
const isPlainMessage: Check = (v) => {
  if (!isRecord(v)) return false;
  let keys = 0;
  for (const key in v) {
    keys++;
    if (key !== "role" && key !== "content" && key !== "name") return false;
  }
  const { role, content, name } = v;
  if (typeof role !== "string" || !ROLES.has(role)) return false;
  if (typeof content !== "string" && !(content === null && role === "assistant")) return false;
  return keys === 2 || (keys === 3 && typeof name === "string");
};

const isStreamOptions: Check = (v) => {
  if (!isRecord(v)) return false;
  for (const key in v) if (key !== "include_usage" || !isBoolean(v[key])) return false;
  return true;
};

/** Each field this check knows, with the values `chatRequestSchema` takes for it as they are. */
const FIELDS: Record<string, Check> = {
  model: modelId,
  models: listOf(modelId, 16),
  messages: (v) => Array.isArray(v) && v.length > 0 && v.every(isPlainMessage),
  stream: nullable(isBoolean),
  stream_options: nullable(isStreamOptions),
  max_tokens: nullable(integerIn(1)),
  max_completion_tokens: nullable(integerIn(1)),
  temperature: nullable(numberIn(0, 2)),
  top_p: nullable(numberIn(0, 1)),
  top_k: nullable(integerIn(0)),
  frequency_penalty: nullable(numberIn(-2, 2)),
  presence_penalty: nullable(numberIn(-2, 2)),
  stop: nullable((v) => isString(v) || stopList(v)),
  seed: nullable(integerIn(Number.MIN_SAFE_INTEGER)),
  n: (v) => v === null || v === 1,
  parallel_tool_calls: nullable(isBoolean),
  user: boundedString(0, 128),
  session_id: boundedString(0, 256),
};

/** The body as a `ChatRequest` when it is plainly one, else `undefined` (validate it with zod). */
export function plainChatRequest(value: unknown): ChatRequest | undefined {
  if (!isRecord(value) || !("messages" in value)) return undefined;
  for (const key in value) {
    // Own keys only: a JSON body has no others, and `__proto__` or `constructor` must not find
    // Object.prototype's members here.
    const check = Object.hasOwn(FIELDS, key) ? FIELDS[key] : undefined;
    if (!check || !check(value[key])) return undefined;
  }
  return value as ChatRequest;
}
