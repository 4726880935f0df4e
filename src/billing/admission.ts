/**
 * @module billing/admission
 * Building the one admission RPC for a request, and turning a refusal into the client's error.
 * The reservation is priced on the most expensive candidate, so failover to any of them stays
 * covered; settlement charges the endpoint actually used.
 */
import type { KeyContext } from "../auth/api-keys";
import { GatewayError } from "../errors";
import type { Candidate } from "../routing/plan";
import { requestedMaxTokens, type ChatRequest } from "../schemas/openai";
import { estimatePromptTokens } from "./estimate";
import { basisPointsMicros } from "./fees";
import type { AdmitInput, AdmitRefusal, KeyConfig } from "./ledger-schema";

/** A request without max_tokens is refused rather than capped below this many output tokens. */
export const MIN_OUTPUT_TOKENS = 256;
/** Output cap assumed for endpoints whose catalog row sets none. */
export const DEFAULT_MAX_OUTPUT_TOKENS = 16_384;

export function keyConfig({ key }: KeyContext): KeyConfig {
  return {
    id: key.id,
    disabled: key.disabled,
    expiresAt: key.expiresAt,
    limitMicros: key.limitMicros,
    limitReset: key.limitReset ?? null,
    includeByokInLimit: key.includeByokInLimit,
    limits: { rpm: key.rpm, tpm: key.tpm, concurrency: key.concurrency },
  };
}

/**
 * The admission for a request that may be served by any of `candidates`. When every candidate
 * carries the workspace's own key (BYOK), only the largest possible fee is reserved: both prices
 * are scaled by the fee rate, rounded up, so the reservation covers ⌈max cost × rate⌉. A plan
 * mixing BYOK and platform endpoints reserves the full cost, since failover may land on either.
 */
export function admissionInput(requestId: string, req: ChatRequest, candidates: readonly Candidate[], auth: KeyContext, byokFeeBps: number): AdmitInput {
  const promptTokens = estimatePromptTokens(req);
  let promptPrice = 0;
  let completionPrice = 0;
  let requestPrice = 0;
  let modelMaxTokens = 0;
  for (const { endpoint } of candidates) {
    promptPrice = Math.max(promptPrice, endpoint.promptPrice);
    completionPrice = Math.max(completionPrice, endpoint.completionPrice);
    requestPrice = Math.max(requestPrice, endpoint.requestPrice);
    modelMaxTokens = Math.max(modelMaxTokens, endpoint.maxOutputTokens ?? DEFAULT_MAX_OUTPUT_TOKENS);
  }
  const { workspace } = auth;
  const byok = candidates.length > 0 && candidates.every((c) => c.byok);
  const promptMicros = Math.ceil((promptTokens * promptPrice) / 1_000_000) + requestPrice;
  return {
    requestId,
    key: keyConfig(auth),
    workspaceLimits: { rpm: workspace.rpm, tpm: workspace.tpm, concurrency: workspace.concurrency },
    promptMicros: byok ? basisPointsMicros(promptMicros, byokFeeBps) : promptMicros,
    completionPrice: byok ? basisPointsMicros(completionPrice, byokFeeBps) : completionPrice,
    requestedMaxTokens: requestedMaxTokens(req) ?? null,
    modelMaxTokens,
    floorTokens: MIN_OUTPUT_TOKENS,
    promptTokens,
    byok,
  };
}

/** The client-facing error for a refused admission, with OpenRouter's wording where it has one. */
export function refusalError(refusal: AdmitRefusal): GatewayError {
  switch (refusal.reason) {
    case "key_disabled":
      return new GatewayError("unauthorized", "This API key is disabled");
    case "key_expired":
      return new GatewayError("unauthorized", "This API key has expired");
    case "insufficient_credits":
      return new GatewayError(
        "payment_required",
        refusal.balanceMicros < 0
          ? "This workspace's credit balance is negative. Add credits to continue."
          : `This request requires more credits, or fewer max_tokens. You requested up to ${refusal.requestedTokens} tokens, but can only afford ${refusal.affordableTokens}. Add credits to this workspace to continue.`,
        { metadata: { requested_tokens: refusal.requestedTokens, affordable_tokens: refusal.affordableTokens } },
      );
    case "key_limit":
      return new GatewayError(
        "payment_required",
        `This request requires more credits than this key's limit allows, or fewer max_tokens. You requested up to ${refusal.requestedTokens} tokens, but the key can only afford ${refusal.affordableTokens}.`,
        {
          metadata: {
            requested_tokens: refusal.requestedTokens,
            affordable_tokens: refusal.affordableTokens,
            limit_remaining: refusal.limitRemainingMicros / 1_000_000,
          },
        },
      );
    case "rate_limited": {
      const what = refusal.limit === "concurrency" ? "concurrent requests" : refusal.limit === "rpm" ? "requests per minute" : "tokens per minute";
      return new GatewayError("rate_limited", `Rate limit exceeded: ${refusal.limitValue} ${what} for this ${refusal.scope}`, {
        metadata: { scope: refusal.scope, limit: refusal.limit },
        headers: rateLimitHeaders(refusal.limitValue, refusal.remaining, refusal.resetAt, refusal.retryAfterSeconds),
      });
    }
  }
}

/** `X-RateLimit-Reset` is epoch milliseconds, as OpenRouter sends it. */
export function rateLimitHeaders(limit: number, remaining: number, resetAtSeconds: number, retryAfter?: number): Record<string, string> {
  return {
    "x-ratelimit-limit": String(limit),
    "x-ratelimit-remaining": String(Math.max(0, remaining)),
    "x-ratelimit-reset": String(resetAtSeconds * 1000),
    ...(retryAfter !== undefined ? { "retry-after": String(retryAfter) } : {}),
  };
}
