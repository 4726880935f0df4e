/**
 * @module billing/pricing
 * Exact cost. Prices are integer micro-dollars (µ$) per million tokens; a request's cost is the
 * exact sum of tokens × price, divided by one million and rounded once (half up) to a whole µ$.
 * No float ever touches a balance: floats appear only when printing USD for clients.
 */
import type { Usage } from "../providers/types";

export interface Prices {
  /** µ$ per million uncached prompt tokens. */
  promptPrice: number;
  /** µ$ per million completion tokens (reasoning tokens are completion tokens). */
  completionPrice: number;
  /** µ$ per million cached prompt tokens read; null: the prompt price. */
  cacheReadPrice: number | null;
  /** µ$ per million prompt tokens written to the cache; null: the prompt price. */
  cacheWritePrice: number | null;
  /** µ$ per request. */
  requestPrice: number;
}

const MILLION = 1_000_000n;

/**
 * The cost of one request in µ$. Cached and cache-write tokens are part of `promptTokens` and are
 * priced at their own rates, never also as plain input.
 */
export function costMicros(usage: Usage, prices: Prices): number {
  const cached = Math.min(usage.cachedTokens, usage.promptTokens);
  const written = Math.min(usage.cacheWriteTokens, usage.promptTokens - cached);
  const uncached = usage.promptTokens - cached - written;
  const scaled =
    BigInt(uncached) * BigInt(prices.promptPrice) +
    BigInt(cached) * BigInt(prices.cacheReadPrice ?? prices.promptPrice) +
    BigInt(written) * BigInt(prices.cacheWritePrice ?? prices.promptPrice) +
    BigInt(usage.completionTokens) * BigInt(prices.completionPrice);
  const rounded = (scaled + MILLION / 2n) / MILLION;
  return Number(rounded) + prices.requestPrice;
}

/** USD for display (`usage.cost`); exact to the µ$ the number came from. */
export function microsToUsd(micros: number): number {
  return micros / 1_000_000;
}

/**
 * Parse a decimal USD amount ("0.165", "3", "0.0825") into integer µ$, exactly. Amounts with more
 * than six decimals are refused rather than rounded, so a catalog price is never silently changed.
 */
export function usdToMicros(usd: string | number): number {
  const text = typeof usd === "number" ? usdNumberToString(usd) : usd.trim();
  const match = /^(\d+)(?:\.(\d{1,6}))?$/.exec(text);
  if (!match) throw new RangeError(`not a USD amount with at most 6 decimals: ${text}`);
  const whole = BigInt(match[1]!);
  const fraction = BigInt((match[2] ?? "").padEnd(6, "0"));
  const micros = whole * MILLION + fraction;
  if (micros > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError(`USD amount too large: ${text}`);
  return Number(micros);
}

function usdNumberToString(n: number): string {
  if (!Number.isFinite(n) || n < 0) throw new RangeError(`not a USD amount: ${n}`);
  // toFixed(6) then strip: numbers from JSON with ≤ 6 decimals survive exactly.
  const fixed = n.toFixed(6);
  if (Math.abs(Number(fixed) - n) > 1e-12) throw new RangeError(`USD amount has more than 6 decimals: ${n}`);
  return fixed;
}

/**
 * OpenRouter prints prices as USD per token, as decimal strings ("0.00000015"). From µ$ per million
 * tokens that is a shift by 12 decimal places, done on integers.
 */
export function perTokenUsdString(microsPerMillion: number): string {
  return shiftDecimal(BigInt(microsPerMillion), 12);
}

/** µ$ per request as a USD decimal string. */
export function microsUsdString(micros: number): string {
  return shiftDecimal(BigInt(micros), 6);
}

function shiftDecimal(value: bigint, places: number): string {
  if (value === 0n) return "0";
  const digits = value.toString().padStart(places + 1, "0");
  const whole = digits.slice(0, digits.length - places);
  const fraction = digits.slice(digits.length - places).replace(/0+$/, "");
  return fraction ? `${whole}.${fraction}` : whole;
}
