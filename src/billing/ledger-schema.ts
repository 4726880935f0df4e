/**
 * @module billing/ledger-schema
 * The Ledger Durable Object's inputs and answers. Inputs are zod-checked inside the object (an RPC
 * is an edge like any other); answers are plain discriminated unions. All money is integer µ$.
 */
import { z } from "zod";

const micros = z.number().int().nonnegative();
const count = z.number().int().nonnegative();
const positiveOrNull = z.number().int().positive().nullable();

export const limitResetSchema = z.enum(["daily", "weekly", "monthly"]).nullable();
export type LimitReset = z.infer<typeof limitResetSchema>;

/** Per-minute and concurrency limits; null means unlimited. */
export const rateLimitsSchema = z.object({
  rpm: positiveOrNull.default(null),
  tpm: positiveOrNull.default(null),
  concurrency: positiveOrNull.default(null),
});
export type RateLimits = z.infer<typeof rateLimitsSchema>;

/**
 * A key's configuration as D1 holds it. The ledger keeps the authoritative copy of `disabled` and
 * `expiresAt` (updated by the admin API through `setKey`), so a revoked key is refused on the very
 * next admission whatever isolate caches say.
 */
export const keyConfigSchema = z.object({
  id: z.string().min(1),
  disabled: z.boolean(),
  /** Epoch ms, null: never. */
  expiresAt: z.number().int().nullable(),
  /** Credit limit in µ$ per reset period (or in total when `limitReset` is null); null: none. */
  limitMicros: micros.nullable(),
  limitReset: limitResetSchema,
  includeByokInLimit: z.boolean(),
  limits: rateLimitsSchema,
});
export type KeyConfig = z.infer<typeof keyConfigSchema>;

export const admitInputSchema = z.object({
  /** Becomes the hold id; settlement and release name it. */
  requestId: z.string().min(1).max(128),
  key: keyConfigSchema,
  workspaceLimits: rateLimitsSchema,
  /** Cost of the estimated prompt plus the per-request price, µ$. */
  promptMicros: micros,
  /** µ$ per million completion tokens of the most expensive candidate. */
  completionPrice: micros,
  /** The client's max_tokens, or null when it set none. */
  requestedMaxTokens: positiveOrNull,
  /** The endpoint's output cap, used when the client set none. */
  modelMaxTokens: z.number().int().positive(),
  /** Below this many affordable output tokens, a request without max_tokens is refused. */
  floorTokens: z.number().int().positive(),
  /** Estimated prompt tokens, counted against tokens-per-minute at admission. */
  promptTokens: count,
  byok: z.boolean(),
  /** Test hook: the clock. Production callers omit it. */
  now: z.number().int().optional(),
});
export type AdmitInput = z.input<typeof admitInputSchema>;

export type AdmitRefusal =
  | { ok: false; reason: "key_disabled" | "key_expired" }
  | { ok: false; reason: "insufficient_credits"; requestedTokens: number; affordableTokens: number; balanceMicros: number }
  | { ok: false; reason: "key_limit"; requestedTokens: number; affordableTokens: number; limitRemainingMicros: number }
  | {
      ok: false;
      reason: "rate_limited";
      scope: "key" | "workspace";
      limit: "rpm" | "tpm" | "concurrency";
      limitValue: number;
      remaining: number;
      /** Epoch seconds when the window resets. */
      resetAt: number;
      retryAfterSeconds: number;
    };

/**
 * Room left after an admission: the credit still free (the workspace's, or the key's remaining
 * limit when that is smaller) and whether any rate limit is more than half used. An isolate uses
 * it to decide whether its next request may start upstream while admission runs.
 */
export interface Headroom {
  freeMicros: number;
  ratesTight: boolean;
}

export type AdmitResult =
  | {
      ok: true;
      holdId: string;
      reservedMicros: number;
      /** The output cap to send upstream: the client's, or what the balance affords. */
      maxTokens: number;
      /** True when the cap was lowered from the model's maximum to what the balance affords. */
      capped: boolean;
      /** For X-RateLimit-* headers on success: the tightest request limit, if any. */
      rate: { limit: number; remaining: number; resetAt: number } | null;
      /** What the admitting object saw after this hold, for the isolate's next decision. */
      headroom: Headroom;
      /**
       * What the admitting object (the Ledger or a LedgerShard) needs to settle the request even if
       * it lost the hold (holds live in memory): the caller hands it back with `settle`.
       */
      receipt?: HoldReceipt;
    }
  | AdmitRefusal;

/**
 * The admission as the Ledger saw it. `incarnation` names the object's instance in memory: a
 * settlement carrying another instance's receipt for a hold this instance does not know is a hold
 * lost with a restart, charged once (the journal after `journalId` is searched for its charge).
 */
export const holdReceiptSchema = z.object({
  /**
   * Which kind of object admitted: a LedgerShard's receipt is only ever honoured by that shard (it
   * charges its lease), never by the Ledger. Absent on receipts issued before shards had them.
   */
  issuer: z.enum(["ledger", "shard"]).optional(),
  incarnation: z.string().min(1).max(64),
  /** The last journal entry when the hold was made: its charge, if any, comes after. */
  journalId: count,
  /** When the hold was made (a hold past its lifetime is not charged, as a live one would not be). */
  at: z.number().int(),
  keyId: z.string().min(1),
  byok: z.boolean(),
  promptTokens: count,
});
export type HoldReceipt = z.infer<typeof holdReceiptSchema>;

export const settleInputSchema = z.object({
  holdId: z.string().min(1),
  /** The exact charge, µ$ (0 for a response that must not be charged). */
  costMicros: micros,
  /** BYOK fee, µ$, charged instead of `costMicros` for BYOK requests. */
  byokFeeMicros: micros.default(0),
  /** Platform-equivalent cost of a BYOK request (counted as BYOK usage). */
  byokUsageMicros: micros.default(0),
  /**
   * Whether the request was served with the workspace's own key; defaults to the hold's flag. A
   * request admitted as platform-keyed (a plan mixing BYOK and platform endpoints) may settle as
   * BYOK: its hold covered the full cost, so the smaller fee always fits.
   */
  byok: z.boolean().optional(),
  /**
   * BYOK fee rate in basis points. When set, the ledger computes the fee itself from
   * `byokUsageMicros` and the month's free allowance (ignoring `byokFeeMicros`), atomically.
   */
  byokFeeBps: z.number().int().min(0).max(10_000).optional(),
  /** The workspace's free platform-equivalent BYOK spend per UTC month, µ$ (with `byokFeeBps`). */
  byokFreeMonthlyMicros: micros.default(0),
  /** Actual tokens, for tokens-per-minute. */
  tokens: count,
  generationId: z.string().min(1).max(128),
  /** The admission's receipt (AdmitResult.receipt), when it had one. */
  receipt: holdReceiptSchema.optional(),
  now: z.number().int().optional(),
});
export type SettleInput = z.input<typeof settleInputSchema>;

export interface SettleResult {
  /** False when the hold was unknown (already settled, released or expired): nothing charged twice. */
  settled: boolean;
  chargedMicros: number;
  balanceMicros: number;
}

/**
 * The most settlements one `settleBatch` call carries (an isolate's window of them,
 * billing/settlement-window). Each is still checked by `settleInputSchema`, one by one.
 */
export const MAX_SETTLE_BATCH = 100;
export const settleBatchSchema = z.array(z.unknown()).min(1).max(MAX_SETTLE_BATCH);

/** One settlement's answer within a batch: each stands or fails alone. */
export type SettleOutcome = { ok: true; result: SettleResult } | { ok: false; error: string };

/**
 * Settle each input in turn, each in its own transaction (`settle`), so one that fails (bad input,
 * a shard refusing BYOK) rolls back only itself. Answers in input order.
 */
export async function settleEach(inputs: unknown, settle: (input: SettleInput) => SettleResult | Promise<SettleResult>): Promise<SettleOutcome[]> {
  const list = settleBatchSchema.parse(inputs);
  const outcomes: SettleOutcome[] = [];
  for (const input of list) {
    try {
      outcomes.push({ ok: true, result: await settle(input as SettleInput) });
    } catch (error) {
      outcomes.push({ ok: false, error: error instanceof Error ? error.message : String(error) });
    }
  }
  return outcomes;
}

export const journalKinds = ["topup", "fee", "charge", "refund", "adjustment"] as const;
export type JournalKind = (typeof journalKinds)[number];

export interface JournalEntry {
  id: number;
  at: number;
  kind: JournalKind;
  /** Signed µ$: credits positive, charges and fees negative. */
  amountMicros: number;
  keyId: string | null;
  reference: string | null;
  note: string | null;
}

export interface KeyUsage {
  keyId: string;
  usageMicros: number;
  usageDailyMicros: number;
  usageWeeklyMicros: number;
  usageMonthlyMicros: number;
  byokUsageMicros: number;
  /** What the key may still spend in its current period; null without a limit. */
  limitRemainingMicros: number | null;
}

export interface BalanceView {
  balanceMicros: number;
  /** Credits bought net of purchase fees, plus refunds and positive adjustments. */
  totalCreditsMicros: number;
  /** What requests were charged, plus negative adjustments (a positive number). balance = credits − usage. */
  totalUsageMicros: number;
  heldMicros: number;
}
