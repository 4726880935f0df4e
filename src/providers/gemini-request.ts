/**
 * @module providers/gemini-request
 * An OpenAI-shaped chat request as a Gemini `generateContent` request. Gemini rejects fields it
 * does not know, so the body is built from scratch: nothing the client sent passes through
 * unread. What Gemini cannot express (tool results for calls nobody made, unparsable tool
 * arguments, media it cannot fetch) is a 400 here rather than a vaguer one upstream.
 */
import { parseToolArguments } from "./json";
import { catalogHeaders } from "./headers";
import { z } from "zod";
import { GatewayError } from "../errors";
import {
  contentText,
  imagePartSchema,
  requestedMaxTokens,
  textPartSchema,
  type ChatMessage,
  type ChatRequest,
  type ContentPart,
} from "../schemas/openai";
import { isRecord } from "./errors";
import { isEmptyObjectSchema, toGeminiSchema } from "./gemini-schema";
import type { UpstreamRequest, UpstreamTarget } from "./types";

/** The `format` of the reasoning details that carry Gemini thought signatures. */
export const GEMINI_SIGNATURE_FORMAT = "google-gemini-v1";

/** Thinking budgets for OpenRouter's effort levels (2.5 Flash caps the budget at 24576). */
const EFFORT_BUDGET = { minimal: 1024, low: 1024, medium: 8192, high: 24576, xhigh: 24576 } as const;

type GeminiPart =
  | { text: string; thoughtSignature?: string }
  | { inlineData: { mimeType: string; data: string } }
  | { fileData: { mimeType: string; fileUri: string } }
  | { functionCall: { name: string; args: Record<string, unknown> }; thoughtSignature?: string }
  | { functionResponse: { name: string; response: Record<string, unknown> } };

interface GeminiContent {
  role: "user" | "model";
  parts: GeminiPart[];
}

type AssistantMessage = Extract<ChatMessage, { role: "assistant" }>;
type ToolMessage = Extract<ChatMessage, { role: "tool" }>;

const audioPartSchema = z.looseObject({
  type: z.literal("input_audio"),
  input_audio: z.looseObject({ data: z.string().min(1), format: z.string().min(1) }),
});
const filePartSchema = z.looseObject({
  type: z.literal("file"),
  file: z.looseObject({ file_data: z.string().optional() }),
});

const IMAGE_MIME_BY_EXTENSION: Record<string, string> = {
  png: "image/png",
  jpg: "image/jpeg",
  jpeg: "image/jpeg",
  webp: "image/webp",
  gif: "image/gif",
  heic: "image/heic",
  heif: "image/heif",
  pdf: "application/pdf",
};

function badRequest(message: string): GatewayError {
  return new GatewayError("bad_request", message);
}

function buildUrl(target: UpstreamTarget, stream: boolean): string {
  const base = target.baseUrl.replace(/\/+$/, "");
  const method = stream ? "streamGenerateContent?alt=sse" : "generateContent";
  return `${base}/models/${encodeURIComponent(target.model)}:${method}`;
}

function authHeaders(target: UpstreamTarget): Record<string, string> {
  return target.options.auth === "bearer"
    ? { authorization: `Bearer ${target.apiKey}` }
    : { "x-goog-api-key": target.apiKey };
}

/** `data:` URLs become inline bytes; `http(s):` and `gs:` URLs are fetched by Google. */
function mediaPart(url: string, what: string): GeminiPart {
  if (url.startsWith("data:")) {
    const match = /^data:([^;,]+)(?:;[^;,]*)*;base64,(.*)$/s.exec(url);
    if (!match) throw badRequest(`${what} data URLs must be base64-encoded (data:<mime>;base64,<data>)`);
    return { inlineData: { mimeType: match[1]!, data: match[2]! } };
  }
  if (/^(https?|gs):\/\//i.test(url)) return { fileData: { mimeType: guessMimeType(url), fileUri: url } };
  throw badRequest(`${what} URLs must be data:, http(s): or gs: URLs`);
}

function guessMimeType(url: string): string {
  const path = url.replace(/[?#].*$/s, "");
  const extension = /\.([a-z0-9]+)$/i.exec(path)?.[1]?.toLowerCase();
  return (extension && IMAGE_MIME_BY_EXTENSION[extension]) || "image/jpeg";
}

function userParts(content: string | ContentPart[]): GeminiPart[] {
  if (typeof content === "string") return content ? [{ text: content }] : [];
  const parts: GeminiPart[] = [];
  for (const part of content) {
    const text = textPartSchema.safeParse(part);
    if (text.success) {
      if (text.data.text) parts.push({ text: text.data.text });
      continue;
    }
    const image = imagePartSchema.safeParse(part);
    if (image.success) {
      parts.push(mediaPart(image.data.image_url.url, "image_url"));
      continue;
    }
    const audio = audioPartSchema.safeParse(part);
    if (audio.success) {
      const { data, format } = audio.data.input_audio;
      parts.push({ inlineData: { mimeType: `audio/${format}`, data } });
      continue;
    }
    const file = filePartSchema.safeParse(part);
    if (file.success && file.data.file.file_data) {
      parts.push(mediaPart(file.data.file.file_data, "file"));
      continue;
    }
    throw badRequest(`Gemini does not accept content parts of type "${part.type}" in this form`);
  }
  return parts;
}


/** Thought signatures carried by an assistant message, by tool call id (`""` for the text part). */
function signaturesOf(message: AssistantMessage): Map<string, string> {
  const signatures = new Map<string, string>();
  for (const detail of message.reasoning_details ?? []) {
    if (detail.type !== "reasoning.encrypted" || detail.format !== GEMINI_SIGNATURE_FORMAT) continue;
    if (typeof detail.data !== "string" || !detail.data) continue;
    const key = typeof detail.id === "string" ? detail.id : "";
    if (!signatures.has(key)) signatures.set(key, detail.data);
  }
  return signatures;
}

function assistantParts(message: AssistantMessage, toolNames: Map<string, string>): GeminiPart[] {
  const signatures = signaturesOf(message);
  const parts: GeminiPart[] = [];
  const text = contentText(message.content);
  if (text) {
    const turnSignature = signatures.get("");
    parts.push(turnSignature ? { text, thoughtSignature: turnSignature } : { text });
  }
  for (const call of message.tool_calls ?? []) {
    const name = call.function.name;
    toolNames.set(call.id, name);
    const functionCall = { name, args: parseToolArguments(name, call.function.arguments) };
    const signature = signatures.get(call.id);
    parts.push(signature ? { functionCall, thoughtSignature: signature } : { functionCall });
  }
  return parts;
}

function functionResponsePart(message: ToolMessage, toolNames: Map<string, string>): GeminiPart {
  const name = toolNames.get(message.tool_call_id);
  if (!name) {
    throw badRequest(
      `Tool message answers tool_call_id "${message.tool_call_id}", which no earlier assistant message called; Gemini needs the function name`,
    );
  }
  const text = contentText(message.content);
  let response: Record<string, unknown> = { content: text };
  try {
    const parsed: unknown = JSON.parse(text);
    if (isRecord(parsed)) response = parsed;
  } catch {
    // Plain text results are wrapped as {content}.
  }
  return { functionResponse: { name, response } };
}

function buildContents(messages: ChatMessage[]): { contents: GeminiContent[]; system: { text: string }[] } {
  const contents: GeminiContent[] = [];
  const system: { text: string }[] = [];
  const toolNames = new Map<string, string>();
  const append = (role: GeminiContent["role"], parts: GeminiPart[]): void => {
    if (parts.length === 0) return;
    const last = contents.at(-1);
    if (last?.role === role) last.parts.push(...parts);
    else contents.push({ role, parts });
  };
  for (const message of messages) {
    switch (message.role) {
      case "system":
      case "developer": {
        const text = contentText(message.content);
        if (text) system.push({ text });
        break;
      }
      case "user":
        append("user", userParts(message.content));
        break;
      case "assistant":
        append("model", assistantParts(message, toolNames));
        break;
      case "tool":
        append("user", [functionResponsePart(message, toolNames)]);
        break;
    }
  }
  return { contents, system };
}

function buildTools(req: ChatRequest): Record<string, unknown>[] | undefined {
  if (!req.tools?.length) return undefined;
  const functionDeclarations = req.tools.map(({ function: fn }) => {
    const declaration: Record<string, unknown> = { name: fn.name };
    if (fn.description) declaration.description = fn.description;
    if (fn.parameters) {
      const parameters = toGeminiSchema(fn.parameters);
      if (!isEmptyObjectSchema(parameters)) declaration.parameters = parameters;
    }
    return declaration;
  });
  return [{ functionDeclarations }];
}

function buildToolConfig(req: ChatRequest): Record<string, unknown> | undefined {
  const choice = req.tool_choice;
  if (choice === undefined) return undefined;
  if (typeof choice === "object") {
    return { functionCallingConfig: { mode: "ANY", allowedFunctionNames: [choice.function.name] } };
  }
  const mode = { auto: "AUTO", none: "NONE", required: "ANY" }[choice];
  return { functionCallingConfig: { mode } };
}

function buildThinkingConfig(req: ChatRequest): Record<string, unknown> | undefined {
  const reasoning = req.reasoning;
  if (!reasoning && !req.reasoning_effort) return undefined;
  const effort = reasoning?.effort ?? req.reasoning_effort;
  let budget: number | undefined;
  if (reasoning?.enabled === false || effort === "none") budget = 0;
  else if (reasoning?.max_tokens !== undefined) budget = reasoning.max_tokens;
  else if (effort) budget = EFFORT_BUDGET[effort];
  if (budget === 0) return { thinkingBudget: 0 };
  const config: Record<string, unknown> = {};
  if (budget !== undefined) config.thinkingBudget = budget;
  if (!reasoning?.exclude) config.includeThoughts = true;
  return config;
}

function buildGenerationConfig(req: ChatRequest): Record<string, unknown> | undefined {
  const config: Record<string, unknown> = {};
  if (req.temperature != null) config.temperature = req.temperature;
  if (req.top_p != null) config.topP = req.top_p;
  if (req.top_k != null) config.topK = req.top_k;
  const maxTokens = requestedMaxTokens(req);
  if (maxTokens !== undefined) config.maxOutputTokens = maxTokens;
  if (req.stop != null) config.stopSequences = typeof req.stop === "string" ? [req.stop] : req.stop;
  if (req.seed != null) config.seed = req.seed;
  if (req.presence_penalty != null) config.presencePenalty = req.presence_penalty;
  if (req.frequency_penalty != null) config.frequencyPenalty = req.frequency_penalty;
  const format = req.response_format;
  if (format?.type === "json_object") config.responseMimeType = "application/json";
  if (format?.type === "json_schema") {
    config.responseMimeType = "application/json";
    if (format.json_schema.schema) config.responseSchema = toGeminiSchema(format.json_schema.schema);
  }
  const thinking = buildThinkingConfig(req);
  if (thinking) config.thinkingConfig = thinking;
  return Object.keys(config).length > 0 ? config : undefined;
}

/** The native request: `generateContent`, or `streamGenerateContent?alt=sse` when streaming. */
export function buildGeminiRequest(req: ChatRequest, target: UpstreamTarget, stream: boolean): UpstreamRequest {
  const { contents, system } = buildContents(req.messages);
  if (contents.length === 0) throw badRequest("Gemini needs at least one user or assistant message besides system messages");
  const body: Record<string, unknown> = { contents };
  if (system.length > 0) body.systemInstruction = { parts: system };
  const tools = buildTools(req);
  if (tools) body.tools = tools;
  const toolConfig = buildToolConfig(req);
  if (toolConfig) body.toolConfig = toolConfig;
  const generationConfig = buildGenerationConfig(req);
  if (generationConfig) body.generationConfig = generationConfig;
  return {
    url: buildUrl(target, stream),
    headers: { "content-type": "application/json", ...catalogHeaders(target.options), ...authHeaders(target) },
    body: JSON.stringify(body),
  };
}
