/**
 * @module billing/ledger
 * The `Ledger` Durable Object: one per workspace, the single writer of its credit balance, holds,
 * key spend and rate windows. Requests are admitted against a reservation (a hold), the upstream
 * is called, and the exact cost is settled; a hold nobody settles lapses after HOLD_TTL_MS. Each
 * RPC is one synchronous transaction — no `await` between a read and the write that depends on
 * it — so concurrent requests can never overdraw.
 *
 * Working state lives in memory and the journal is the durable record (ledger-memory-store.ts): a
 * request writes one SQLite row, its charge. Holds are not stored; a settlement whose hold was
 * lost with a restart is charged from its receipt, once.
 *
 * Money is integer µ$. The balance moves only with a journal entry, in the same transaction, so
 * balance = Σ journal always. It goes below zero only when a settlement charges more than its hold
 * (a documented overrun: the answer already happened); admission then refuses everything until the
 * balance is positive again.
 */
import { DurableObject } from "cloudflare:workers";
import { z } from "zod";
import { admitRequest } from "./ledger-admit";
import { settleByok } from "./ledger-byok";
import { LeaseBook, ensureLeaseSchema, type KeyStatus, type LeaseEntry, type LeaseGrant, type LeaseView } from "./ledger-lease";
import { ensureSchema } from "./ledger-migrations";
import { addUsage, emptyUsage, limitUsage, usageAt } from "./ledger-periods";
import {
  admitInputSchema,
  keyConfigSchema,
  settleInputSchema,
  type AdmitInput,
  type AdmitResult,
  type BalanceView,
  type JournalEntry,
  type KeyUsage,
  type SettleInput,
  type SettleOutcome,
  type SettleResult,
  settleEach,
} from "./ledger-schema";
import { MemoryLedgerStore } from "./ledger-memory-store";
import { WORKSPACE_SCOPE, keyScope, type Hold } from "./ledger-store";
import { plainAdmitInput } from "./plain-admit-input";

export { HOLD_TTL_MS } from "./ledger-admit";

const positiveMicros = z.number().int().positive();
const signedNonZeroMicros = z.number().int().refine((n) => n !== 0, "must not be zero");
const optionalNote = z.string().max(1000).nullish();
const clock = z.number().int().optional();
const holdIdSchema = z.string().min(1).max(128);
const keyIdSchema = z.string().min(1);
const topUpSchema = z
  .object({ amountMicros: positiveMicros, feeMicros: z.number().int().nonnegative(), note: optionalNote })
  .refine((t) => t.feeMicros <= t.amountMicros, "the fee must not exceed the amount");
const refundSchema = z.object({ amountMicros: positiveMicros, reference: z.string().min(1).max(256), note: optionalNote });
const adjustSchema = z.object({ amountMicros: signedNonZeroMicros, note: z.string().min(1).max(1000) });
const journalLimitSchema = z.number().int().min(1).max(1000).default(100);

export class Ledger extends DurableObject<Env> {
  readonly #store: MemoryLedgerStore;
  readonly #leases: LeaseBook;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#store = new MemoryLedgerStore(ctx.storage.sql);
    this.#leases = new LeaseBook(ctx.storage.sql, this.#store);
    void ctx.blockConcurrencyWhile(async () => {
      ensureSchema(ctx.storage);
      ensureLeaseSchema(ctx.storage);
      this.#store.run(ctx.storage, () => this.#store.load());
    });
  }

  /**
   * Admit a request: refuse it (key state, rate limits, credits, key limit) or reserve what it may
   * cost and count it against its rate windows. Synchronous, and usually writes nothing: the hold
   * lives in memory (only a key seen for the first time or a per-minute rate window is stored).
   */
  admit(input: AdmitInput): AdmitResult {
    const parsed = plainAdmitInput(input) ?? admitInputSchema.parse(input);
    const now = parsed.now ?? Date.now();
    const { result } = this.#store.run(this.ctx.storage, () => admitRequest(this.#store, parsed, now));
    if (!result.ok) return result;
    const receipt = this.#store.receipt(result.holdId);
    return receipt ? { ...result, receipt } : result;
  }

  /**
   * Charge a finished request and drop its hold. An unknown hold (already settled, released or
   * expired) changes nothing, so a retried settlement never charges twice — unless the receipt
   * says another instance of this object made it: then the hold was lost with a restart, and the
   * request is charged if the journal holds no charge for it yet. The charge may exceed the hold
   * (settlement overrun); a zero charge writes no journal entry. A BYOK request is charged its
   * fee, and its platform-equivalent cost counts against the month's free allowance
   * (ledger-byok.ts) in the same transaction.
   */
  settle(input: SettleInput): SettleResult {
    const parsed = settleInputSchema.parse(input);
    const now = parsed.now ?? Date.now();
    const store = this.#store;
    return store.run(this.ctx.storage, () => {
      const hold = store.hold(parsed.holdId) ?? store.lostHold(parsed.receipt, parsed.generationId);
      if (hold) store.deleteHold(hold.id);
      if (!hold || hold.expiresAt <= now) return { settled: false, chargedMicros: 0, balanceMicros: store.balance().balance };

      const byok = parsed.byok ?? hold.byok;
      const charged = byok
        ? settleByok(
            store,
            { usageMicros: parsed.byokUsageMicros, feeBps: parsed.byokFeeBps, fixedFeeMicros: parsed.byokFeeMicros, freeMonthlyMicros: parsed.byokFreeMonthlyMicros },
            now,
          )
        : parsed.costMicros;
      const byokUsage = byok ? parsed.byokUsageMicros : 0;
      store.appendJournal({ at: now, kind: "charge", amountMicros: -charged, keyId: hold.keyId, reference: parsed.generationId, note: null, byokUsageMicros: byokUsage });
      const key = store.key(hold.keyId);
      if (key) store.saveUsage(hold.keyId, addUsage(key.usage, charged, byokUsage, now));
      // Prompt tokens were counted at admission; count what the answer added beyond them.
      const tokens = Math.max(0, parsed.tokens - hold.promptTokens);
      for (const scope of [keyScope(hold.keyId), WORKSPACE_SCOPE]) store.addTokens(scope, now, tokens);
      return { settled: true, chargedMicros: charged, balanceMicros: store.balance().balance };
    });
  }

  /**
   * Several requests' settlements in one call: an isolate's platform-keyed settlements of one
   * window (billing/settlement-window), one Durable Object request instead of one each. Every
   * input is settled as `settle` would, alone in its transaction.
   */
  settleBatch(inputs: SettleInput[]): Promise<SettleOutcome[]> {
    return settleEach(inputs, (input) => this.settle(input));
  }

  /**
   * Drop a hold without charging (the request failed before the upstream answered). Idempotent:
   * false when the hold was unknown or had already expired at `now` (a test hook, like `admit`'s).
   */
  release(holdId: string, now?: number): boolean {
    const id = holdIdSchema.parse(holdId);
    const at = clock.parse(now) ?? Date.now();
    const store = this.#store;
    return store.run(this.ctx.storage, () => {
      const hold = store.hold(id);
      if (!hold) return false;
      store.deleteHold(id);
      return hold.expiresAt > at;
    });
  }

  /**
   * An alarm set by an earlier version, which stored holds and expired them here. Holds now live
   * in memory and lapse by themselves; this drops the expired ones.
   */
  override async alarm(): Promise<void> {
    await this.expireHolds();
  }

  /** Drop every hold expired at `now` (admission does it too). Returns how many expired. */
  async expireHolds(now?: number): Promise<number> {
    const at = clock.parse(now) ?? Date.now();
    return this.#store.run(this.ctx.storage, () => this.#store.deleteExpiredHolds(at));
  }

  /** Record a credit purchase: `amountMicros` in, then the purchase fee out (credits = amount − fee). */
  topUp(amountMicros: number, feeMicros: number, note?: string | null): BalanceView {
    const input = topUpSchema.parse({ amountMicros, feeMicros, note });
    const now = Date.now();
    this.#store.run(this.ctx.storage, () => {
      this.#store.appendJournal({ at: now, kind: "topup", amountMicros: input.amountMicros, keyId: null, reference: null, note: input.note ?? null });
      this.#store.appendJournal({ at: now, kind: "fee", amountMicros: -input.feeMicros, keyId: null, reference: null, note: "purchase fee" });
    });
    return this.balance(now);
  }

  /** Give credits back (a refunded charge, say), naming what is refunded. */
  refund(amountMicros: number, reference: string, note?: string | null): BalanceView {
    const input = refundSchema.parse({ amountMicros, reference, note });
    const now = Date.now();
    this.#store.run(this.ctx.storage, () =>
      this.#store.appendJournal({ at: now, kind: "refund", amountMicros: input.amountMicros, keyId: null, reference: input.reference, note: input.note ?? null }),
    );
    return this.balance(now);
  }

  /** A signed manual correction, with the reason. A negative one can take the balance below zero. */
  adjust(amountMicros: number, note: string): BalanceView {
    const input = adjustSchema.parse({ amountMicros, note });
    const now = Date.now();
    this.#store.run(this.ctx.storage, () =>
      this.#store.appendJournal({ at: now, kind: "adjustment", amountMicros: input.amountMicros, keyId: null, reference: null, note: input.note }),
    );
    return this.balance(now);
  }

  /** Store a key's configuration (the admin API calls this on every change); spend counters stay. */
  setKey(config: z.input<typeof keyConfigSchema>): void {
    const parsed = keyConfigSchema.parse(config);
    const now = Date.now();
    const store = this.#store;
    this.#store.run(this.ctx.storage, () => {
      const stored = store.key(parsed.id);
      store.upsertKey(parsed, stored?.usage ?? emptyUsage(now));
    });
  }

  /** A key's spend in its current periods and what its limit still allows (after live holds). */
  keyUsage(keyId: string, now?: number): KeyUsage | null {
    const at = clock.parse(now) ?? Date.now();
    const key = this.#store.key(keyIdSchema.parse(keyId));
    if (!key) return null;
    const usage = usageAt(key.usage, at);
    const { limitMicros, limitReset, includeByokInLimit } = key.config;
    const limitRemainingMicros =
      limitMicros === null
        ? null
        : Math.max(0, limitMicros - limitUsage(key.usage, limitReset, includeByokInLimit, at) - this.#store.keyHeldMicros(keyId, at, includeByokInLimit));
    return {
      keyId,
      usageMicros: usage.total,
      usageDailyMicros: usage.day.usage,
      usageWeeklyMicros: usage.week.usage,
      usageMonthlyMicros: usage.month.usage,
      byokUsageMicros: usage.byokTotal,
      limitRemainingMicros,
    };
  }

  /** The balance, running totals, and what live holds reserve at `now`. */
  balance(now?: number): BalanceView {
    const at = clock.parse(now) ?? Date.now();
    const row = this.#store.balance();
    return { balanceMicros: row.balance, totalCreditsMicros: row.credits, totalUsageMicros: row.usage, heldMicros: this.#store.heldMicros(at) };
  }

  /** The holds in memory (requests admitted and not yet settled or released), for operators and tests. */
  holds(): Hold[] {
    return this.#store.holds();
  }

  /** The newest `limit` journal entries (default 100, at most 1,000), oldest first. */
  journal(limit?: number): JournalEntry[] {
    return this.#store.journal(journalLimitSchema.parse(limit));
  }

  /** Lease up to `requestedMicros` of available credit to a LedgerShard (ledger-lease.ts). */
  grantLease(shardId: string, requestedMicros: number, now?: number): LeaseGrant {
    const at = clock.parse(now) ?? Date.now();
    return this.#store.run(this.ctx.storage, () => this.#leases.grant(shardId, requestedMicros, at));
  }

  /** Journal a shard's charges and take charged and returned credit off its lease, each entry once. */
  settleLease(shardId: string, entries: LeaseEntry[], now?: number): LeaseView {
    const at = clock.parse(now) ?? Date.now();
    return this.#store.run(this.ctx.storage, () => this.#leases.settle(shardId, entries, at));
  }

  /** The stored status of keys a shard admits for (a key first seen is stored from its snapshot). */
  keyStatuses(snapshots: z.input<typeof keyConfigSchema>[], now?: number): KeyStatus[] {
    const at = clock.parse(now) ?? Date.now();
    return this.#store.run(this.ctx.storage, () => this.#leases.keyStatuses(snapshots, at));
  }

  /** Every shard's outstanding lease. */
  leases(now?: number): LeaseView[] {
    return this.#leases.leases(clock.parse(now) ?? Date.now());
  }
}
