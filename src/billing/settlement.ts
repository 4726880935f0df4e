/**
 * @module billing/settlement
 * After the answer: the exact charge, one ledger RPC that settles it and releases the rest of the
 * hold, and the generation record in D1. Runs off the client's critical path: a non-streamed
 * answer settles in `waitUntil`; a stream settles before its last byte leaves, so settlement never
 * depends on `waitUntil` outliving the response.
 */
import { drizzle } from "drizzle-orm/d1";
import type { KeyContext } from "../auth/api-keys";
import { generations } from "../db/schema";
import type { FinishReason, Usage } from "../providers/types";
import type { Candidate } from "../routing/plan";
import { costMicros } from "./pricing";

export interface Outcome {
  generationId: string;
  requestId: string;
  candidate: Candidate;
  usage: Usage;
  finishReason: FinishReason | null;
  nativeFinishReason: string | null;
  streamed: boolean;
  cancelled: boolean;
  attempts: number;
  startedAt: number;
  firstTokenAt: number | null;
  endedAt: number;
}

export interface Charge {
  /** What the workspace pays, µ$. */
  chargedMicros: number;
  /** What the request costs at the endpoint's prices, µ$. */
  upstreamMicros: number;
}

/**
 * OpenRouter's rule: a response with no completion tokens that ended in an error (or never
 * finished) is not charged. Everything else is charged exactly, cached and cache-write tokens at
 * their own rates; an interrupted stream is charged for what was delivered.
 */
export function chargeFor(candidate: Candidate, usage: Usage, finishReason: FinishReason | null): Charge {
  const upstreamMicros = costMicros(usage, candidate.endpoint);
  const free = usage.completionTokens === 0 && (finishReason === "error" || finishReason === null);
  return { chargedMicros: free ? 0 : upstreamMicros, upstreamMicros };
}

export interface SettlementContext {
  env: Env;
  auth: KeyContext;
  holdId: string;
}

export async function settle(ctx: SettlementContext, outcome: Outcome): Promise<Charge> {
  const charge = chargeFor(outcome.candidate, outcome.usage, outcome.finishReason);
  const ledger = ctx.env.LEDGER.getByName(ctx.auth.workspace.id);
  await ledger.settle({
    holdId: ctx.holdId,
    costMicros: charge.chargedMicros,
    tokens: outcome.usage.promptTokens + outcome.usage.completionTokens,
    generationId: outcome.generationId,
  });
  return charge;
}

export async function recordGeneration(ctx: SettlementContext, outcome: Outcome, charge: Charge): Promise<void> {
  const { usage, candidate } = outcome;
  await drizzle(ctx.env.DB)
    .insert(generations)
    .values({
      id: outcome.generationId,
      workspaceId: ctx.auth.workspace.id,
      keyId: ctx.auth.key.id,
      requestId: outcome.requestId,
      model: candidate.model.id,
      providerName: candidate.endpoint.provider.name,
      endpointId: candidate.endpoint.id,
      upstreamModel: candidate.endpoint.upstreamModel,
      streamed: outcome.streamed,
      cancelled: outcome.cancelled,
      isByok: false,
      finishReason: outcome.finishReason,
      nativeFinishReason: outcome.nativeFinishReason,
      tokensPrompt: usage.promptTokens,
      tokensCompletion: usage.completionTokens,
      tokensCached: usage.cachedTokens,
      tokensCacheWrite: usage.cacheWriteTokens,
      tokensReasoning: usage.reasoningTokens,
      costMicros: charge.chargedMicros,
      upstreamCostMicros: charge.upstreamMicros,
      latencyMs: outcome.endedAt - outcome.startedAt,
      timeToFirstTokenMs: outcome.firstTokenAt === null ? null : outcome.firstTokenAt - outcome.startedAt,
      generationTimeMs: outcome.firstTokenAt === null ? null : outcome.endedAt - outcome.firstTokenAt,
      attempts: outcome.attempts,
    })
    .onConflictDoNothing();
}
