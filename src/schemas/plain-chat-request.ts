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
import { type Check, boundedString, exactRecord, integerIn, isBoolean, isString, listOf, nullable, numberIn } from "./plain-checks";

const modelId = boundedString(1, 256);

const stopList = listOf(isString, 16);

const ROLES = new Set(["system", "developer", "user", "assistant"]);

const messageFields = exactRecord(
  { role: (v) => typeof v === "string" && ROLES.has(v), content: (v) => isString(v) || v === null, name: isString },
  ["name"],
);
/** `{ role, content, name? }` with text content; an assistant's content may be null. */
const isPlainMessage: Check = (v) => messageFields(v) && (v.content !== null || v.role === "assistant");

const isStreamOptions = exactRecord({ include_usage: isBoolean }, ["include_usage"]);

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

/** Every field may be left out but `messages`. */
const isPlainChatRequest = exactRecord(
  FIELDS,
  Object.keys(FIELDS).filter((key) => key !== "messages"),
);

/** The body as a `ChatRequest` when it is plainly one, else `undefined` (validate it with zod). */
export function plainChatRequest(value: unknown): ChatRequest | undefined {
  return isPlainChatRequest(value) ? (value as ChatRequest) : undefined;
}
