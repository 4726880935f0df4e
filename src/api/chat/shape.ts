/**
 * @module api/chat/shape
 * OpenAI's response and chunk JSON with OpenRouter's additions (`provider`,
 * `native_finish_reason`, `usage.cost`, `message.reasoning`). Builders only; no I/O.
 */
import { microsToUsd } from "../../billing/pricing";
import type { Completion, FinishReason, ReasoningDetail, ToolCallDelta, Usage } from "../../providers/types";

/** What every response and chunk of one generation says about itself. */
export interface GenerationMeta {
  id: string;
  created: number;
  model: string;
  provider: string;
}

/** The fields every response and chunk of one generation shares. */
function envelope(meta: GenerationMeta, object: "chat.completion" | "chat.completion.chunk") {
  return { id: meta.id, object, created: meta.created, model: meta.model, provider: meta.provider, system_fingerprint: null };
}

export function newGenerationId(): string {
  const random = crypto.getRandomValues(new Uint8Array(12));
  let hex = "";
  for (const byte of random) hex += byte.toString(16).padStart(2, "0");
  return `gen-${Math.floor(Date.now() / 1000)}-${hex}`;
}

/** What a response says about its cost: the charge, and for BYOK the platform-equivalent cost. */
export interface ReportedCost {
  /** µ$ charged (for BYOK, the fee). */
  chargedMicros: number;
  /** µ$ the request costs at the endpoint's prices. */
  upstreamMicros: number;
  byok: boolean;
}

export function usageJson(usage: Usage, cost: ReportedCost) {
  return {
    prompt_tokens: usage.promptTokens,
    completion_tokens: usage.completionTokens,
    total_tokens: usage.promptTokens + usage.completionTokens,
    prompt_tokens_details: { cached_tokens: usage.cachedTokens, cache_write_tokens: usage.cacheWriteTokens },
    completion_tokens_details: { reasoning_tokens: usage.reasoningTokens },
    cost: microsToUsd(cost.chargedMicros),
    is_byok: cost.byok,
    cost_details: { upstream_inference_cost: cost.byok ? microsToUsd(cost.upstreamMicros) : null },
  };
}

export function completionJson(meta: GenerationMeta, completion: Completion, usage: Usage, cost: ReportedCost) {
  const message: Record<string, unknown> = {
    role: "assistant",
    content: completion.content,
    refusal: null,
    reasoning: completion.reasoning,
  };
  if (completion.reasoningDetails.length) message.reasoning_details = completion.reasoningDetails;
  if (completion.toolCalls.length) message.tool_calls = completion.toolCalls;
  return {
    ...envelope(meta, "chat.completion"),
    choices: [
      {
        index: 0,
        logprobs: null,
        finish_reason: completion.finishReason ?? (completion.toolCalls.length ? "tool_calls" : "stop"),
        native_finish_reason: completion.nativeFinishReason,
        message,
      },
    ],
    usage: usageJson(usage, cost),
  };
}

export interface ChunkDelta {
  role?: "assistant";
  content?: string;
  reasoning?: string;
  reasoning_details?: ReasoningDetail[];
  tool_calls?: Array<{ index: number; id?: string; type?: "function"; function: { name?: string; arguments?: string } }>;
}

export function chunkJson(
  meta: GenerationMeta,
  delta: ChunkDelta,
  finish: { finishReason: FinishReason; nativeFinishReason: string | null } | null = null,
) {
  return {
    ...envelope(meta, "chat.completion.chunk"),
    choices: [
      {
        index: 0,
        delta,
        finish_reason: finish?.finishReason ?? null,
        native_finish_reason: finish?.nativeFinishReason ?? null,
        logprobs: null,
      },
    ],
  };
}

/**
 * `data:` events of text-only chunks of one generation, byte for byte what
 * `dataEvent(chunkJson(meta, { content }))` writes: the JSON around the text is serialised once
 * per stream, so a token costs one `JSON.stringify` of its text instead of a chunk object built
 * and serialised (most of a stream is these chunks, and a relay pays per chunk).
 */
export function textChunkEvents(meta: GenerationMeta): (content: string) => string {
  const marker = `\u0001${crypto.randomUUID()}`;
  const markerJson = JSON.stringify(marker);
  const whole = `data: ${JSON.stringify(chunkJson(meta, { content: marker }))}\n\n`;
  const at = whole.indexOf(markerJson);
  const before = whole.slice(0, at);
  const after = whole.slice(at + markerJson.length);
  return (content) => before + JSON.stringify(content) + after;
}

export function toolCallDeltaJson(calls: ToolCallDelta[]): NonNullable<ChunkDelta["tool_calls"]> {
  return calls.map((call) => {
    const fn: { name?: string; arguments?: string } = {};
    if (call.name !== undefined) fn.name = call.name;
    fn.arguments = call.arguments ?? "";
    return call.id !== undefined
      ? { index: call.index, id: call.id, type: "function" as const, function: fn }
      : { index: call.index, function: fn };
  });
}

export function usageChunkJson(meta: GenerationMeta, usage: Usage, cost: ReportedCost) {
  return {
    ...envelope(meta, "chat.completion.chunk"),
    choices: [],
    usage: usageJson(usage, cost),
  };
}

/** OpenRouter's mid-stream error event: HTTP stays 200, the choice finishes with "error". */
export function errorChunkJson(meta: GenerationMeta, message: string, errorType: string) {
  return {
    ...envelope(meta, "chat.completion.chunk"),
    error: { code: 502, message, metadata: { error_type: errorType } },
    choices: [{ index: 0, delta: { content: "" }, finish_reason: "error", native_finish_reason: "error" }],
  };
}
