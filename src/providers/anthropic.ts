/**
 * @module providers/anthropic
 * The Anthropic family: Messages API answers, JSON and SSE, back into neutral completions and
 * stream events (requests are built in `anthropic-request`). Thinking comes out as `reasoning`
 * plus OpenRouter's `reasoning_details` (`reasoning.text` with its signature, `reasoning.encrypted`
 * for redacted thinking, format `anthropic-claude-v1`) so clients can hand it back next turn.
 */
import { z } from "zod";
import type { UpstreamErrorType } from "../errors";
import { ANTHROPIC_REASONING_FORMAT, buildAnthropicRequest } from "./anthropic-request";
import { isRecord, parseErrorBody } from "./errors";
import { invalidResponse, parseEventJson } from "./json";
import type { SSEMessage } from "./sse";
import type {
  Completion,
  FinishReason,
  ProviderAdapter,
  ReasoningDetail,
  StreamDecoder,
  StreamEvent,
  Usage,
} from "./types";

export { ANTHROPIC_REASONING_FORMAT, ANTHROPIC_VERSION, VERTEX_ANTHROPIC_VERSION } from "./anthropic-request";


/** Anthropic's stop reasons as OpenRouter's finish reasons. */
export function normaliseAnthropicStop(reason: string | null | undefined): FinishReason | null {
  switch (reason) {
    case null:
    case undefined:
      return null;
    case "max_tokens":
    case "model_context_window_exceeded":
      return "length";
    case "tool_use":
      return "tool_calls";
    case "refusal":
      return "content_filter";
    default:
      // end_turn, stop_sequence, pause_turn, and reasons added after this was written.
      return "stop";
  }
}

const count = z.number().int().nonnegative();
const usageSchema = z.looseObject({
  input_tokens: count.nullish(),
  output_tokens: count.nullish(),
  cache_creation_input_tokens: count.nullish(),
  cache_read_input_tokens: count.nullish(),
});
type AnthropicUsage = z.infer<typeof usageSchema>;

/** Anthropic's `input_tokens` excludes cache reads and writes; the gateway's prompt count includes them. */
function toUsage(u: AnthropicUsage): Usage {
  const cachedTokens = u.cache_read_input_tokens ?? 0;
  const cacheWriteTokens = u.cache_creation_input_tokens ?? 0;
  return {
    promptTokens: (u.input_tokens ?? 0) + cachedTokens + cacheWriteTokens,
    completionTokens: u.output_tokens ?? 0,
    cachedTokens,
    cacheWriteTokens,
    reasoningTokens: 0,
  };
}

const KNOWN_BLOCKS = new Set(["text", "thinking", "redacted_thinking", "tool_use"]);
const contentBlockSchema = z.union([
  z.looseObject({ type: z.literal("text"), text: z.string() }),
  z.looseObject({ type: z.literal("thinking"), thinking: z.string(), signature: z.string().nullish() }),
  z.looseObject({ type: z.literal("redacted_thinking"), data: z.string() }),
  z.looseObject({ type: z.literal("tool_use"), id: z.string(), name: z.string(), input: z.record(z.string(), z.unknown()) }),
  // Server tool blocks (web search and the like) carry nothing a chat completion can express.
  z.looseObject({ type: z.string().refine((t) => !KNOWN_BLOCKS.has(t)) }),
]);

const responseSchema = z.looseObject({
  content: z.array(contentBlockSchema),
  stop_reason: z.string().nullish(),
  usage: usageSchema.nullish(),
});

const textDetail = (index: number, fields: { text?: string; signature?: string }): ReasoningDetail => ({
  type: "reasoning.text",
  ...fields,
  format: ANTHROPIC_REASONING_FORMAT,
  index,
});
const encryptedDetail = (index: number, data: string): ReasoningDetail => ({
  type: "reasoning.encrypted",
  data,
  format: ANTHROPIC_REASONING_FORMAT,
  index,
});

function parseResponse(json: unknown): Completion {
  const parsed = responseSchema.safeParse(json);
  if (!parsed.success) throw invalidResponse("Upstream returned a response that is not an Anthropic message");
  const { content, stop_reason, usage } = parsed.data;
  const texts: string[] = [];
  const thoughts: string[] = [];
  const completion: Completion = {
    content: null,
    reasoning: null,
    reasoningDetails: [],
    toolCalls: [],
    nativeFinishReason: stop_reason ?? null,
    finishReason: normaliseAnthropicStop(stop_reason),
    usage: usage ? toUsage(usage) : null,
  };
  for (const block of content) {
    if (block.type === "text" && typeof block.text === "string") {
      texts.push(block.text);
    } else if (block.type === "thinking" && typeof block.thinking === "string") {
      thoughts.push(block.thinking);
      const signature = typeof block.signature === "string" ? block.signature : undefined;
      completion.reasoningDetails.push(textDetail(completion.reasoningDetails.length, { text: block.thinking, ...(signature ? { signature } : {}) }));
    } else if (block.type === "redacted_thinking" && typeof block.data === "string") {
      completion.reasoningDetails.push(encryptedDetail(completion.reasoningDetails.length, block.data));
    } else if (block.type === "tool_use" && typeof block.id === "string" && typeof block.name === "string") {
      completion.toolCalls.push({ id: block.id, type: "function", function: { name: block.name, arguments: JSON.stringify(block.input) } });
    }
  }
  if (texts.length) completion.content = texts.join("");
  if (thoughts.length) completion.reasoning = thoughts.join("");
  return completion;
}

const blockIndex = z.number().int().nonnegative();
const KNOWN_DELTAS = new Set(["text_delta", "thinking_delta", "signature_delta", "input_json_delta"]);
const streamEventSchema = z.discriminatedUnion("type", [
  z.looseObject({ type: z.literal("message_start"), message: z.looseObject({ usage: usageSchema.nullish() }) }),
  z.looseObject({ type: z.literal("content_block_start"), index: blockIndex, content_block: contentBlockSchema }),
  z.looseObject({
    type: z.literal("content_block_delta"),
    index: blockIndex,
    delta: z.union([
      z.looseObject({ type: z.literal("text_delta"), text: z.string() }),
      z.looseObject({ type: z.literal("thinking_delta"), thinking: z.string() }),
      z.looseObject({ type: z.literal("signature_delta"), signature: z.string() }),
      z.looseObject({ type: z.literal("input_json_delta"), partial_json: z.string() }),
      // citations_delta and later additions have no chat completion equivalent.
      z.looseObject({ type: z.string().refine((t) => !KNOWN_DELTAS.has(t)) }),
    ]),
  }),
  z.looseObject({ type: z.literal("message_delta"), delta: z.looseObject({ stop_reason: z.string().nullish() }), usage: usageSchema.nullish() }),
  z.looseObject({
    type: z.literal("error"),
    error: z.looseObject({ type: z.string().optional(), message: z.string().optional() }).optional(),
  }),
]);
const HANDLED_EVENTS = new Set(["message_start", "content_block_start", "content_block_delta", "message_delta", "error"]);

/** OpenRouter's error type for an Anthropic `error.type`. */
export function anthropicErrorType(type: string | undefined): UpstreamErrorType {
  switch (type) {
    case "overloaded_error":
      return "provider_overloaded";
    case "rate_limit_error":
      return "rate_limit_exceeded";
    case "invalid_request_error":
      return "invalid_request";
    case "authentication_error":
    case "permission_error":
      return "authentication";
    case "not_found_error":
      return "not_found";
    default:
      return "server";
  }
}

type DeltaEvent = Extract<StreamEvent, { type: "delta" }>;

/** The text of a well-formed `content_block_delta` carrying a `text_delta`, else undefined. */
function textDelta(json: unknown): string | undefined {
  if (!isRecord(json) || typeof json.index !== "number" || !isRecord(json.delta)) return undefined;
  const { delta } = json;
  return delta.type === "text_delta" && typeof delta.text === "string" ? delta.text : undefined;
}

/**
 * One Anthropic stream. Anthropic numbers content blocks across text, thinking and tool use, so
 * tool calls and reasoning details are renumbered from 0 in their own sequences; usage arrives in
 * `message_start` (input) and `message_delta` (cumulative), and each is emitted as a full snapshot.
 */
class AnthropicStreamDecoder implements StreamDecoder {
  readonly #tools = new Map<number, { index: number; hasArguments: boolean }>();
  readonly #thinking = new Map<number, number>();
  #reasoningCount = 0;
  #usage: AnthropicUsage = {};
  #finished = false;

  decode(message: SSEMessage): StreamEvent[] {
    const data = message.data.trim();
    if (!data) return [];
    const json = parseEventJson(data);
    const type = message.event === "error" ? "error" : isRecord(json) ? json.type : undefined;
    if (typeof type !== "string") throw invalidResponse("Upstream sent a stream event without a type");
    if (type === "content_block_stop") return this.#blockStop(json);
    // Most of a stream is text deltas: checked by hand, since the schema costs more than the relay.
    const text = type === "content_block_delta" ? textDelta(json) : undefined;
    if (text !== undefined) return text ? [{ type: "delta", content: text }] : [];
    // ping, message_stop and event types added later carry nothing to translate.
    if (!HANDLED_EVENTS.has(type)) return [];
    const parsed = streamEventSchema.safeParse(isRecord(json) ? { ...json, type } : json);
    if (!parsed.success) throw invalidResponse(`Upstream sent a malformed "${type}" stream event`);
    const event = parsed.data;
    switch (event.type) {
      case "message_start":
        return this.#mergeUsage(event.message.usage);
      case "content_block_start":
        return this.#blockStart(event.index, event.content_block);
      case "content_block_delta":
        return this.#blockDelta(event.index, event.delta);
      case "message_delta": {
        const events: StreamEvent[] = [];
        if (event.delta.stop_reason && !this.#finished) {
          this.#finished = true;
          events.push({
            type: "finish",
            nativeFinishReason: event.delta.stop_reason,
            finishReason: normaliseAnthropicStop(event.delta.stop_reason) ?? "stop",
          });
        }
        return [...events, ...this.#mergeUsage(event.usage)];
      }
      case "error":
        return [{ type: "error", message: event.error?.message ?? "Upstream stream error", errorType: anthropicErrorType(event.error?.type) }];
    }
  }

  #mergeUsage(usage: AnthropicUsage | null | undefined): StreamEvent[] {
    if (!usage) return [];
    for (const key of ["input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"] as const) {
      const value = usage[key];
      if (value != null) this.#usage[key] = value;
    }
    return [{ type: "usage", usage: toUsage(this.#usage) }];
  }

  #blockStart(index: number, block: z.infer<typeof contentBlockSchema>): StreamEvent[] {
    if (block.type === "text" && typeof block.text === "string") {
      return block.text ? [{ type: "delta", content: block.text }] : [];
    }
    if (block.type === "thinking" && typeof block.thinking === "string") {
      const position = this.#reasoningCount++;
      this.#thinking.set(index, position);
      return block.thinking ? [{ type: "delta", reasoning: block.thinking, reasoningDetails: [textDetail(position, { text: block.thinking })] }] : [];
    }
    if (block.type === "redacted_thinking" && typeof block.data === "string") {
      return [{ type: "delta", reasoningDetails: [encryptedDetail(this.#reasoningCount++, block.data)] }];
    }
    if (block.type === "tool_use" && typeof block.id === "string" && typeof block.name === "string") {
      const tool = { index: this.#tools.size, hasArguments: false };
      this.#tools.set(index, tool);
      return [{ type: "delta", toolCalls: [{ index: tool.index, id: block.id, name: block.name, arguments: "" }] }];
    }
    return [];
  }

  #blockDelta(index: number, delta: { type: string; [key: string]: unknown }): StreamEvent[] {
    const event: DeltaEvent = { type: "delta" };
    if (delta.type === "text_delta" && typeof delta.text === "string") {
      if (!delta.text) return [];
      event.content = delta.text;
    } else if (delta.type === "thinking_delta" && typeof delta.thinking === "string") {
      if (!delta.thinking) return [];
      event.reasoning = delta.thinking;
      event.reasoningDetails = [textDetail(this.#thinkingPosition(index), { text: delta.thinking })];
    } else if (delta.type === "signature_delta" && typeof delta.signature === "string") {
      event.reasoningDetails = [textDetail(this.#thinkingPosition(index), { signature: delta.signature })];
    } else if (delta.type === "input_json_delta" && typeof delta.partial_json === "string") {
      const tool = this.#tools.get(index);
      if (!tool) throw invalidResponse("Upstream sent tool arguments for a content block that is not a tool call");
      if (!delta.partial_json) return [];
      tool.hasArguments = true;
      event.toolCalls = [{ index: tool.index, arguments: delta.partial_json }];
    } else {
      return [];
    }
    return [event];
  }

  /** A tool call without input streams no JSON at all; `{}` keeps its arguments parseable. */
  #blockStop(json: unknown): StreamEvent[] {
    const index = isRecord(json) ? json.index : undefined;
    const tool = typeof index === "number" ? this.#tools.get(index) : undefined;
    if (!tool || tool.hasArguments) return [];
    tool.hasArguments = true;
    return [{ type: "delta", toolCalls: [{ index: tool.index, arguments: "{}" }] }];
  }

  #thinkingPosition(index: number): number {
    const position = this.#thinking.get(index);
    if (position === undefined) throw invalidResponse("Upstream sent thinking for a content block that is not a thinking block");
    return position;
  }
}

export const anthropic: ProviderAdapter = {
  family: "anthropic",

  buildRequest: buildAnthropicRequest,

  parseResponse,

  createStreamDecoder(): StreamDecoder {
    return new AnthropicStreamDecoder();
  },

  // Anthropic's "input length and `max_tokens` exceed context limit" matches the shared patterns.
  parseError: parseErrorBody,
};
