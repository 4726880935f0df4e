/**
 * @module billing/ledger-byok
 * The BYOK side of settlement in the Ledger Durable Object. A workspace's platform-equivalent BYOK
 * spend is counted per UTC calendar month; the month's free allowance covers the first part of it,
 * and only what a request spends beyond the allowance left pays the BYOK fee. The fee is decided
 * inside the settlement transaction, so two concurrent requests can never both use the same
 * allowance.
 */
import { byokFeeMicros } from "./fees";
import { monthStart } from "./ledger-periods";
import type { LedgerStore } from "./ledger-store";

export interface ByokSettlement {
  /** Platform-equivalent cost of the request, µ$. */
  usageMicros: number;
  /** The fee rate; when absent, `fixedFeeMicros` is charged as given (the caller priced it). */
  feeBps: number | undefined;
  fixedFeeMicros: number;
  /** The workspace's free BYOK spend per UTC month, µ$. */
  freeMonthlyMicros: number;
}

/** Count the request's BYOK spend in its month and return the fee to charge, µ$. Synchronous. */
export function settleByok(store: LedgerStore, input: ByokSettlement, now: number): number {
  const month = monthStart(now);
  const used = store.byokMonthUsage(month);
  store.addByokMonthUsage(month, input.usageMicros);
  if (input.feeBps === undefined) return input.fixedFeeMicros;
  return byokFeeMicros(input.usageMicros, input.freeMonthlyMicros - used, input.feeBps);
}
