/**
 * @module billing/settlement
 * After the answer: the exact charge, one ledger RPC that settles it and releases the rest of the
 * hold (the generation record that follows is billing/generation-record). Runs off the client's
 * critical path: in `waitUntil`, started before the answer's last byte; only a BYOK answer waits
 * for it, because its fee depends on the month's allowance, which the ledger decides.
 */
import type { KeyContext } from "../auth/api-keys";
import type { FinishReason, Usage } from "../providers/types";
import type { RouteAudit } from "../residency/audit";
import type { Candidate } from "../routing/plan";
import type { AdmissionTarget } from "./admission-target";
import type { ByokTerms } from "./byok";
import type { HoldReceipt } from "./ledger-schema";
import { basisPointsMicros } from "./fees";
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
  /** What the workspace pays, µ$ (for a BYOK request, the BYOK fee). */
  chargedMicros: number;
  /** What the request costs at the endpoint's prices, µ$ (for BYOK, the platform-equivalent cost). */
  upstreamMicros: number;
  /** Served with the workspace's own key. */
  byok: boolean;
}

/**
 * OpenRouter's rule: a response with no completion tokens that ended in an error (or never
 * finished) is not charged. Everything else is charged exactly, cached and cache-write tokens at
 * their own rates; an interrupted stream is charged for what was delivered.
 *
 * For a BYOK request this is an estimate: the full fee, as if no free allowance were left. The
 * ledger decides the real fee at settlement (see `settle`).
 */
export function chargeFor(candidate: Candidate, usage: Usage, finishReason: FinishReason | null, terms: ByokTerms): Charge {
  const upstreamMicros = costMicros(usage, candidate.endpoint);
  const billable = isFree(usage, finishReason) ? 0 : upstreamMicros;
  return { chargedMicros: candidate.byok ? basisPointsMicros(billable, terms.feeBps) : billable, upstreamMicros, byok: candidate.byok };
}

function isFree(usage: Usage, finishReason: FinishReason | null): boolean {
  return usage.completionTokens === 0 && (finishReason === "error" || finishReason === null);
}

export interface SettlementContext {
  auth: KeyContext;
  holdId: string;
  /** The Ledger's receipt for the hold, handed back so a hold lost with a restart is still charged. */
  receipt?: HoldReceipt;
  /** The object that admitted the request; it holds the hold and settles it. */
  target: AdmissionTarget;
  byokTerms: ByokTerms;
  /** The D1 database of the workspace's region: generation records go there. */
  db: D1Database;
  /** The route decision the record keeps. */
  route: RouteAudit;
}

/**
 * Settle with the object that admitted the request (the ledger or a shard) and return what was
 * charged. A BYOK request's fee is computed inside the
 * ledger's transaction from its platform-equivalent cost and the month's remaining free allowance,
 * so the ledger's answer is the charge.
 */
export async function settle(ctx: SettlementContext, outcome: Outcome): Promise<Charge> {
  const charge = chargeFor(outcome.candidate, outcome.usage, outcome.finishReason, ctx.byokTerms);
  const ledger = ctx.target;
  const common = {
    holdId: ctx.holdId,
    ...(ctx.receipt ? { receipt: ctx.receipt } : {}),
    tokens: outcome.usage.promptTokens + outcome.usage.completionTokens,
    generationId: outcome.generationId,
  };
  if (!charge.byok) {
    await ledger.settle({ ...common, costMicros: charge.chargedMicros });
    return charge;
  }
  const billable = isFree(outcome.usage, outcome.finishReason) ? 0 : charge.upstreamMicros;
  const settled = await ledger.settle({
    ...common,
    costMicros: 0,
    byok: true,
    byokUsageMicros: billable,
    byokFeeBps: ctx.byokTerms.feeBps,
    byokFreeMonthlyMicros: ctx.byokTerms.freeMonthlyMicros,
  });
  return { ...charge, chargedMicros: settled.chargedMicros };
}
