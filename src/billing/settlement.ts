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
import { settleInWindow } from "./settlement-window";

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
  /** A platform-keyed settlement may wait for its object's window (settlement-window `mayWaitForWindow`). */
  mayWait: boolean;
}

/** A settlement under way. */
export interface Settling {
  /**
   * What to report as charged: known at once for a platform-keyed request; for a BYOK request,
   * the ledger's answer (the estimate from `chargeFor` when the ledger could not answer). Never
   * rejects.
   */
  charge: Promise<Charge>;
  /** The ledger's part, for the request's `waitUntil`; a failure is logged here. Never rejects. */
  done: Promise<void>;
}

/**
 * Settle with the object that admitted the request (the ledger or a shard). A platform-keyed
 * charge is computed here, and the settlement joins its object's window (billing/
 * settlement-window) when nothing needs the hold gone at once. A BYOK request's fee
 * is computed inside the ledger's transaction from its platform-equivalent cost and the month's
 * remaining free allowance, so the ledger's answer is the charge. The generation record and trace
 * never wait for the ledger unless they need its answer, and never depend on it succeeding.
 */
export function settle(ctx: SettlementContext, outcome: Outcome): Settling {
  const expected = chargeFor(outcome.candidate, outcome.usage, outcome.finishReason, ctx.byokTerms);
  const common = {
    holdId: ctx.holdId,
    ...(ctx.receipt ? { receipt: ctx.receipt } : {}),
    tokens: outcome.usage.promptTokens + outcome.usage.completionTokens,
    generationId: outcome.generationId,
  };
  const failed = (error: unknown) => console.error(JSON.stringify({ level: "error", msg: "settlement failed", generationId: outcome.generationId, holdId: ctx.holdId, target: ctx.target.name, error: String(error) }));
  if (!expected.byok) {
    const input = { ...common, costMicros: expected.chargedMicros };
    const call = ctx.mayWait ? settleInWindow(ctx.target, input) : ctx.target.settle(input);
    return { charge: Promise.resolve(expected), done: call.then(() => undefined, failed) };
  }
  const billable = isFree(outcome.usage, outcome.finishReason) ? 0 : expected.upstreamMicros;
  const charge = ctx.target
    .settle({
      ...common,
      costMicros: 0,
      byok: true,
      byokUsageMicros: billable,
      byokFeeBps: ctx.byokTerms.feeBps,
      byokFreeMonthlyMicros: ctx.byokTerms.freeMonthlyMicros,
    })
    .then(
      (settled) => ({ ...expected, chargedMicros: settled.chargedMicros }),
      (error: unknown) => {
        failed(error);
        return expected;
      },
    );
  return { charge, done: charge.then(() => undefined) };
}
