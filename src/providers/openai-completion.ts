/**
 * @module providers/openai-completion
 * What an OpenAI-compatible upstream answers to a non-streaming call: the completion, its usage
 * and finish reason, in the adapter-neutral shape. The usage and reasoning schemas are shared
 * with the stream decoder (providers/openai-compatible).
 */
import { z } from "zod";
import { GatewayError } from "../errors";
import { isRecord } from "./errors";
import type { Completion, FinishReason, Usage } from "./types";

export function normaliseOpenAIFinish(reason: string | null | undefined): FinishReason | null {
  switch (reason) {
    case null:
    case undefined:
      return null;
    case "stop":
    case "end_turn":
    case "eos":
      return "stop";
    case "length":
    case "max_tokens":
      return "length";
    case "tool_calls":
    case "function_call":
    case "tool_use":
      return "tool_calls";
    case "content_filter":
      return "content_filter";
    case "error":
      return "error";
    default:
      return "stop";
  }
}

export const usageSchema = z.looseObject({
  prompt_tokens: z.number().int().nonnegative().default(0),
  completion_tokens: z.number().int().nonnegative().default(0),
  prompt_tokens_details: z
    .looseObject({
      cached_tokens: z.number().int().nonnegative().nullish(),
      cache_write_tokens: z.number().int().nonnegative().nullish(),
    })
    .nullish(),
  completion_tokens_details: z
    .looseObject({ reasoning_tokens: z.number().int().nonnegative().nullish() })
    .nullish(),
  // DeepSeek reports cache hits at the top level.
  prompt_cache_hit_tokens: z.number().int().nonnegative().nullish(),
});

export function toUsage(u: z.infer<typeof usageSchema>): Usage {
  return {
    promptTokens: u.prompt_tokens,
    completionTokens: u.completion_tokens,
    cachedTokens: u.prompt_tokens_details?.cached_tokens ?? u.prompt_cache_hit_tokens ?? 0,
    cacheWriteTokens: u.prompt_tokens_details?.cache_write_tokens ?? 0,
    reasoningTokens: u.completion_tokens_details?.reasoning_tokens ?? 0,
  };
}

export const reasoningDetailsSchema = z.array(z.looseObject({ type: z.string() })).nullish();

const responseSchema = z.looseObject({
  choices: z
    .array(
      z.looseObject({
        message: z.looseObject({
          content: z.string().nullish(),
          reasoning: z.string().nullish(),
          reasoning_content: z.string().nullish(),
          reasoning_details: reasoningDetailsSchema,
          tool_calls: z
            .array(
              z.looseObject({
                id: z.string(),
                function: z.looseObject({ name: z.string(), arguments: z.string().default("") }),
              }),
            )
            .nullish(),
        }),
        finish_reason: z.string().nullish(),
      }),
    )
    .min(1),
  usage: usageSchema.nullish(),
});

/** The completion through the schema: any shape the schema takes, and the error for the rest. */
export function completionFromSchema(json: unknown): Completion {
  const parsed = responseSchema.safeParse(json);
  if (!parsed.success) {
    throw new GatewayError("upstream_error", "Upstream returned a response that is not a chat completion", {
      metadata: { error_type: "invalid_response" },
    });
  }
  const choice = parsed.data.choices[0]!;
  const message = choice.message;
  return {
    content: message.content ?? null,
    reasoning: message.reasoning ?? message.reasoning_content ?? null,
    reasoningDetails: message.reasoning_details ?? [],
    toolCalls: (message.tool_calls ?? []).map((call) => ({
      id: call.id,
      type: "function" as const,
      function: { name: call.function.name, arguments: call.function.arguments },
    })),
    nativeFinishReason: choice.finish_reason ?? null,
    finishReason: normaliseOpenAIFinish(choice.finish_reason),
    usage: parsed.data.usage ? toUsage(parsed.data.usage) : null,
  };
}

const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const isOptionalCount = (v: unknown): boolean => v == null || isCount(v);

/** Usage the schema would take unchanged, else undefined (doubtful: let the schema decide). */
function plainUsage(u: unknown): Usage | null | undefined {
  if (u == null) return null;
  if (!isRecord(u)) return undefined;
  const { prompt_tokens: prompt = 0, completion_tokens: completion = 0, prompt_tokens_details: promptDetails, completion_tokens_details: completionDetails } = u;
  if (!isCount(prompt) || !isCount(completion) || !isOptionalCount(u.prompt_cache_hit_tokens)) return undefined;
  if (promptDetails != null && (!isRecord(promptDetails) || !isOptionalCount(promptDetails.cached_tokens) || !isOptionalCount(promptDetails.cache_write_tokens))) return undefined;
  if (completionDetails != null && (!isRecord(completionDetails) || !isOptionalCount(completionDetails.reasoning_tokens))) return undefined;
  return toUsage({ ...(u as z.infer<typeof usageSchema>), prompt_tokens: prompt, completion_tokens: completion });
}

/**
 * A completion of one choice with text (or nothing), no tool calls and no reasoning, read by hand;
 * undefined for anything else. Workers forbid code generation, so the schema interprets every
 * field it meets; this is the answer most calls get, and a property test holds it to the schema.
 */
export function plainCompletion(json: unknown): Completion | undefined {
  if (!isRecord(json) || !Array.isArray(json.choices) || json.choices.length !== 1) return undefined;
  const choice: unknown = json.choices[0];
  if (!isRecord(choice) || !isRecord(choice.message)) return undefined;
  const { message } = choice;
  const content = message.content;
  if (content != null && typeof content !== "string") return undefined;
  if (message.reasoning != null || message.reasoning_content != null || message.reasoning_details != null || message.tool_calls != null) return undefined;
  const finish = choice.finish_reason;
  if (finish != null && typeof finish !== "string") return undefined;
  const usage = plainUsage(json.usage);
  if (usage === undefined) return undefined;
  return {
    content: content ?? null,
    reasoning: null,
    reasoningDetails: [],
    toolCalls: [],
    nativeFinishReason: finish ?? null,
    finishReason: normaliseOpenAIFinish(finish),
    usage,
  };
}

export function parseOpenAICompletion(json: unknown): Completion {
  return plainCompletion(json) ?? completionFromSchema(json);
}
