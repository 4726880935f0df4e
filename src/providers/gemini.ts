/**
 * @module providers/gemini
 * Google Gemini's `generateContent` API, on AI Studio (`x-goog-api-key`) and on Vertex AI
 * (Bearer token, `…/publishers/google` base URL; the path suffix is the same). Requests are built
 * in `gemini-request.ts`; this module reads answers, streams and errors.
 *
 * Thought signatures: Gemini 2.5 and 3 sign the function calls of a thinking turn and require the
 * signature back on the next request. They leave as `reasoning_details` entries of type
 * `reasoning.encrypted`, format `google-gemini-v1`, keyed by tool call id (OpenRouter's shape),
 * and come back onto the matching `functionCall` part.
 */
import { invalidResponse, parseEventJson } from "./json";
import { z } from "zod";
import type { UpstreamErrorType } from "../errors";
import { classifyStatus, isRecord, parseErrorBody } from "./errors";
import { buildGeminiRequest, GEMINI_SIGNATURE_FORMAT } from "./gemini-request";
import type { SSEMessage } from "./sse";
import type {
  Completion,
  FinishReason,
  ProviderAdapter,
  ReasoningDetail,
  StreamDecoder,
  StreamEvent,
  ToolCallOut,
  UpstreamFailure,
  Usage,
} from "./types";

const count = z.number().int().nonnegative();

const usageSchema = z.looseObject({
  promptTokenCount: count.default(0),
  candidatesTokenCount: count.default(0),
  thoughtsTokenCount: count.default(0),
  cachedContentTokenCount: count.default(0),
  toolUsePromptTokenCount: count.default(0),
});

const partSchema = z.looseObject({
  text: z.string().optional(),
  thought: z.boolean().optional(),
  thoughtSignature: z.string().optional(),
  functionCall: z
    .looseObject({
      id: z.string().optional(),
      name: z.string().min(1),
      args: z.record(z.string(), z.unknown()).nullish(),
    })
    .optional(),
});
type Part = z.infer<typeof partSchema>;

const candidateSchema = z.looseObject({
  content: z.looseObject({ parts: z.array(partSchema).default([]) }).nullish(),
  finishReason: z.string().nullish(),
});

const responseSchema = z.looseObject({
  candidates: z.array(candidateSchema).nullish(),
  promptFeedback: z.looseObject({ blockReason: z.string().nullish() }).nullish(),
  usageMetadata: usageSchema.nullish(),
});

const chunkSchema = responseSchema.extend({
  error: z
    .looseObject({ code: z.number().optional(), message: z.string().optional(), status: z.string().optional() })
    .nullish(),
});

/**
 * Gemini's `promptTokenCount` already includes cached tokens, and thoughts are billed as output.
 * Tool-use prompt tokens (built-in tools) are input the model read, so they count as prompt.
 */
function toUsage(u: z.infer<typeof usageSchema>): Usage {
  return {
    promptTokens: u.promptTokenCount + u.toolUsePromptTokenCount,
    completionTokens: u.candidatesTokenCount + u.thoughtsTokenCount,
    cachedTokens: u.cachedContentTokenCount,
    cacheWriteTokens: 0,
    reasoningTokens: u.thoughtsTokenCount,
  };
}

/** OpenRouter's finish reason for Gemini's; a STOP that returned function calls is `tool_calls`. */
export function normaliseGeminiFinish(reason: string, sawToolCall: boolean): FinishReason {
  switch (reason) {
    case "STOP":
      return sawToolCall ? "tool_calls" : "stop";
    case "MAX_TOKENS":
      return "length";
    case "SAFETY":
    case "RECITATION":
    case "BLOCKLIST":
    case "PROHIBITED_CONTENT":
    case "SPII":
    case "IMAGE_SAFETY":
    case "IMAGE_PROHIBITED_CONTENT":
    case "IMAGE_RECITATION":
      return "content_filter";
    case "MALFORMED_FUNCTION_CALL":
    case "UNEXPECTED_TOOL_CALL":
    case "TOO_MANY_TOOL_CALLS":
      return "error";
    default:
      return "stop";
  }
}

function newToolCallId(): string {
  return `call_${crypto.randomUUID().replaceAll("-", "").slice(0, 24)}`;
}

interface TranslatedParts {
  content: string;
  reasoning: string;
  toolCalls: ToolCallOut[];
  reasoningDetails: ReasoningDetail[];
}

function translateParts(parts: Part[]): TranslatedParts {
  const out: TranslatedParts = { content: "", reasoning: "", toolCalls: [], reasoningDetails: [] };
  for (const part of parts) {
    let callId: string | undefined;
    if (part.functionCall) {
      callId = part.functionCall.id || newToolCallId();
      out.toolCalls.push({
        id: callId,
        type: "function",
        function: { name: part.functionCall.name, arguments: JSON.stringify(part.functionCall.args ?? {}) },
      });
    } else if (part.text !== undefined) {
      if (part.thought) out.reasoning += part.text;
      else out.content += part.text;
    }
    if (part.thoughtSignature) {
      const detail: ReasoningDetail = { type: "reasoning.encrypted", data: part.thoughtSignature };
      if (callId) detail.id = callId;
      detail.format = GEMINI_SIGNATURE_FORMAT;
      out.reasoningDetails.push(detail);
    }
  }
  return out;
}


/** Google's canonical status names, which say more than the HTTP status alone. */
function classifyGoogleStatus(status: string | undefined, httpStatus: number | undefined, message: string): UpstreamErrorType {
  switch (status) {
    case "RESOURCE_EXHAUSTED":
      return "rate_limit_exceeded";
    case "UNAVAILABLE":
      return "provider_unavailable";
    case "INVALID_ARGUMENT":
    case "FAILED_PRECONDITION":
    case "OUT_OF_RANGE":
      return classifyStatus(400, message);
    case "PERMISSION_DENIED":
    case "UNAUTHENTICATED":
      return "authentication";
    case "DEADLINE_EXCEEDED":
      return "timeout";
    case "NOT_FOUND":
      return "not_found";
    default:
      return httpStatus !== undefined && httpStatus >= 400 ? classifyStatus(httpStatus, message) : "server";
  }
}

const googleErrorSchema = z.looseObject({
  error: z.looseObject({
    status: z.string().optional(),
    details: z.array(z.unknown()).optional(),
  }),
});

function parseGoogleError(status: number, body: string): UpstreamFailure {
  const failure = parseErrorBody(status, body);
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return failure;
  }
  const parsed = googleErrorSchema.safeParse(Array.isArray(json) ? json[0] : json);
  if (!parsed.success) return failure;
  const { status: googleStatus, details } = parsed.data.error;
  // A bad AI Studio key is a 400 INVALID_ARGUMENT whose details say API_KEY_INVALID.
  if (details?.some((detail) => isRecord(detail) && detail.reason === "API_KEY_INVALID")) {
    return { message: failure.message, errorType: "authentication" };
  }
  if (!googleStatus) return failure;
  return { message: failure.message, errorType: classifyGoogleStatus(googleStatus, status, failure.message) };
}

export const gemini: ProviderAdapter = {
  family: "gemini",

  buildRequest: buildGeminiRequest,

  parseResponse(json: unknown): Completion {
    const parsed = responseSchema.safeParse(json);
    if (!parsed.success) throw invalidResponse("Gemini returned a response that is not a GenerateContentResponse");
    const { candidates, promptFeedback, usageMetadata } = parsed.data;
    const usage = usageMetadata ? toUsage(usageMetadata) : null;
    const candidate = candidates?.[0];
    if (!candidate) {
      const blockReason = promptFeedback?.blockReason;
      if (!blockReason) throw invalidResponse("Gemini returned no candidates and no block reason");
      return {
        content: null,
        reasoning: null,
        reasoningDetails: [],
        toolCalls: [],
        nativeFinishReason: blockReason,
        finishReason: "content_filter",
        usage,
      };
    }
    const translated = translateParts(candidate.content?.parts ?? []);
    const native = candidate.finishReason ?? null;
    return {
      content: translated.content || null,
      reasoning: translated.reasoning || null,
      reasoningDetails: translated.reasoningDetails,
      toolCalls: translated.toolCalls,
      nativeFinishReason: native,
      finishReason: native === null ? null : normaliseGeminiFinish(native, translated.toolCalls.length > 0),
      usage,
    };
  },

  createStreamDecoder(): StreamDecoder {
    return new GeminiStreamDecoder();
  },

  parseError: parseGoogleError,
};

/**
 * Every Gemini SSE event is a whole `GenerateContentResponse` holding the new parts only. Function
 * calls arrive complete, so each becomes one tool call delta with the next free index.
 */
class GeminiStreamDecoder implements StreamDecoder {
  #nextToolIndex = 0;
  #finished = false;

  decode(message: SSEMessage): StreamEvent[] {
    const data = message.data.trim();
    if (!data) return [];
    const json = parseEventJson(data, "Gemini");
    const parsed = chunkSchema.safeParse(json);
    if (!parsed.success) throw invalidResponse("Gemini sent a stream event that is not a GenerateContentResponse");
    const chunk = parsed.data;
    if (chunk.error) {
      const message = chunk.error.message || "Gemini stream error";
      return [{ type: "error", message, errorType: classifyGoogleStatus(chunk.error.status, chunk.error.code, message) }];
    }

    const events: StreamEvent[] = [];
    const candidate = chunk.candidates?.[0];
    const translated = translateParts(candidate?.content?.parts ?? []);
    const delta: Extract<StreamEvent, { type: "delta" }> = { type: "delta" };
    if (translated.content) delta.content = translated.content;
    if (translated.reasoning) delta.reasoning = translated.reasoning;
    if (translated.reasoningDetails.length > 0) delta.reasoningDetails = translated.reasoningDetails;
    if (translated.toolCalls.length > 0) {
      delta.toolCalls = translated.toolCalls.map((call) => ({
        index: this.#nextToolIndex++,
        id: call.id,
        name: call.function.name,
        arguments: call.function.arguments,
      }));
    }
    if (Object.keys(delta).length > 1) events.push(delta);

    const native = candidate?.finishReason ?? (candidate ? undefined : chunk.promptFeedback?.blockReason);
    if (native && !this.#finished) {
      this.#finished = true;
      const finishReason = candidate ? normaliseGeminiFinish(native, this.#nextToolIndex > 0) : "content_filter";
      events.push({ type: "finish", nativeFinishReason: native, finishReason });
    }
    if (chunk.usageMetadata) events.push({ type: "usage", usage: toUsage(chunk.usageMetadata) });
    return events;
  }
}
