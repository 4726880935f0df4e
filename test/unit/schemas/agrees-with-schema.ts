/**
 * The property every zod-free fast path (schemas/plain-checks) must hold against its schema:
 * whatever the hand check takes comes back as the same object, and the schema accepts it and
 * returns it strictly equal. Counts both branches, so a test can assert its generator reached them.
 */
import fc from "fast-check";
import { expect } from "vitest";
import type { z } from "zod";

export function agreesWithSchema<T>(
  inputs: fc.Arbitrary<T>,
  plain: (value: unknown) => unknown,
  schema: z.ZodType,
  numRuns: number,
): { accepted: number; rejected: number } {
  const counts = { accepted: 0, rejected: 0 };
  fc.assert(
    fc.property(inputs, (input) => {
      const taken = plain(input);
      if (taken === undefined) return void counts.rejected++;
      counts.accepted++;
      expect(taken).toBe(input);
      const parsed = schema.safeParse(input);
      expect(parsed.success).toBe(true);
      expect(parsed.data).toStrictEqual(input);
    }),
    { numRuns },
  );
  return counts;
}
