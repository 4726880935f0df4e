/**
 * @module providers/anthropic-request
 * OpenAI-shaped chat requests as Anthropic Messages API requests, directly or on Vertex AI
 * (`options.vertex`). Nothing passes through: Anthropic rejects unknown fields, so every field is
 * translated or dropped on purpose, and what Anthropic cannot express is a 400, never a silent drop.
 * Signed thinking comes back from clients as OpenRouter's `reasoning_details` and is replayed as
 * `thinking` / `redacted_thinking` blocks, which is what lets tool loops with extended thinking
 * continue across turns.
 */
import { parseToolArguments } from "./json";
import { catalogHeaders } from "./headers";
import { z } from "zod";
import { GatewayError } from "../errors";
import type { ChatMessage, ChatRequest, ContentPart, FunctionTool, ResponseFormat, ToolChoice } from "../schemas/openai";
import { isRecord } from "./errors";
import type { ReasoningDetail, UpstreamRequest, UpstreamTarget } from "./types";

export const ANTHROPIC_VERSION = "2023-06-01";
export const VERTEX_ANTHROPIC_VERSION = "vertex-2023-10-16";
/** The `format` of reasoning details that carry Anthropic thinking blocks. */
export const ANTHROPIC_REASONING_FORMAT = "anthropic-claude-v1";

/** Anthropic requires `max_tokens`; used when neither the client nor the catalog gives one. */
const DEFAULT_MAX_TOKENS = 4096;
/** Anthropic's smallest accepted `thinking.budget_tokens`. */
const MIN_THINKING_BUDGET = 1024;
/** Thinking budgets per OpenRouter effort; capped at 80% of the output cap when one is known. */
const EFFORT_BUDGET = { minimal: 1024, low: 2048, medium: 8192, high: 24576, xhigh: 32000 } as const;

type CacheControl = Record<string, unknown>;
type TextBlock = { type: "text"; text: string; cache_control?: CacheControl };
type ImageBlock = {
  type: "image";
  source: { type: "base64"; media_type: string; data: string } | { type: "url"; url: string };
  cache_control?: CacheControl;
};
type DocumentBlock = {
  type: "document";
  source: { type: "base64"; media_type: string; data: string } | { type: "url"; url: string };
  cache_control?: CacheControl;
};
type ToolResultBlock = { type: "tool_result"; tool_use_id: string; content: string | (TextBlock | ImageBlock | DocumentBlock)[] };
type AssistantBlock =
  | TextBlock
  | { type: "thinking"; thinking: string; signature: string }
  | { type: "redacted_thinking"; data: string }
  | { type: "tool_use"; id: string; name: string; input: Record<string, unknown> };
type Block = TextBlock | ImageBlock | DocumentBlock | ToolResultBlock | AssistantBlock;
type Turn = { role: "user" | "assistant"; content: Block[] };

const badRequest = (message: string): GatewayError => new GatewayError("bad_request", message);

/** `cache_control` of a content part or tool, kept verbatim (the schemas keep it on loose objects). */
function withCacheControl<T extends object>(block: T, source: unknown): T & { cache_control?: CacheControl } {
  return isRecord(source) && isRecord(source.cache_control) ? { ...block, cache_control: source.cache_control } : block;
}

function textBlocks(content: string | ContentPart[], where: string): TextBlock[] {
  if (typeof content === "string") return content ? [{ type: "text", text: content }] : [];
  return content.flatMap((part): TextBlock[] => {
    if (part.type !== "text" || typeof part.text !== "string") {
      throw badRequest(`Anthropic does not accept "${part.type}" content in ${where} messages`);
    }
    return part.text ? [withCacheControl({ type: "text" as const, text: part.text }, part)] : [];
  });
}

/** Split a `data:` URL into media type and base64 payload. */
function parseDataUrl(url: string): { mediaType: string; data: string } | undefined {
  const match = /^data:([\w.+-]+\/[\w.+-]+)(?:;[^,;]*)*;base64,(.*)$/s.exec(url);
  return match ? { mediaType: match[1]!.toLowerCase(), data: match[2]! } : undefined;
}

function mediaSource(url: string, what: string): ImageBlock["source"] {
  if (url.startsWith("data:")) {
    const parsed = parseDataUrl(url);
    if (!parsed) throw badRequest(`${what} data URLs must be base64-encoded (data:<media type>;base64,...)`);
    return { type: "base64", media_type: parsed.mediaType, data: parsed.data };
  }
  if (/^https?:\/\//i.test(url)) return { type: "url", url };
  throw badRequest(`${what} URLs must be http(s) or base64 data URLs`);
}

function userBlocks(content: string | ContentPart[]): (TextBlock | ImageBlock | DocumentBlock)[] {
  if (typeof content === "string") return content ? [{ type: "text", text: content }] : [];
  return content.flatMap((part): (TextBlock | ImageBlock | DocumentBlock)[] => {
    if (part.type === "text" && typeof part.text === "string") {
      return part.text ? [withCacheControl({ type: "text" as const, text: part.text }, part)] : [];
    }
    if (part.type === "image_url" && isRecord(part.image_url) && typeof part.image_url.url === "string") {
      return [withCacheControl({ type: "image" as const, source: mediaSource(part.image_url.url, "Image") }, part)];
    }
    // OpenRouter's PDF input: `{type:"file", file:{filename, file_data}}`, file_data a data or http(s) URL.
    if (part.type === "file" && isRecord(part.file) && typeof part.file.file_data === "string") {
      return [withCacheControl({ type: "document" as const, source: mediaSource(part.file.file_data, "File") }, part)];
    }
    throw badRequest(`Anthropic does not accept "${part.type}" content parts`);
  });
}


const textDetailSchema = z.looseObject({
  type: z.literal("reasoning.text"),
  text: z.string().nullish(),
  signature: z.string().nullish(),
  format: z.string().nullish(),
  index: z.number().int().nullish(),
});
const encryptedDetailSchema = z.looseObject({
  type: z.literal("reasoning.encrypted"),
  data: z.string(),
  format: z.string().nullish(),
  index: z.number().int().nullish(),
});

type ThinkingBlock = Extract<AssistantBlock, { type: "thinking" | "redacted_thinking" }>;

/**
 * Thinking blocks from a previous turn's `reasoning_details`. Streamed details arrive as fragments
 * sharing an `index` (text pieces, then the signature), so fragments are merged by index. Details
 * in other formats are not Anthropic's to verify, and Anthropic rejects unsigned thinking, so both
 * are left out.
 */
function thinkingBlocks(details: ReasoningDetail[]): ThinkingBlock[] {
  const blocks: ThinkingBlock[] = [];
  const byIndex = new Map<number, ThinkingBlock>();
  for (const detail of details) {
    const parsed = z.union([textDetailSchema, encryptedDetailSchema]).safeParse(detail);
    if (!parsed.success || (parsed.data.format != null && parsed.data.format !== ANTHROPIC_REASONING_FORMAT)) continue;
    const { data: fragment } = parsed;
    const existing = fragment.index != null ? byIndex.get(fragment.index) : undefined;
    if (fragment.type === "reasoning.text" && existing?.type === "thinking") {
      existing.thinking += fragment.text ?? "";
      if (fragment.signature) existing.signature = fragment.signature;
      continue;
    }
    const block: ThinkingBlock =
      fragment.type === "reasoning.text"
        ? { type: "thinking", thinking: fragment.text ?? "", signature: fragment.signature ?? "" }
        : { type: "redacted_thinking", data: fragment.data };
    blocks.push(block);
    if (fragment.index != null) byIndex.set(fragment.index, block);
  }
  return blocks.filter((block) => block.type === "redacted_thinking" || block.signature !== "");
}

function assistantBlocks(message: Extract<ChatMessage, { role: "assistant" }>): AssistantBlock[] {
  const blocks: AssistantBlock[] = thinkingBlocks(message.reasoning_details ?? []);
  if (message.content != null) blocks.push(...textBlocks(message.content, "assistant"));
  for (const call of message.tool_calls ?? []) {
    blocks.push({ type: "tool_use", id: call.id, name: call.function.name, input: parseToolArguments(call.function.name, call.function.arguments) });
  }
  return blocks;
}

function toolResult(message: Extract<ChatMessage, { role: "tool" }>): ToolResultBlock {
  const content = typeof message.content === "string" ? message.content : userBlocks(message.content);
  return { type: "tool_result", tool_use_id: message.tool_call_id, content };
}

/**
 * OpenAI messages to Anthropic's: system and developer messages become the top-level `system`,
 * tool results become user turns, and consecutive turns of one role are merged because Anthropic
 * requires alternation. Tool results go first in their user turn, as Anthropic requires.
 */
function translateMessages(messages: ChatMessage[]): { system: TextBlock[]; turns: Turn[] } {
  const system: TextBlock[] = [];
  const turns: Turn[] = [];
  const push = (role: Turn["role"], blocks: Block[]): void => {
    if (blocks.length === 0) return;
    const last = turns.at(-1);
    if (last?.role === role) last.content.push(...blocks);
    else turns.push({ role, content: blocks });
  };
  for (const message of messages) {
    switch (message.role) {
      case "system":
      case "developer":
        system.push(...textBlocks(message.content, message.role));
        break;
      case "user":
        push("user", userBlocks(message.content));
        break;
      case "assistant":
        push("assistant", assistantBlocks(message));
        break;
      case "tool":
        push("user", [toolResult(message)]);
        break;
    }
  }
  for (const turn of turns) {
    if (turn.role === "user") {
      turn.content = [...turn.content.filter((b) => b.type === "tool_result"), ...turn.content.filter((b) => b.type !== "tool_result")];
    }
  }
  // A final assistant turn is a prefill, and Anthropic rejects one that ends in whitespace.
  const last = turns.at(-1);
  const tail = last?.role === "assistant" ? last.content.at(-1) : undefined;
  if (tail?.type === "text") tail.text = tail.text.trimEnd();
  if (last && tail?.type === "text" && !tail.text) last.content.pop();
  if (last?.content.length === 0) turns.pop();
  if (turns.length === 0) throw badRequest("Anthropic needs at least one user or assistant message besides system messages");
  return { system, turns };
}

function translateTools(tools: FunctionTool[]): Record<string, unknown>[] {
  return tools.map(({ function: fn, ...tool }) =>
    withCacheControl(
      {
        name: fn.name,
        ...(fn.description ? { description: fn.description } : {}),
        input_schema: fn.parameters ? { type: "object", ...fn.parameters } : { type: "object", properties: {} },
      },
      tool,
    ),
  );
}

function translateToolChoice(choice: ToolChoice | undefined, parallel: boolean | null | undefined): Record<string, unknown> | undefined {
  const serial = parallel === false ? { disable_parallel_tool_use: true } : {};
  if (choice === "none") return { type: "none" };
  if (choice === undefined) return parallel === false ? { type: "auto", ...serial } : undefined;
  if (choice === "auto") return { type: "auto", ...serial };
  if (choice === "required") return { type: "any", ...serial };
  return { type: "tool", name: choice.function.name, ...serial };
}

/**
 * Anthropic has no `response_format` on the Messages API (its structured outputs are a beta for
 * some models, and forcing a tool call would clash with the client's own tools and with thinking),
 * so JSON mode becomes an instruction appended to the system prompt.
 */
function jsonInstruction(format: ResponseFormat | undefined): string | undefined {
  const rules = "Respond with JSON only: no prose before or after it and no Markdown code fences.";
  if (format?.type === "json_object") return `${rules} The response must be a single valid JSON object.`;
  if (format?.type !== "json_schema") return undefined;
  const { name, description, schema } = format.json_schema;
  const about = description ? ` (${description})` : "";
  if (!schema) return `${rules} The response must be a single valid JSON value named "${name}"${about}.`;
  return `${rules} The response must be a single JSON value that validates against the JSON schema "${name}"${about}:\n${JSON.stringify(schema)}`;
}

/** The thinking budget the client asked for, or undefined when thinking stays off. */
function requestedThinking(req: ChatRequest): { explicit: number } | { effort: number } | undefined {
  const reasoning = req.reasoning;
  if (reasoning?.enabled === false) return undefined;
  const effort = reasoning?.effort ?? req.reasoning_effort;
  if (effort === "none") return undefined;
  if (reasoning?.max_tokens !== undefined) return { explicit: reasoning.max_tokens };
  if (effort) return { effort: EFFORT_BUDGET[effort] };
  if (reasoning?.enabled === true) return { effort: EFFORT_BUDGET.medium };
  return undefined;
}

/**
 * `max_tokens` and the thinking budget. Anthropic needs 1024 <= budget < max_tokens. An effort's
 * budget shrinks to fit a known cap; when the cap still cannot hold the budget (an explicit
 * `reasoning.max_tokens`, or a cap below 1024) the client's cap is read as the answer's and the
 * budget is added on top, within the endpoint's output limit.
 */
function tokenPlan(req: ChatRequest, target: UpstreamTarget): { maxTokens: number; budget: number | undefined } {
  const requested = req.max_completion_tokens ?? req.max_tokens ?? undefined;
  const cap = requested ?? target.maxOutputTokens ?? undefined;
  const thinking = requestedThinking(req);
  if (!thinking) return { maxTokens: cap ?? DEFAULT_MAX_TOKENS, budget: undefined };
  let budget = "explicit" in thinking ? thinking.explicit : Math.min(thinking.effort, cap === undefined ? Infinity : Math.floor(cap * 0.8));
  budget = Math.max(MIN_THINKING_BUDGET, budget);
  let maxTokens = cap ?? DEFAULT_MAX_TOKENS;
  if (budget >= maxTokens) maxTokens = Math.min(budget + (requested ?? DEFAULT_MAX_TOKENS), target.maxOutputTokens ?? Infinity);
  if (budget >= maxTokens) budget = maxTokens - 1;
  if (budget < MIN_THINKING_BUDGET) {
    throw badRequest(`Extended thinking needs an output limit above ${MIN_THINKING_BUDGET} tokens; this endpoint allows ${maxTokens}`);
  }
  return { maxTokens, budget };
}

function buildHeaders(target: UpstreamTarget): Record<string, string> {
  const extra = catalogHeaders(target.options);
  if (target.options.vertex) {
    delete extra["anthropic-version"];
    return { "content-type": "application/json", ...extra, authorization: `Bearer ${target.apiKey}` };
  }
  const auth: Record<string, string> =
    target.options.auth === "bearer" ? { authorization: `Bearer ${target.apiKey}` } : { "x-api-key": target.apiKey };
  return { "content-type": "application/json", "anthropic-version": ANTHROPIC_VERSION, ...extra, ...auth };
}

function buildUrl(target: UpstreamTarget, stream: boolean): string {
  const base = target.baseUrl.replace(/\/+$/, "");
  if (!target.options.vertex) return `${base}/messages`;
  const model = encodeURIComponent(target.model).replace(/%40/g, "@");
  return `${base}/models/${model}:${stream ? "streamRawPredict" : "rawPredict"}`;
}

function buildBody(req: ChatRequest, target: UpstreamTarget, stream: boolean): Record<string, unknown> {
  const { system, turns } = translateMessages(req.messages);
  const instruction = jsonInstruction(req.response_format);
  if (instruction) system.push({ type: "text", text: instruction });
  const { maxTokens, budget } = tokenPlan(req, target);
  const body: Record<string, unknown> = target.options.vertex
    ? { anthropic_version: VERTEX_ANTHROPIC_VERSION }
    : { model: target.model };
  body.max_tokens = maxTokens;
  if (system.length) body.system = system;
  body.messages = turns;
  if (req.tools?.length) {
    body.tools = translateTools(req.tools);
    const toolChoice = translateToolChoice(req.tool_choice, req.parallel_tool_calls);
    if (toolChoice) body.tool_choice = toolChoice;
  }
  if (budget !== undefined) body.thinking = { type: "enabled", budget_tokens: budget };
  const stop = typeof req.stop === "string" ? [req.stop] : req.stop;
  if (stop?.length) body.stop_sequences = stop;
  // With thinking on, Anthropic rejects temperature and top_k, and top_p below 0.95.
  if (req.temperature != null && budget === undefined) body.temperature = req.temperature;
  if (req.top_p != null && (budget === undefined || req.top_p >= 0.95)) body.top_p = req.top_p;
  if (req.top_k != null && budget === undefined) body.top_k = req.top_k;
  if (req.user) body.metadata = { user_id: req.user };
  if (stream) body.stream = true;
  return body;
}

/** The native HTTP request for a chat request: URL, headers and JSON body. */
export function buildAnthropicRequest(req: ChatRequest, target: UpstreamTarget, stream: boolean): UpstreamRequest {
  return { url: buildUrl(target, stream), headers: buildHeaders(target), body: JSON.stringify(buildBody(req, target, stream)) };
}
