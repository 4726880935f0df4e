/**
 * @module billing/byok
 * The deployment's BYOK terms, from vars: the fee rate on a BYOK request's platform-equivalent
 * cost (`BYOK_FEE_BPS`, OpenRouter charges 5 %) and the free platform-equivalent BYOK spend per
 * workspace and UTC month (`BYOK_FREE_MONTHLY_USD`), below which no fee is charged.
 */
import { usdToMicros } from "./pricing";

export interface ByokTerms {
  feeBps: number;
  freeMonthlyMicros: number;
}

const DEFAULT_FEE_BPS = 500;

/**
 * Parsed terms. A malformed rate falls back to 5 % and a malformed allowance to none: a
 * misconfiguration may over-charge a fee, never waive one.
 */
export function byokTerms(env: { BYOK_FEE_BPS?: string; BYOK_FREE_MONTHLY_USD?: string }): ByokTerms {
  const bps = Number(env.BYOK_FEE_BPS);
  const feeBps = env.BYOK_FEE_BPS !== undefined && Number.isInteger(bps) && bps >= 0 && bps <= 10_000 ? bps : DEFAULT_FEE_BPS;
  let freeMonthlyMicros = 0;
  try {
    freeMonthlyMicros = env.BYOK_FREE_MONTHLY_USD ? usdToMicros(env.BYOK_FREE_MONTHLY_USD) : 0;
  } catch {
    freeMonthlyMicros = 0;
  }
  return { feeBps, freeMonthlyMicros };
}
