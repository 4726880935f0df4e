/**
 * @module providers/openai-compatible
 * The base for every vendor that speaks OpenAI's chat completions API: OpenAI, Azure OpenAI,
 * Mistral, Groq, DeepSeek, Together, xAI and OpenRouter itself. Vendors differ only by
 * configuration (base URL, auth header, Azure's deployment path and api-version), kept in the
 * catalog's provider rows. Unknown request fields pass through untouched.
 */
import { isRecord } from "./errors";
import { parseEventJson } from "./json";
import { z } from "zod";
import { GatewayError } from "../errors";
import { GATEWAY_ONLY_FIELDS, type ChatRequest } from "../schemas/openai";
import { classifyStatus, parseErrorBody } from "./errors";
import { catalogHeaders, gatewaySetting } from "./headers";
import { normaliseOpenAIFinish, parseOpenAICompletion, reasoningDetailsSchema, toUsage, usageSchema } from "./openai-completion";
import type { SSEMessage } from "./sse";
import type {
  ProviderAdapter,
  StreamDecoder,
  StreamEvent,
  ToolCallDelta,
  UpstreamRequest,
  UpstreamTarget,
} from "./types";

const chunkSchema = z.looseObject({
  choices: z
    .array(
      z.looseObject({
        delta: z
          .looseObject({
            content: z.string().nullish(),
            reasoning: z.string().nullish(),
            reasoning_content: z.string().nullish(),
            reasoning_details: reasoningDetailsSchema,
            tool_calls: z
              .array(
                z.looseObject({
                  index: z.number().int().nonnegative().optional(),
                  id: z.string().nullish(),
                  function: z
                    .looseObject({ name: z.string().nullish(), arguments: z.string().nullish() })
                    .nullish(),
                }),
              )
              .nullish(),
          })
          .nullish(),
        finish_reason: z.string().nullish(),
      }),
    )
    .default([]),
  usage: usageSchema.nullish(),
  error: z.looseObject({ message: z.string().optional(), code: z.union([z.number(), z.string()]).nullish() }).nullish(),
});

function buildUrl(target: UpstreamTarget): string {
  const base = target.baseUrl.replace(/\/+$/, "");
  if (target.options.deploymentInPath) {
    const version = target.options.apiVersion ?? "2024-10-21";
    return `${base}/openai/deployments/${encodeURIComponent(target.model)}/chat/completions?api-version=${encodeURIComponent(version)}`;
  }
  const url = `${base}/chat/completions`;
  return target.options.apiVersion ? `${url}?api-version=${encodeURIComponent(target.options.apiVersion)}` : url;
}

function authHeaders(target: UpstreamTarget): Record<string, string> {
  switch (target.options.auth ?? "bearer") {
    case "api-key":
      return { "api-key": target.apiKey };
    case "x-api-key":
      return { "x-api-key": target.apiKey };
    case "x-goog-api-key":
      return { "x-goog-api-key": target.apiKey };
    case "bearer":
      return { authorization: `Bearer ${target.apiKey}` };
  }
}

/** Whether the upstream is OpenRouter-compatible and understands `reasoning` natively. */
function speaksOpenRouter(target: UpstreamTarget): boolean {
  return /openrouter/i.test(target.baseUrl) || gatewaySetting(target.options, "x-switchyard-dialect") === "openrouter";
}

export const openAICompatible: ProviderAdapter = {
  family: "openai",

  buildRequest(req: ChatRequest, target: UpstreamTarget, stream: boolean): UpstreamRequest {
    const body: Record<string, unknown> = { ...req };
    for (const field of GATEWAY_ONLY_FIELDS) delete body[field];
    body.model = target.model;
    body.stream = stream;
    if (stream) body.stream_options = { ...req.stream_options, include_usage: true };
    else delete body.stream_options;
    if (target.options.maxTokensField === "max_completion_tokens" && body.max_tokens != null && body.max_completion_tokens == null) {
      body.max_completion_tokens = body.max_tokens;
      delete body.max_tokens;
    }
    if (req.reasoning && !speaksOpenRouter(target)) {
      // OpenAI's chat API takes only an effort; a bare `enabled` means the default effort, and
      // `enabled: false` turns reasoning off whatever `reasoning_effort` said.
      delete body.reasoning;
      delete body.reasoning_effort;
      const effort = req.reasoning.effort ?? (req.reasoning.enabled === false ? undefined : req.reasoning_effort);
      if (effort) body.reasoning_effort = effort;
    }
    return {
      url: buildUrl(target),
      headers: { "content-type": "application/json", ...catalogHeaders(target.options), ...authHeaders(target) },
      body: JSON.stringify(body),
    };
  },

  parseResponse: parseOpenAICompletion,

  createStreamDecoder(): StreamDecoder {
    return new OpenAIStreamDecoder();
  },

  parseError: parseErrorBody,
};

/** Delta fields a text-only chunk may carry besides `content`. */
const PLAIN_DELTA_KEYS = new Set(["content", "role", "refusal"]);

/**
 * The text of a chunk that carries nothing but text — one choice, no finish, usage or error —
 * else undefined. Most of a stream is such chunks; checking them by hand spares the schema,
 * which costs more than the rest of the relay. Anything else takes the schema path.
 */
function plainText(json: unknown): string | undefined {
  if (!isRecord(json) || json.error != null || json.usage != null || !Array.isArray(json.choices) || json.choices.length !== 1) return undefined;
  const choice: unknown = json.choices[0];
  if (!isRecord(choice) || choice.finish_reason != null || !isRecord(choice.delta)) return undefined;
  const { delta } = choice;
  if (typeof delta.content !== "string" || delta.refusal != null) return undefined;
  for (const key in delta) if (!PLAIN_DELTA_KEYS.has(key)) return undefined;
  return delta.content;
}

/**
 * Some OpenAI-compatible vendors number every parallel tool call 0; a new call id at a used index
 * gets the next free index, so clients never merge two calls into one.
 */
class OpenAIStreamDecoder implements StreamDecoder {
  readonly #slots = new Map<number, { index: number; id: string | undefined }>();
  #nextIndex = 0;
  #finished = false;

  decode(message: SSEMessage): StreamEvent[] {
    const data = message.data.trim();
    if (!data || data === "[DONE]") return [];
    const json = parseEventJson(data);
    const text = plainText(json);
    if (text !== undefined) return text ? [{ type: "delta", content: text }] : [];
    const parsed = chunkSchema.safeParse(json);
    if (!parsed.success) {
      throw new GatewayError("upstream_error", "Upstream sent a stream event that is not a chat completion chunk", {
        metadata: { error_type: "invalid_response" },
      });
    }
    const chunk = parsed.data;
    if (chunk.error) {
      const message = chunk.error.message ?? "Upstream stream error";
      const code = chunk.error.code;
      return [{ type: "error", message, errorType: typeof code === "number" ? classifyStatus(code, message) : "server" }];
    }
    const events: StreamEvent[] = [];
    const choice = chunk.choices[0];
    const delta = choice?.delta;
    if (delta) {
      const event: Extract<StreamEvent, { type: "delta" }> = { type: "delta" };
      if (delta.content) event.content = delta.content;
      const reasoning = delta.reasoning ?? delta.reasoning_content;
      if (reasoning) event.reasoning = reasoning;
      if (delta.reasoning_details?.length) event.reasoningDetails = delta.reasoning_details;
      if (delta.tool_calls?.length) event.toolCalls = delta.tool_calls.map((call, position) => this.#toolDelta(call, position));
      if (Object.keys(event).length > 1) events.push(event);
    }
    if (choice?.finish_reason && !this.#finished) {
      this.#finished = true;
      events.push({
        type: "finish",
        nativeFinishReason: choice.finish_reason,
        finishReason: normaliseOpenAIFinish(choice.finish_reason) ?? "stop",
      });
    }
    if (chunk.usage) events.push({ type: "usage", usage: toUsage(chunk.usage) });
    return events;
  }

  #toolDelta(
    call: { index?: number | undefined; id?: string | null | undefined; function?: { name?: string | null | undefined; arguments?: string | null | undefined } | null | undefined },
    position: number,
  ): ToolCallDelta {
    const upstreamIndex = call.index ?? position;
    // Some servers repeat an empty id on later deltas of the same call.
    const id = call.id || undefined;
    let slot = this.#slots.get(upstreamIndex);
    if (!slot || (id !== undefined && slot.id !== undefined && slot.id !== id)) {
      slot = { index: this.#nextIndex++, id };
      this.#slots.set(upstreamIndex, slot);
    } else if (id !== undefined && slot.id === undefined) {
      slot.id = id;
    }
    const out: ToolCallDelta = { index: slot.index };
    if (id) out.id = id;
    if (call.function?.name) out.name = call.function.name;
    if (call.function?.arguments) out.arguments = call.function.arguments;
    return out;
  }
}
