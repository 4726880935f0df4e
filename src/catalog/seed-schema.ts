/**
 * @module catalog/seed-schema
 * The catalog as JSON (the committed seed, and the admin API's bodies): zod schemas that turn
 * decimal USD price strings into exact integer µ$ per million tokens.
 */
import { z } from "zod";
import { usdToMicros } from "../billing/pricing";

export const regionSchema = z.enum(["eu", "us", "global"]);
export const familySchema = z.enum(["openai", "anthropic", "gemini"]);

export const providerOptionsSchema = z.strictObject({
  auth: z.enum(["bearer", "api-key", "x-api-key", "x-goog-api-key"]).optional(),
  apiVersion: z.string().min(1).optional(),
  deploymentInPath: z.boolean().optional(),
  vertex: z.boolean().optional(),
  maxTokensField: z.enum(["max_tokens", "max_completion_tokens"]).optional(),
  headers: z.record(z.string(), z.string()).optional(),
});

const slug = z.string().regex(/^[a-z0-9][a-z0-9._-]*$/, "lowercase letters, digits, '.', '_' or '-'").max(64);
const modelSlug = z.string().regex(/^[a-z0-9][a-z0-9._-]*\/[a-zA-Z0-9][a-zA-Z0-9._:-]*$/, "author/name").max(128);
const url = z.url({ protocol: /^https?$/ });

/** A USD amount (string or number, ≤ 6 decimals) → integer µ$. */
export const usdMicros = z.union([z.string(), z.number()]).transform((value, ctx) => {
  try {
    return usdToMicros(value);
  } catch (error) {
    ctx.addIssue({ code: "custom", message: error instanceof Error ? error.message : "invalid USD amount" });
    return z.NEVER;
  }
});

export const providerInputSchema = z.strictObject({
  slug,
  name: z.string().min(1).max(128),
  family: familySchema,
  envPrefix: z.string().regex(/^[A-Z][A-Z0-9_]*$/, "UPPER_SNAKE_CASE"),
  baseUrl: url.nullable().default(null),
  region: regionSchema.default("global"),
  retainsPrompts: z.boolean().default(false),
  trainsOnData: z.boolean().default(false),
  zeroRetention: z.boolean().default(false),
  options: providerOptionsSchema.default({}),
});

export const modelInputSchema = z.strictObject({
  id: modelSlug,
  name: z.string().min(1).max(256),
  description: z.string().max(4000).default(""),
  contextLength: z.number().int().positive(),
  inputModalities: z.array(z.string()).default(["text"]),
  outputModalities: z.array(z.string()).default(["text"]),
  supportedParameters: z.array(z.string()).default([]),
  tokenizer: z.string().default("Other"),
});

export const endpointInputSchema = z.strictObject({
  modelId: modelSlug,
  providerSlug: slug,
  upstreamModel: z.string().min(1).max(256),
  /** USD per million tokens. */
  promptPrice: usdMicros,
  completionPrice: usdMicros,
  cacheReadPrice: usdMicros.nullable().default(null),
  cacheWritePrice: usdMicros.nullable().default(null),
  /** USD per request. */
  requestPrice: usdMicros.default(0),
  contextLength: z.number().int().positive(),
  maxOutputTokens: z.number().int().positive().nullable().default(null),
  quantization: z.string().default("unknown"),
  /** Empty: the model's supported parameters. */
  supportedParameters: z.array(z.string()).default([]),
  region: regionSchema.nullable().default(null),
  enabled: z.boolean().default(true),
});

export const catalogSeedSchema = z.object({
  providers: z.array(providerInputSchema),
  models: z.array(modelInputSchema),
  endpoints: z.array(endpointInputSchema),
});

export type ProviderInput = z.infer<typeof providerInputSchema>;
export type ModelInput = z.infer<typeof modelInputSchema>;
export type EndpointInput = z.infer<typeof endpointInputSchema>;
export type CatalogSeed = z.infer<typeof catalogSeedSchema>;

/** Endpoint ids are derived, so re-seeding updates rows in place. */
export function endpointId(modelId: string, providerSlug: string): string {
  return `${providerSlug}:${modelId}`;
}
