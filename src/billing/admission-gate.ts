/**
 * @module billing/admission-gate
 * One request's admission, run either before the upstream call or alongside it
 * (billing/admission-outlook decides). Either way the request makes exactly one admission RPC,
 * and nothing reaches the client before that RPC has answered yes.
 */
import type { AdmissionTarget } from "./admission-target";
import { refusalError } from "./admission";
import { reservationMicros } from "./ledger-budget";
import type { AdmitInput, AdmitResult } from "./ledger-schema";
import { mayAdmitInParallel, recordOutlook } from "./admission-outlook";

export type AdmittedHold = Extract<AdmitResult, { ok: true }>;

/**
 * Thrown (never to the client) when a request started upstream in parallel was admitted with a
 * lower output cap than it was sent with: the upstream call is aborted and made again, capped.
 */
export class CappedRestart extends Error {
  constructor() {
    super("Admission capped max_tokens after the upstream call started");
    this.name = "CappedRestart";
  }
}

export interface AdmissionGate {
  /** True when the upstream call may start before admission answers. */
  readonly parallel: boolean;
  /** The hold once admitted; rejects with the client's error when admission refuses. */
  readonly hold: Promise<AdmittedHold>;
  /**
   * Resolves when upstream output may reach the client. In parallel mode it also rejects with
   * `CappedRestart` when the hold came back capped.
   */
  readonly ready: Promise<AdmittedHold>;
  /** Aborts the upstream call of a parallel request that admission refused or capped. */
  readonly signal: AbortSignal | null;
  /** The hold, once admission has answered yes (for response headers). */
  readonly admitted: AdmittedHold | null;
  /** Drop the hold, if one was made (a refused request has none). */
  release(): Promise<void>;
}

/** Start the admission RPC for `input` on `target`; `scope` names this isolate's view (outlook). */
export function openAdmission(target: AdmissionTarget, input: AdmitInput, scope: string): AdmissionGate {
  const fullReservation = reservationMicros(input.promptMicros, input.requestedMaxTokens ?? input.modelMaxTokens, input.completionPrice);
  const parallel = mayAdmitInParallel(scope, fullReservation);
  const abort = parallel ? new AbortController() : null;
  let admitted: AdmittedHold | null = null;

  const hold = target.admit(input).then((result) => {
    recordOutlook(scope, result);
    if (!result.ok) throw refusalError(result);
    admitted = result;
    return result;
  });
  const ready = parallel
    ? hold.then(
        (result) => {
          if (result.capped) {
            abort?.abort(new CappedRestart());
            throw new CappedRestart();
          }
          return result;
        },
        (error: unknown) => {
          abort?.abort(error);
          throw error;
        },
      )
    : hold;
  // Observed by the route; these keep an early refusal from being reported as unhandled.
  hold.catch(() => {});
  ready.catch(() => {});

  return {
    parallel,
    hold,
    ready,
    signal: abort?.signal ?? null,
    get admitted() {
      return admitted;
    },
    async release() {
      const result = await hold.catch(() => null);
      if (result) await target.release(result.holdId);
    },
  };
}
