/**
 * @module billing/fees
 * The fee on a credit purchase: a rate in basis points with a fixed minimum (OpenRouter charges
 * 5.5 % with a $0.80 minimum), rounded up to the µ$ so the platform never under-collects.
 */

/**
 * Purchase fee in µ$ for buying `amountMicros` of credits: max(minimum, ⌈amount × rate / 10,000⌉).
 * Exact in integers (BigInt for the product, so any safe amount works).
 */
export function purchaseFeeMicros(amountMicros: number, rateBasisPoints = 550, minimumMicros = 800_000): number {
  for (const [name, value] of [["amountMicros", amountMicros], ["rateBasisPoints", rateBasisPoints], ["minimumMicros", minimumMicros]] as const) {
    if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`${name} must be a non-negative integer, got ${value}`);
  }
  const proportional = (BigInt(amountMicros) * BigInt(rateBasisPoints) + 9_999n) / 10_000n;
  return Math.max(minimumMicros, Number(proportional));
}

/** ⌈amount × rate / 10,000⌉ in µ$: a basis-point fee rounded up, exact in integers. */
export function basisPointsMicros(amountMicros: number, rateBasisPoints: number): number {
  return Number((BigInt(amountMicros) * BigInt(rateBasisPoints) + 9_999n) / 10_000n);
}

/**
 * The BYOK fee in µ$ on a request whose platform-equivalent cost is `usageMicros`: the part of it
 * above what the monthly free allowance still covers (`allowanceRemainingMicros`) pays
 * ⌈part × rate / 10,000⌉. A request that straddles the allowance pays only on its excess.
 */
export function byokFeeMicros(usageMicros: number, allowanceRemainingMicros: number, rateBasisPoints: number): number {
  const feeable = Math.max(0, usageMicros - Math.max(0, allowanceRemainingMicros));
  return basisPointsMicros(feeable, rateBasisPoints);
}
