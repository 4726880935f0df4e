/**
 * @module traces/destinations/genai-messages
 * Chat content in the OpenTelemetry GenAI semantic conventions' message shape
 * (`gen_ai.input.messages` / `gen_ai.output.messages`): `{role, parts: [{type, …}]}` with text,
 * tool call, tool call response, reasoning and URI parts. OTLP backends (Langfuse, LangSmith,
 * Datadog LLM Observability…) render conversations from exactly these attributes.
 */
import type { TraceContent } from "../schema";

export type GenAiPart =
  | { type: "text"; content: string }
  | { type: "reasoning"; content: string }
  | { type: "tool_call"; id: string | null; name: string; arguments: unknown }
  | { type: "tool_call_response"; id: string | null; response: string }
  | { type: "uri"; modality: "image"; uri: string }
  | { type: string };

export interface GenAiMessage {
  role: string;
  parts: GenAiPart[];
  finish_reason?: string;
}

function record(value: unknown): Record<string, unknown> | null {
  return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
}

function str(value: unknown): string | null {
  return typeof value === "string" ? value : null;
}

/** Tool arguments as JSON when they parse (as the conventions show them), else the raw string. */
function argumentsOf(raw: unknown): unknown {
  if (typeof raw !== "string") return raw ?? null;
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

function contentParts(content: unknown): GenAiPart[] {
  if (typeof content === "string") return content === "" ? [] : [{ type: "text", content }];
  if (!Array.isArray(content)) return [];
  return content.flatMap((raw): GenAiPart[] => {
    const part = record(raw);
    if (!part) return [];
    const type = str(part.type) ?? "unknown";
    if (type === "text") return [{ type: "text", content: str(part.text) ?? "" }];
    const url = str(record(part.image_url)?.url);
    if (type === "image_url" && url) return [{ type: "uri", modality: "image", uri: url }];
    return [{ type }];
  });
}

function toolCallParts(toolCalls: unknown): GenAiPart[] {
  if (!Array.isArray(toolCalls)) return [];
  return toolCalls.flatMap((raw): GenAiPart[] => {
    const call = record(raw);
    const fn = record(call?.function);
    if (!call || !fn) return [];
    return [{ type: "tool_call", id: str(call.id), name: str(fn.name) ?? "", arguments: argumentsOf(fn.arguments) }];
  });
}

function textOf(content: unknown): string {
  if (typeof content === "string") return content;
  return contentParts(content)
    .map((p) => ("content" in p && typeof p.content === "string" ? p.content : ""))
    .join("");
}

/** The request's messages as GenAI input messages. */
export function genAiInputMessages(input: TraceContent["input"]): GenAiMessage[] {
  return input.map((message) => {
    if (message.role === "tool") {
      return { role: "tool", parts: [{ type: "tool_call_response", id: str(message.tool_call_id), response: textOf(message.content) }] };
    }
    const reasoning = str(message.reasoning);
    return {
      role: message.role,
      parts: [...(reasoning ? [{ type: "reasoning" as const, content: reasoning }] : []), ...contentParts(message.content), ...toolCallParts(message.tool_calls)],
    };
  });
}

/** The answer as one GenAI output message. */
export function genAiOutputMessages(output: TraceContent["output"], finishReason: string | null): GenAiMessage[] {
  const parts: GenAiPart[] = [];
  if (output.reasoning) parts.push({ type: "reasoning", content: output.reasoning });
  if (output.text) parts.push({ type: "text", content: output.text });
  parts.push(...toolCallParts(output.tool_calls));
  return [{ role: "assistant", parts, ...(finishReason ? { finish_reason: finishReason } : {}) }];
}
