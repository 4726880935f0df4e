/**
 * @module schemas/plain-checks
 * Small value checks for the hand-written fast paths beside zod schemas (plain-chat-request,
 * billing/plain-admit-input). Each one accepts exactly the values its zod counterpart accepts
 * unchanged; anything a fast path doubts goes to zod, which also writes the error.
 */

export type Check = (value: unknown) => boolean;

export const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

export const isBoolean: Check = (v) => typeof v === "boolean";
export const isString: Check = (v) => typeof v === "string";
export const boundedString = (min: number, max: number): Check => (v) => typeof v === "string" && v.length >= min && v.length <= max;
/** NaN and ±Infinity fail the comparisons, as zod refuses them. */
export const numberIn = (min: number, max: number): Check => (v) => typeof v === "number" && v >= min && v <= max;
/** zod's `.int()` takes safe integers only. */
export const integerIn = (min: number, max = Number.MAX_SAFE_INTEGER): Check => (v) => Number.isSafeInteger(v) && (v as number) >= min && (v as number) <= max;
export const nullable = (check: Check): Check => (v) => v === null || check(v);
export const listOf = (check: Check, max: number): Check => (v) => Array.isArray(v) && v.length <= max && v.every(check);

/**
 * An object holding every field of `fields` (but those named `optional`, which may be absent), no
 * other own key, and each value passing its check. `undefined` values fail (zod would drop or
 * default them, so the object would not come back unchanged). Own keys only: `__proto__` or
 * `constructor` in a parsed body must not find Object.prototype's members.
 */
export function exactRecord(fields: Record<string, Check>, optional: readonly string[] = []): (v: unknown) => v is Record<string, unknown> {
  const optionalKeys = new Set(optional);
  const required = Object.keys(fields).filter((key) => !optionalKeys.has(key)).length;
  return (v): v is Record<string, unknown> => {
    if (!isRecord(v)) return false;
    let present = 0;
    for (const key in v) {
      const check = Object.hasOwn(fields, key) ? fields[key] : undefined;
      if (!check || !check(v[key])) return false;
      if (!optionalKeys.has(key)) present++;
    }
    return present === required;
  };
}
