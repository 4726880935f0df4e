/**
 * @module billing/ledger-budget
 * How large a request may be: the arithmetic that sizes a reservation against a budget (the
 * workspace's available credits, or a key's remaining limit). Integer µ$ throughout; products go
 * through BigInt so a large balance times a million never loses a µ$.
 */

const MILLION = 1_000_000n;

/** µ$ to reserve: the prompt plus `maxTokens` completion tokens, rounded up to the µ$. */
export function reservationMicros(promptMicros: number, maxTokens: number, completionPrice: number): number {
  const completion = (BigInt(maxTokens) * BigInt(completionPrice) + MILLION - 1n) / MILLION;
  return promptMicros + Number(completion);
}

/**
 * Completion tokens a budget affords once the prompt is paid: 0 when it does not cover the prompt,
 * `whenFree` when completion tokens cost nothing.
 */
export function affordableTokens(budgetMicros: number, promptMicros: number, completionPrice: number, whenFree: number): number {
  if (budgetMicros < promptMicros) return 0;
  if (completionPrice === 0) return whenFree;
  const tokens = (BigInt(budgetMicros - promptMicros) * MILLION) / BigInt(completionPrice);
  return tokens > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(tokens);
}

/** The parts of an admission that size it. */
export interface RequestSize {
  promptMicros: number;
  completionPrice: number;
  requestedMaxTokens: number | null;
  modelMaxTokens: number;
  floorTokens: number;
}

export type SizeDecision =
  | { ok: true; maxTokens: number }
  | { ok: false; requestedTokens: number; affordableTokens: number };

/**
 * Fit a request into a budget. With the client's max_tokens the request fits or is refused whole.
 * Without it the output cap drops to what the budget affords (never above `cap`, the cap an
 * earlier budget already set), and the request is refused below the floor. The floor never
 * exceeds the model's own maximum, so a model with a small output cap stays usable.
 */
export function fitBudget(budgetMicros: number, size: RequestSize, cap: number): SizeDecision {
  const affordable = affordableTokens(budgetMicros, size.promptMicros, size.completionPrice, size.modelMaxTokens);
  if (size.requestedMaxTokens !== null) {
    const needed = reservationMicros(size.promptMicros, size.requestedMaxTokens, size.completionPrice);
    return needed <= budgetMicros
      ? { ok: true, maxTokens: size.requestedMaxTokens }
      : { ok: false, requestedTokens: size.requestedMaxTokens, affordableTokens: affordable };
  }
  const maxTokens = Math.min(cap, affordable);
  const floor = Math.min(size.floorTokens, size.modelMaxTokens);
  return maxTokens >= floor ? { ok: true, maxTokens } : { ok: false, requestedTokens: size.modelMaxTokens, affordableTokens: affordable };
}
