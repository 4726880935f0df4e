/**
 * @module schemas/openrouter
 * OpenRouter's request additions: provider routing preferences and the reasoning object.
 * The provider object is validated and kept on the request; its routing semantics live in
 * `routing/`.
 */
import { z } from "zod";

/** Prices arrive as strings or numbers (USD per million tokens); both are accepted. */
const price = z.union([z.number().nonnegative(), z.string().regex(/^\d+(\.\d+)?$/, "must be a decimal number")]);

const percentiles = z.union([
  z.number().nonnegative(),
  z.looseObject({
    p50: z.number().nonnegative().optional(),
    p75: z.number().nonnegative().optional(),
    p90: z.number().nonnegative().optional(),
    p99: z.number().nonnegative().optional(),
  }),
]);

const slugList = z.array(z.string().min(1).max(128)).max(64);

export const providerPreferencesSchema = z.looseObject({
  order: slugList.optional(),
  allow_fallbacks: z.boolean().optional(),
  require_parameters: z.boolean().optional(),
  data_collection: z.enum(["allow", "deny"]).optional(),
  zdr: z.boolean().optional(),
  only: slugList.optional(),
  ignore: slugList.optional(),
  quantizations: z.array(z.string().min(1)).optional(),
  sort: z
    .union([
      z.enum(["price", "throughput", "latency"]),
      z.looseObject({
        by: z.enum(["price", "throughput", "latency"]),
        partition: z.enum(["model", "none"]).optional(),
      }),
    ])
    .optional(),
  max_price: z
    .looseObject({
      prompt: price.optional(),
      completion: price.optional(),
      request: price.optional(),
      image: price.optional(),
    })
    .optional(),
  preferred_min_throughput: percentiles.optional(),
  preferred_max_latency: percentiles.optional(),
});
export type ProviderPreferences = z.infer<typeof providerPreferencesSchema>;

export const reasoningSchema = z.looseObject({
  effort: z.enum(["minimal", "low", "medium", "high", "none", "xhigh"]).optional(),
  max_tokens: z.number().int().positive().optional(),
  exclude: z.boolean().optional(),
  enabled: z.boolean().optional(),
});
export type Reasoning = z.infer<typeof reasoningSchema>;
