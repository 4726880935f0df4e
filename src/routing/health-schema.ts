/**
 * @module routing/health-schema
 * zod schemas for what reaches the Health Durable Object over RPC. The caller is our own Worker,
 * but an RPC method is an edge: a malformed batch is refused whole rather than half-counted.
 */
import { z } from "zod";
import type { UpstreamErrorType } from "../errors";
import type { AttemptOutcome } from "./health-types";

/** Every `UpstreamErrorType`, as a value; the mapped type fails to compile if one is missing or extra. */
const UPSTREAM_ERROR_TYPES: { readonly [K in UpstreamErrorType]: K } = {
  context_length_exceeded: "context_length_exceeded",
  authentication: "authentication",
  rate_limit_exceeded: "rate_limit_exceeded",
  provider_overloaded: "provider_overloaded",
  provider_unavailable: "provider_unavailable",
  invalid_request: "invalid_request",
  content_filter: "content_filter",
  not_found: "not_found",
  timeout: "timeout",
  server: "server",
  invalid_response: "invalid_response",
};

/** Outcomes per `report` call; an isolate's batch is far smaller (health-client flushes at 500). */
export const MAX_REPORT_OUTCOMES = 5_000;

export const endpointIdSchema = z.string().min(1).max(256);

const nonNegative = z.number().nonnegative();

export const attemptOutcomeSchema = z.object({
  endpointId: endpointIdSchema,
  at: z.number().int().nonnegative(),
  ok: z.boolean(),
  errorType: z.enum(UPSTREAM_ERROR_TYPES).optional(),
  retryAfterSeconds: nonNegative.optional(),
  latencyMs: nonNegative.optional(),
  tokensPerSecond: nonNegative.optional(),
}) satisfies z.ZodType<AttemptOutcome>;

export const reportInputSchema = z.array(attemptOutcomeSchema).max(MAX_REPORT_OUTCOMES);
