/**
 * @module billing/plain-admit-input
 * The admission input as the gateway's own `admissionInput` sends it, recognised without zod.
 * Every admission crosses into the Ledger or a LedgerShard, which checks its input at that edge;
 * zod interprets its schema field by field (Workers forbid code generation), which was about 2 %
 * of the isolate's JavaScript per request. This check accepts only inputs that the object's zod
 * schema accepts and returns unchanged (a property test holds them together): every field present
 * (rate limits with all three entries, so no default is filled in), no other key, every value in
 * bounds. Anything else goes through zod, which also writes the error.
 */
import type { z } from "zod";
import { type Check, boundedString, exactRecord, integerIn, isBoolean, nullable } from "../schemas/plain-checks";
import type { ParsedAdmitInput } from "./ledger-admit";
import type { shardAdmitInputSchema } from "./ledger-shard-schema";

const micros = integerIn(0);
const positiveOrNull = nullable(integerIn(1));
const RESETS = new Set(["daily", "weekly", "monthly"]);

const rateLimits = exactRecord({ rpm: positiveOrNull, tpm: positiveOrNull, concurrency: positiveOrNull });

const keyConfig = exactRecord({
  id: boundedString(1, Infinity),
  disabled: isBoolean,
  expiresAt: nullable(integerIn(Number.MIN_SAFE_INTEGER)),
  limitMicros: nullable(micros),
  limitReset: (v) => v === null || (typeof v === "string" && RESETS.has(v)),
  includeByokInLimit: isBoolean,
  limits: rateLimits,
});

const ADMIT_FIELDS: Record<string, Check> = {
  requestId: boundedString(1, 128),
  key: keyConfig,
  workspaceLimits: rateLimits,
  promptMicros: micros,
  completionPrice: micros,
  requestedMaxTokens: positiveOrNull,
  modelMaxTokens: integerIn(1),
  floorTokens: integerIn(1),
  promptTokens: integerIn(0),
  byok: isBoolean,
  now: integerIn(Number.MIN_SAFE_INTEGER),
};

const isAdmitInput = exactRecord(ADMIT_FIELDS, ["now"]);

const shardRefFields = exactRecord({ workspaceId: boundedString(1, Infinity), index: integerIn(0), count: integerIn(1, 256) });
const isShardRef: Check = (v) => shardRefFields(v) && (v.index as number) < (v.count as number);

const isShardAdmitInput = exactRecord({ ...ADMIT_FIELDS, shard: isShardRef }, ["now"]);

/** The Ledger's admission input when it is plainly valid, else `undefined` (parse it with zod). */
export function plainAdmitInput(value: unknown): ParsedAdmitInput | undefined {
  return isAdmitInput(value) ? (value as ParsedAdmitInput) : undefined;
}

/** A LedgerShard's admission input when it is plainly valid, else `undefined` (parse it with zod). */
export function plainShardAdmitInput(value: unknown): z.output<typeof shardAdmitInputSchema> | undefined {
  return isShardAdmitInput(value) ? (value as z.output<typeof shardAdmitInputSchema>) : undefined;
}
