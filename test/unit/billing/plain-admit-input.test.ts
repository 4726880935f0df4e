/**
 * The zod-free check of the ledger objects' admission input (billing/plain-admit-input) must never
 * accept what their schemas would reject or change, and must accept what `admissionInput` sends,
 * or every admission pays for a second validation.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { KeyContext } from "../../../src/auth/api-keys";
import { admissionInput } from "../../../src/billing/admission";
import { admitInputSchema } from "../../../src/billing/ledger-schema";
import { shardAdmitInputSchema } from "../../../src/billing/ledger-shard-schema";
import { plainAdmitInput, plainShardAdmitInput } from "../../../src/billing/plain-admit-input";
import type { Candidate } from "../../../src/routing/plan";
import type { ChatRequest } from "../../../src/schemas/openai";
import { agreesWithSchema } from "../schemas/agrees-with-schema";

const SAFE = Number.MAX_SAFE_INTEGER;

/** Numbers on and past the bounds the schemas draw (0, 1, safe integers, 256), and wrong types. */
const anyValue = fc.oneof(
  fc.constantFrom(null, undefined, true, false, 0, -0, 1, -1, 0.5, 255, 256, 257, SAFE, SAFE + 1, -SAFE, -SAFE - 2, Number.NaN, Infinity, -Infinity),
  fc.integer(),
  fc.double(),
  fc.string({ maxLength: 3 }),
  fc.constantFrom("", "daily", "weekly", "monthly", "yearly", "x".repeat(128), "x".repeat(129)),
  fc.constantFrom({}, [], { rpm: null, tpm: null, concurrency: null }, { rpm: 1 }, { rpm: null, tpm: null, concurrency: null, burst: 1 }),
);

const positiveOrNull = fc.option(fc.integer({ min: 1, max: SAFE }), { nil: null });
const limits = fc.record({ rpm: positiveOrNull, tpm: positiveOrNull, concurrency: positiveOrNull }, { noNullPrototype: true });

const key = fc.record(
  {
    id: fc.string({ minLength: 1, maxLength: 40 }),
    disabled: fc.boolean(),
    expiresAt: fc.option(fc.integer({ min: -SAFE, max: SAFE }), { nil: null }),
    limitMicros: fc.option(fc.integer({ min: 0, max: SAFE }), { nil: null }),
    limitReset: fc.constantFrom(null, "daily", "weekly", "monthly"),
    includeByokInLimit: fc.boolean(),
    limits,
  },
  { noNullPrototype: true },
);

/** Inputs within every bound, as `admissionInput` builds them (sometimes with the test clock). */
const validInput = fc.record(
  {
    requestId: fc.string({ minLength: 1, maxLength: 128 }),
    key,
    workspaceLimits: limits,
    promptMicros: fc.integer({ min: 0, max: SAFE }),
    completionPrice: fc.integer({ min: 0, max: SAFE }),
    requestedMaxTokens: positiveOrNull,
    modelMaxTokens: fc.integer({ min: 1, max: SAFE }),
    floorTokens: fc.integer({ min: 1, max: SAFE }),
    promptTokens: fc.integer({ min: 0, max: SAFE }),
    byok: fc.boolean(),
    now: fc.integer({ min: -SAFE, max: SAFE }),
  },
  { requiredKeys: ["requestId", "key", "workspaceLimits", "promptMicros", "completionPrice", "requestedMaxTokens", "modelMaxTokens", "floorTokens", "promptTokens", "byok"], noNullPrototype: true },
);

const shardRef = fc.record(
  { workspaceId: fc.string({ minLength: 1, maxLength: 8 }), index: fc.integer({ min: 0, max: 255 }), count: fc.integer({ min: 1, max: 256 }) },
  { noNullPrototype: true },
);

/** Where a value can be replaced: top-level fields, the key's fields and the limits' entries. */
const PATHS: string[][] = [
  ...["requestId", "key", "workspaceLimits", "promptMicros", "completionPrice", "requestedMaxTokens", "modelMaxTokens", "floorTokens", "promptTokens", "byok", "now", "extra", "__proto__", "constructor"].map((f) => [f]),
  ...["id", "disabled", "expiresAt", "limitMicros", "limitReset", "includeByokInLimit", "limits", "extra"].map((f) => ["key", f]),
  ...["rpm", "tpm", "concurrency", "extra"].map((f) => ["workspaceLimits", f]),
  ...["rpm", "tpm", "concurrency"].map((f) => ["key", "limits", f]),
  ...["workspaceId", "index", "count", "extra"].map((f) => ["shard", f]),
];

/** Per kind of field: the values on and just past its bounds. */
const INTEGER_EDGES = [-1, 0, 1, 1.5, SAFE, SAFE + 1, -SAFE, -SAFE - 2, null, "1", Number.NaN, Infinity];
const EDGES: Record<string, unknown[]> = {
  requestId: ["", "r", "x".repeat(128), "x".repeat(129), 1, null],
  id: ["", "k", 1, null],
  workspaceId: ["", "w", 1, null],
  limitReset: [null, "daily", "weekly", "monthly", "yearly", "", 1],
  count: [0, 1, 255, 256, 257, 1.5, SAFE + 1, null],
  index: [-1, 0, 1, 255, 256, 1.5, null],
};

type Edit = { path: string[]; value: unknown } | { path: string[]; remove: true };

const edit: fc.Arbitrary<Edit> = fc.oneof(
  fc.constantFrom(...PATHS).chain((path) => {
    const name = path[path.length - 1] as string;
    // Own keys only: "constructor" and "__proto__" are paths too.
    const edges = (Object.hasOwn(EDGES, name) ? EDGES[name] : undefined) ?? INTEGER_EDGES;
    return fc.record({ path: fc.constant(path), value: fc.oneof(fc.constantFrom(...edges), anyValue) });
  }),
  fc.record({ path: fc.constantFrom(...PATHS), remove: fc.constant(true as const) }),
);

/** A deep copy of `input` with `edits` applied (own data properties, so `__proto__` is a key). */
function applyEdits(input: object, edits: Edit[]): Record<string, unknown> {
  const copy = structuredClone(input) as Record<string, unknown>;
  for (const e of edits) {
    let target: unknown = copy;
    for (const step of e.path.slice(0, -1)) target = typeof target === "object" && target !== null ? Reflect.get(target, step) : undefined;
    if (typeof target !== "object" || target === null) continue;
    const last = e.path[e.path.length - 1] as string;
    if ("remove" in e) Reflect.deleteProperty(target, last);
    else Object.defineProperty(target, last, { value: e.value, enumerable: true, writable: true, configurable: true });
  }
  return copy;
}

const anyInput = fc.tuple(validInput, fc.array(edit, { minLength: 1, maxLength: 3 })).map(([input, edits]) => applyEdits(input, edits));
const anyShardInput = fc
  .tuple(validInput, shardRef, fc.array(edit, { minLength: 0, maxLength: 3 }))
  .map(([input, shard, edits]) => applyEdits({ ...input, shard }, edits));

describe("plainAdmitInput", () => {
  it("accepts only what the Ledger's schema accepts, and exactly as the schema returns it", () => {
    const { accepted, rejected } = agreesWithSchema(fc.oneof(validInput, anyInput), plainAdmitInput, admitInputSchema, 20_000);
    // Both branches must be reached, or the property says nothing.
    expect(accepted).toBeGreaterThan(2_000);
    expect(rejected).toBeGreaterThan(2_000);
  });

  it("accepts every input within the schema's bounds", () => {
    fc.assert(
      fc.property(validInput, (input) => {
        expect(admitInputSchema.safeParse(input).success).toBe(true);
        expect(plainAdmitInput(input)).toBe(input);
      }),
      { numRuns: 1000 },
    );
  });

  it("takes what admissionInput builds: limits, max_tokens, BYOK", () => {
    const endpoint = { promptPrice: 150_000, completionPrice: 600_000, requestPrice: 0, maxOutputTokens: 16_384 };
    const auth = {
      key: { id: "key-1", disabled: false, expiresAt: null, limitMicros: 5_000_000, limitReset: "monthly", includeByokInLimit: true, rpm: 60, tpm: null, concurrency: 4 },
      workspace: { id: "ws-1", rpm: null, tpm: 100_000, concurrency: null },
    } as unknown as KeyContext;
    const req = { model: "openai/gpt-4o-mini", messages: [{ role: "user", content: "Hello" }] } as ChatRequest;
    for (const [request, byok] of [
      [req, false],
      [{ ...req, max_tokens: 64 }, false],
      [req, true],
    ] as const) {
      const input = admissionInput("req-1", request, [{ endpoint, byok } as unknown as Candidate], auth, 500);
      expect(plainAdmitInput(input)).toBe(input);
    }
  });

  it("leaves inputs zod would change or refuse to zod", () => {
    const input = { ...validSample(), workspaceLimits: { rpm: 1 } };
    // zod fills the missing limits with null: not returned unchanged, so not taken here.
    expect(admitInputSchema.parse(input).workspaceLimits).toEqual({ rpm: 1, tpm: null, concurrency: null });
    expect(plainAdmitInput(input)).toBeUndefined();
    expect(plainAdmitInput({ ...validSample(), now: undefined })).toBeUndefined();
    expect(plainAdmitInput({ ...validSample(), promptMicros: -1 })).toBeUndefined();
    expect(plainAdmitInput({ ...validSample(), requestId: "" })).toBeUndefined();
    expect(plainAdmitInput(JSON.parse(JSON.stringify({ ...validSample(), extra: 1 })))).toBeUndefined();
    expect(plainAdmitInput(null)).toBeUndefined();
    expect(plainAdmitInput([])).toBeUndefined();
  });
});

describe("plainShardAdmitInput", () => {
  it("accepts only what the shard's schema accepts, and exactly as the schema returns it", () => {
    const { accepted } = agreesWithSchema(anyShardInput, plainShardAdmitInput, shardAdmitInputSchema, 20_000);
    expect(accepted).toBeGreaterThan(2_000);
  });

  it("refuses a shard index at or past the shard count, as the schema does", () => {
    const input = { ...validSample(), shard: { workspaceId: "ws", index: 4, count: 4 } };
    expect(shardAdmitInputSchema.safeParse(input).success).toBe(false);
    expect(plainShardAdmitInput(input)).toBeUndefined();
    const fine = { ...validSample(), shard: { workspaceId: "ws", index: 3, count: 4 } };
    expect(plainShardAdmitInput(fine)).toBe(fine);
    // The Ledger's input has no shard and the shard's has one: neither check takes the other's.
    expect(plainAdmitInput(fine)).toBeUndefined();
    expect(plainShardAdmitInput(validSample())).toBeUndefined();
  });
});

function validSample() {
  return fc.sample(validInput, { numRuns: 1, seed: 7 })[0] as Record<string, unknown>;
}
