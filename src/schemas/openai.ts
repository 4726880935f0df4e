/**
 * @module schemas/openai
 * The chat completion request as clients send it: OpenAI's shape plus OpenRouter's additions.
 * Objects are loose on purpose: a field this gateway does not know is kept and passed through to
 * OpenAI-compatible upstreams instead of being dropped silently. Fields it does know are checked
 * strictly enough that a malformed body is a 400, never a 500 further down.
 */
import { z } from "zod";
import { providerPreferencesSchema, reasoningSchema } from "./openrouter";

const cacheControl = z.looseObject({ type: z.string() }).optional();

export const textPartSchema = z.looseObject({
  type: z.literal("text"),
  text: z.string(),
  cache_control: cacheControl,
});

export const imagePartSchema = z.looseObject({
  type: z.literal("image_url"),
  image_url: z.looseObject({
    url: z.string().min(1),
    detail: z.enum(["auto", "low", "high"]).optional(),
  }),
});

/** Parts other than text and images (audio, files…) pass through to upstreams that know them. */
const otherPartSchema = z.looseObject({
  type: z.string().refine((t) => t !== "text" && t !== "image_url", "malformed content part"),
});

export const contentPartSchema = z.union([textPartSchema, imagePartSchema, otherPartSchema]);
export type ContentPart = z.infer<typeof contentPartSchema>;

const contentSchema = z.union([z.string(), z.array(contentPartSchema)]);

export const toolCallSchema = z.looseObject({
  id: z.string(),
  type: z.literal("function").default("function"),
  function: z.looseObject({ name: z.string().min(1), arguments: z.string() }),
});
export type ToolCall = z.infer<typeof toolCallSchema>;

const systemMessage = z.looseObject({
  role: z.enum(["system", "developer"]),
  content: contentSchema,
  name: z.string().optional(),
});
const userMessage = z.looseObject({
  role: z.literal("user"),
  content: contentSchema,
  name: z.string().optional(),
});
const assistantMessage = z.looseObject({
  role: z.literal("assistant"),
  content: contentSchema.nullish(),
  name: z.string().optional(),
  tool_calls: z.array(toolCallSchema).optional(),
  reasoning: z.string().nullish(),
  /** Provider reasoning blocks (e.g. signed thinking) that must round-trip with tool calls. */
  reasoning_details: z.array(z.looseObject({ type: z.string() })).optional(),
  refusal: z.string().nullish(),
});
const toolMessage = z.looseObject({
  role: z.literal("tool"),
  content: contentSchema,
  tool_call_id: z.string().min(1),
});

export const messageSchema = z.discriminatedUnion("role", [
  systemMessage,
  userMessage,
  assistantMessage,
  toolMessage,
]);
export type ChatMessage = z.infer<typeof messageSchema>;

export const functionToolSchema = z.looseObject({
  type: z.literal("function"),
  function: z.looseObject({
    name: z.string().min(1).max(128),
    description: z.string().optional(),
    parameters: z.record(z.string(), z.unknown()).optional(),
    strict: z.boolean().nullish(),
  }),
  cache_control: cacheControl,
});
export type FunctionTool = z.infer<typeof functionToolSchema>;

export const toolChoiceSchema = z.union([
  z.enum(["none", "auto", "required"]),
  z.looseObject({ type: z.literal("function"), function: z.object({ name: z.string().min(1) }) }),
]);
export type ToolChoice = z.infer<typeof toolChoiceSchema>;

export const responseFormatSchema = z.discriminatedUnion("type", [
  z.looseObject({ type: z.literal("text") }),
  z.looseObject({ type: z.literal("json_object") }),
  z.looseObject({
    type: z.literal("json_schema"),
    json_schema: z.looseObject({
      name: z.string().min(1),
      description: z.string().optional(),
      schema: z.record(z.string(), z.unknown()).optional(),
      strict: z.boolean().nullish(),
    }),
  }),
]);
export type ResponseFormat = z.infer<typeof responseFormatSchema>;

const modelId = z.string().min(1).max(256);
const tokenCount = z.number().int().positive();

export const chatRequestSchema = z.looseObject({
  model: modelId.optional(),
  models: z.array(modelId).max(16).optional(),
  messages: z.array(messageSchema).min(1, "messages must contain at least one message"),
  stream: z.boolean().nullish(),
  stream_options: z.looseObject({ include_usage: z.boolean().optional() }).nullish(),
  max_tokens: tokenCount.nullish(),
  max_completion_tokens: tokenCount.nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().min(0).max(1).nullish(),
  top_k: z.number().int().min(0).nullish(),
  frequency_penalty: z.number().min(-2).max(2).nullish(),
  presence_penalty: z.number().min(-2).max(2).nullish(),
  stop: z.union([z.string(), z.array(z.string()).max(16)]).nullish(),
  seed: z.number().int().nullish(),
  n: z.literal(1).nullish(),
  tools: z.array(functionToolSchema).max(512).optional(),
  tool_choice: toolChoiceSchema.optional(),
  parallel_tool_calls: z.boolean().nullish(),
  response_format: responseFormatSchema.optional(),
  reasoning: reasoningSchema.optional(),
  reasoning_effort: z.enum(["minimal", "low", "medium", "high", "none", "xhigh"]).optional(),
  user: z.string().max(128).optional(),
  session_id: z.string().max(256).optional(),
  provider: providerPreferencesSchema.optional(),
  transforms: z.array(z.string()).optional(),
  usage: z.looseObject({ include: z.boolean().optional() }).optional(),
});
export type ChatRequest = z.infer<typeof chatRequestSchema>;

/** Fields the gateway consumes itself and never forwards to an upstream. */
export const GATEWAY_ONLY_FIELDS = [
  "models",
  "provider",
  "session_id",
  "transforms",
  "usage",
  "route",
  "plugins",
  "trace",
] as const;

/** The output cap the client asked for, whichever spelling it used. */
export function requestedMaxTokens(req: ChatRequest): number | undefined {
  return req.max_completion_tokens ?? req.max_tokens ?? undefined;
}

/** The text of a message's content, with parts joined; non-text parts are skipped. */
export function contentText(content: string | ContentPart[] | null | undefined): string {
  if (content == null) return "";
  if (typeof content === "string") return content;
  let text = "";
  for (const part of content) if (part.type === "text" && typeof part.text === "string") text += part.text;
  return text;
}
