/**
 * @module providers/types
 * The one interface every provider family implements. Adapters translate an OpenAI-shaped chat
 * request into the provider's native HTTP request, and the provider's answer (JSON or SSE events)
 * back into neutral completions and stream events. They never touch D1, Durable Objects or the
 * client's response: the caller resolves the target from the catalog and owns the HTTP surface.
 */
import type { UpstreamErrorType } from "../errors";
import type { ChatRequest } from "../schemas/openai";
import type { SSEMessage } from "./sse";

export type ProviderFamily = "openai" | "anthropic" | "gemini";

/** Finish reasons as OpenRouter normalises them. */
export type FinishReason = "stop" | "length" | "tool_calls" | "content_filter" | "error";

/** How a provider wants its credential, and other family-specific knobs from the catalog. */
export interface ProviderOptions {
  /** Header carrying the key; defaults per family (Bearer, x-api-key, x-goog-api-key). */
  auth?: "bearer" | "api-key" | "x-api-key" | "x-goog-api-key" | undefined;
  /** Azure OpenAI: `api-version` query parameter; the model id is the deployment name. */
  apiVersion?: string | undefined;
  /** Azure OpenAI: `{base}/openai/deployments/{model}/chat/completions`. */
  deploymentInPath?: boolean | undefined;
  /** OpenAI-compatible: the name the vendor wants for the output cap (OpenAI's newer models refuse `max_tokens`). */
  maxTokensField?: "max_tokens" | "max_completion_tokens" | undefined;
  /** Anthropic on Vertex AI: `:rawPredict` URLs, model in the path, `anthropic_version` in the body. */
  vertex?: boolean | undefined;
  /** Extra request headers (e.g. `anthropic-version`, attribution headers). */
  headers?: Record<string, string> | undefined;
}

/** One upstream endpoint, fully resolved: where to send, with which key, for which model. */
export interface UpstreamTarget {
  family: ProviderFamily;
  baseUrl: string;
  apiKey: string;
  /** The provider's own model id (or Azure deployment name). */
  model: string;
  /** The endpoint's output cap; families that require `max_tokens` use it as the default. */
  maxOutputTokens: number | null;
  options: ProviderOptions;
}

/** Token counts as the gateway bills them. `promptTokens` includes cached and cache-write tokens. */
export interface Usage {
  promptTokens: number;
  completionTokens: number;
  cachedTokens: number;
  cacheWriteTokens: number;
  reasoningTokens: number;
}

export interface ToolCallOut {
  id: string;
  type: "function";
  function: { name: string; arguments: string };
}

/** A non-streamed answer, before the gateway adds ids, cost and provider naming. */
export interface Completion {
  content: string | null;
  reasoning: string | null;
  /** Provider reasoning blocks to hand back on the next turn (e.g. Anthropic signed thinking). */
  reasoningDetails: ReasoningDetail[];
  toolCalls: ToolCallOut[];
  nativeFinishReason: string | null;
  finishReason: FinishReason | null;
  usage: Usage | null;
}

export interface ReasoningDetail {
  type: string;
  [key: string]: unknown;
}

export interface ToolCallDelta {
  /** Position of the call among this response's tool calls, starting at 0. */
  index: number;
  id?: string;
  name?: string;
  arguments?: string;
}

/**
 * What a stream decoder emits. `usage` events are cumulative snapshots: the latest one wins,
 * so families that report input and output tokens in different events stay simple.
 */
export type StreamEvent =
  | {
      type: "delta";
      content?: string;
      reasoning?: string;
      reasoningDetails?: ReasoningDetail[];
      toolCalls?: ToolCallDelta[];
    }
  | { type: "finish"; nativeFinishReason: string | null; finishReason: FinishReason }
  | { type: "usage"; usage: Usage }
  | { type: "error"; message: string; errorType: UpstreamErrorType };

/** Per-stream translation state lives in one object per stream. */
export interface StreamDecoder {
  /** Translate one upstream SSE message; may emit nothing. Throws on malformed data. */
  decode(message: SSEMessage): StreamEvent[];
}

export interface UpstreamRequest {
  url: string;
  headers: Record<string, string>;
  body: string;
}

export interface UpstreamFailure {
  message: string;
  errorType: UpstreamErrorType;
}

export interface ProviderAdapter {
  readonly family: ProviderFamily;
  /** Build the native HTTP request. Throws `GatewayError("bad_request")` for what the family cannot express. */
  buildRequest(req: ChatRequest, target: UpstreamTarget, stream: boolean): UpstreamRequest;
  /** Translate a 2xx JSON body. Throws `GatewayError("upstream_error")` when it is not the expected shape. */
  parseResponse(body: unknown): Completion;
  createStreamDecoder(): StreamDecoder;
  /** Explain a non-2xx answer: the provider's own message and OpenRouter's error type. */
  parseError(status: number, body: string): UpstreamFailure;
}

export const emptyUsage = (): Usage => ({
  promptTokens: 0,
  completionTokens: 0,
  cachedTokens: 0,
  cacheWriteTokens: 0,
  reasoningTokens: 0,
});
