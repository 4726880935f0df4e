/**
 * @module billing/ledger-shard
 * The `LedgerShard` Durable Object: one of N admission objects of a hot workspace, each admitting
 * against credit leased from the workspace's Ledger (docs/ledger-leases.md). It reuses the
 * Ledger's tables and admission decision: its `balance` row is its lease (grants in, charges and
 * returns out), so `admitRequest` — key state, rate limits, money — runs unchanged against it.
 *
 * The money contract mirrors the Ledger's: a request is admitted only against credit the shard
 * holds; when its lease is short the shard asks the ledger for more inside the admission, and when
 * the ledger cannot grant enough it refuses (or caps) exactly as the ledger would. Charges go into
 * an outbox and reach the ledger's journal in numbered batches within about a second. Every RPC
 * to the ledger about the lease runs one at a time (`#serial`), and no read of the lease is held
 * across one: the grant is added to whatever the lease is when the answer comes back.
 *
 * Not leased: keys with a credit limit and BYOK admissions go to the ledger itself (the limit and
 * the monthly BYOK allowance are workspace-wide counters only the ledger can keep exact).
 *
 * State is kept like the Ledger's (ledger-memory-store): holds in memory, each charge one journal
 * row, the lease balance checkpointed. Admissions return a receipt naming this instance, so a
 * settlement that reaches a restarted shard still charges the lease, once. The outbox is the
 * journal after the last entry the Ledger acknowledged (ledger-shard-store), held in memory.
 */
import { DurableObject } from "cloudflare:workers";
import { z } from "zod";
import { admitRequest, type Admission } from "./ledger-admit";
import { reservationMicros } from "./ledger-budget";
import { ensureLeaseSchema, type LeaseView } from "./ledger-lease";
import { ensureSchema } from "./ledger-migrations";
import { MemoryLedgerStore } from "./ledger-memory-store";
import { emptyUsage } from "./ledger-periods";
import {
  admitInputSchema,
  settleEach,
  settleInputSchema,
  type AdmitResult,
  type KeyConfig,
  type SettleInput,
  type SettleOutcome,
  type SettleResult,
} from "./ledger-schema";
import {
  FLUSH_MS,
  IDLE_RETURN_MS,
  MAX_REFILLS,
  prefetchMicros,
  shardName,
  splitLimits,
  type RecentReservation,
} from "./ledger-shard-policy";
import { KeyStatusChecks, keyWithStatus } from "./ledger-shard-keys";
import { shardAdmitInputSchema, type ShardAdmitInput, type ShardLeaseView } from "./ledger-shard-schema";
import { Outbox } from "./ledger-shard-outbox";
import { LEASE_RETURN_NOTE, ShardStore, ensureShardSchema, type LedgerAnswer, type ShardConfig } from "./ledger-shard-store";
import { WORKSPACE_SCOPE, keyScope } from "./ledger-store";
import { plainShardAdmitInput } from "./plain-admit-input";
import { sameJurisdiction } from "../residency/jurisdiction";

const clock = z.number().int().optional();
const holdIdSchema = z.string().min(1).max(128);

/**
 * A plain copy of what a call to the Ledger returned, to hand on as this object's own answer.
 * Passing the RPC result itself on kept the call's session to the Ledger open (tests that evict
 * the shard after a `flush` waited on it forever).
 */
function detached<T extends object>(result: T): T {
  return { ...result };
}

type Step = { kind: "done"; admission: Admission } | { kind: "short"; needMicros: number };

export class LedgerShard extends DurableObject<Env> {
  readonly #store: MemoryLedgerStore;
  readonly #shard: ShardStore;
  /** Charges and returns the ledger has not acknowledged; the journal is their durable copy. */
  readonly #outbox = new Outbox();
  /**
   * The ledger's last answer about the workspace: its balance, what it had free, whether it asked
   * for idle credit back. In memory (three rows per answer were most of what a flush wrote); a
   * restarted shard starts from what an earlier version stored, and every flush (≤ FLUSH_MS
   * apart while anything is unreported or leased) or refill brings it up to date.
   */
  #ledgerView: LedgerAnswer = { balanceMicros: 0, availableMicros: 0, reclaim: false };
  readonly #keyChecks = new KeyStatusChecks();
  /** The tail of the chain that runs lease RPCs to the ledger one at a time. */
  #queue: Promise<unknown> = Promise.resolve();
  /** Reservations of the last seconds, for lease sizing (lost on eviction: sizing restarts small). */
  #recent: RecentReservation[] = [];
  /**
   * When this instance last admitted, for the idle return of the lease. In memory: storing it
   * cost a row written per admission, and a restarted shard that thinks it has been idle only
   * gives its free credit back early (admissions refill it).
   */
  #lastAdmitAt = 0;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#store = new MemoryLedgerStore(ctx.storage.sql, "shard");
    this.#shard = new ShardStore(ctx.storage.sql);
    void ctx.blockConcurrencyWhile(async () => {
      ensureSchema(ctx.storage);
      ensureLeaseSchema(ctx.storage);
      ensureShardSchema(ctx.storage);
      this.#store.run(ctx.storage, () => this.#store.load());
      this.#outbox.load(this.#shard.unacknowledged());
      this.#ledgerView = this.#shard.storedLedgerView();
    });
  }

  /**
   * Admit a request against the lease, as the Ledger's `admit` would. Keys with a credit limit
   * and BYOK requests are admitted by the ledger itself (their hold lives there; `settle` and
   * `release` forward them). The workspace's rate limits are split evenly among the shards.
   */
  async admit(input: ShardAdmitInput): Promise<AdmitResult> {
    const { shard, ...parsed } = plainShardAdmitInput(input) ?? shardAdmitInputSchema.parse(input);
    const now = parsed.now ?? Date.now();
    this.#bind(shard);
    const local = { ...parsed, workspaceLimits: splitLimits(parsed.workspaceLimits, shard.count) };
    if (!this.#store.hold(parsed.requestId) && (parsed.key.limitMicros !== null || parsed.byok)) {
      return detached(await this.#ledger(shard).admit({ ...local, now }));
    }
    await this.#checkKey(shard, parsed.key, now);

    let dry = false;
    for (let attempt = 0; ; attempt++) {
      const final = dry || attempt >= MAX_REFILLS;
      const step = this.#run((): Step => {
        const need = this.#shortOf(local, now);
        if (need !== null && !final) return { kind: "short", needMicros: need };
        const admission = admitRequest(this.#store, local, now);
        this.#lastAdmitAt = now;
        return { kind: "done", admission };
      });
      if (step.kind === "short") {
        dry = !(await this.#refill(shard, step.needMicros, now));
        continue;
      }
      const { result, alarmAt } = step.admission;
      if (result.ok) this.#recent.push({ at: now, micros: result.reservedMicros });
      // Wake for the first hold expiry or, sooner, to give the lease back if traffic stops.
      const wake = Math.min(alarmAt ?? Infinity, now + IDLE_RETURN_MS);
      if (alarmAt === null) await this.#scheduleAlarm(wake, now);
      else await this.#setAlarm(wake);
      if (!result.ok && result.reason === "insufficient_credits") return { ...result, balanceMicros: this.#ledgerView.balanceMicros };
      if (!result.ok) return result;
      const receipt = this.#store.receipt(result.holdId);
      return receipt ? { ...result, receipt } : result;
    }
  }

  /**
   * Charge a request this shard admitted: the lease pays at once (one journal row), the charge
   * reaches the ledger's journal with the next flush. A hold this shard does not know is, with
   * this shard's receipt, already settled or lost with a restart (then charged once, as the
   * Ledger does); without one it is the ledger's (a forwarded admission), and the ledger's
   * `settle` answers for it.
   */
  async settle(input: SettleInput): Promise<SettleResult> {
    const parsed = settleInputSchema.parse(input);
    const now = parsed.now ?? Date.now();
    const store = this.#store;
    const ours = store.issued(parsed.receipt);
    const local = this.#run((): SettleResult | null => {
      const hold = store.hold(parsed.holdId) ?? store.lostHold(parsed.receipt, parsed.generationId);
      if (!hold) return ours ? { settled: false, chargedMicros: 0, balanceMicros: this.#workspaceBalance() } : null;
      if (parsed.byok === true || hold.byok) {
        throw new Error("ledger shard: BYOK settlement of a shard-admitted request is not supported (docs/ledger-leases.md)");
      }
      store.deleteHold(hold.id);
      if (hold.expiresAt <= now) return { settled: false, chargedMicros: 0, balanceMicros: this.#workspaceBalance() };
      const charged = parsed.costMicros;
      store.appendJournal({ at: now, kind: "charge", amountMicros: -charged, keyId: hold.keyId, reference: parsed.generationId, note: null });
      // The key's spend is counted by the Ledger when the charge reaches it (settleLease): keys
      // with a credit limit never admit here, so the shard has no use for its own copy.
      const tokens = Math.max(0, parsed.tokens - hold.promptTokens);
      for (const scope of [keyScope(hold.keyId), WORKSPACE_SCOPE]) store.addTokens(scope, now, tokens);
      if (charged > 0) {
        const entry = { id: this.#shard.outboxId(store.lastJournalId), kind: "charge", keyId: hold.keyId, amountMicros: charged, byokUsageMicros: 0, reference: parsed.generationId, at: now } as const;
        store.onRollback(this.#outbox.push(entry));
      }
      return { settled: true, chargedMicros: charged, balanceMicros: this.#workspaceBalance() };
    });
    if (local !== null) {
      if (local.chargedMicros > 0) await this.#scheduleAlarm(now + FLUSH_MS, now);
      return local;
    }
    const config = this.#shard.config();
    return config ? detached(await this.#ledger(config).settle(input)) : { settled: false, chargedMicros: 0, balanceMicros: 0 };
  }

  /** Several settlements in one call (billing/settlement-window), each as `settle` would, alone. */
  settleBatch(inputs: SettleInput[]): Promise<SettleOutcome[]> {
    return settleEach(inputs, (input) => this.settle(input));
  }

  /** Drop a hold without charge; the ledger's `release` answers for holds this shard does not know. */
  async release(holdId: string, now?: number): Promise<boolean> {
    const id = holdIdSchema.parse(holdId);
    const at = clock.parse(now) ?? Date.now();
    const store = this.#store;
    const local = this.#run(() => {
      const hold = store.hold(id);
      if (!hold) return null;
      store.deleteHold(id);
      return hold.expiresAt > at;
    });
    if (local !== null) return local;
    const config = this.#shard.config();
    return config ? this.#ledger(config).release(id, at) : false;
  }

  /**
   * Give the ledger back every µ$ of the lease that no live hold reserves, then report. Returns
   * what was given back. Admissions meanwhile simply refill.
   */
  async returnUnused(now?: number): Promise<number> {
    const at = clock.parse(now) ?? Date.now();
    const returned = this.#run(() => this.#moveFreeToOutbox(at));
    await this.flush(at);
    return returned;
  }

  /**
   * Send unacknowledged charges and returns to the ledger, oldest first, until none is left, and
   * hear whether the ledger wants idle credit back. Returns the ledger's last answer (null before
   * the shard has admitted anything).
   */
  flush(now?: number): Promise<LeaseView | null> {
    const at = clock.parse(now) ?? Date.now();
    return this.#serial(async () => {
      const config = this.#shard.config();
      if (!config) return null;
      // At least one call, even with nothing to report: it is how the shard hears of a reclaim.
      for (;;) {
        const entries = this.#outbox.batch(1000);
        const view = await this.#ledger(config).settleLease(shardName(config.workspaceId, config.index), entries, at);
        this.#run(() => this.#afterLedger(view, true, at));
        if (entries.length < 1000) return detached(view);
      }
    });
  }

  /**
   * What the alarm runs, callable with a clock in tests: expire crashed requests' holds, give the
   * lease back when idle or when the ledger asked, report, and schedule the next run.
   */
  async tick(now?: number): Promise<void> {
    const at = clock.parse(now) ?? Date.now();
    const idle = this.#run(() => {
      this.#store.deleteExpiredHolds(at);
      return at - this.#lastAdmitAt >= IDLE_RETURN_MS || this.#ledgerView.reclaim;
    });
    if (idle) this.#run(() => this.#moveFreeToOutbox(at));
    await this.flush(at);
    const next = this.#run(() => {
      const times: number[] = [];
      const expiry = this.#store.earliestExpiry();
      if (expiry !== null) times.push(expiry);
      if (this.#outbox.totals().entries > 0) times.push(at + FLUSH_MS);
      if (this.#free(at) > 0) times.push(Math.max(at + 1, this.#lastAdmitAt + IDLE_RETURN_MS));
      const next = times.length > 0 ? Math.min(...times) : null;
      this.#store.setAlarmAt(next);
      return next;
    });
    if (next === null) await this.ctx.storage.deleteAlarm();
    else await this.ctx.storage.setAlarm(next);
  }

  override async alarm(): Promise<void> {
    await this.tick();
  }

  /** The shard's books at `now`. */
  lease(now?: number): ShardLeaseView {
    const at = clock.parse(now) ?? Date.now();
    const unreported = this.#outbox.totals();
    return {
      leaseMicros: this.#store.balance().balance,
      heldMicros: this.#store.heldMicros(at),
      freeMicros: this.#free(at),
      unreportedChargesMicros: unreported.charges,
      unreportedReturnsMicros: unreported.returns,
    };
  }

  /** Remember which shard this object is (the alarm has no input to tell it). */
  #bind(shard: ShardConfig): void {
    const stored = this.#shard.config();
    if (stored && (stored.workspaceId !== shard.workspaceId || stored.index !== shard.index)) {
      throw new Error(`ledger shard: this object is ${shardName(stored.workspaceId, stored.index)}, not ${shardName(shard.workspaceId, shard.index)}`);
    }
    if (!stored || stored.count !== shard.count) this.#run(() => this.#shard.saveConfig(shard));
  }

  /**
   * One synchronous transaction over storage and the memory that mirrors it: on a throw SQLite
   * rolls back, the store's undo log restores the books and the outbox, and cached config goes.
   */
  #run<T>(fn: () => T): T {
    try {
      return this.#store.run(this.ctx.storage, fn);
    } catch (error) {
      this.#shard.dropCache();
      throw error;
    }
  }

  /**
   * The workspace's Ledger, in this shard's own jurisdiction: a shard of an EU workspace was
   * created in the EU (residency/bindings), and its lease must come from the EU ledger, never
   * from the same name elsewhere.
   */
  #ledger(config: ShardConfig) {
    return sameJurisdiction(this.env.LEDGER, this.ctx.id.jurisdiction).getByName(config.workspaceId);
  }

  #free(now: number): number {
    return this.#store.balance().balance - this.#store.heldMicros(now);
  }

  /** The workspace balance as last seen from the ledger, less charges not reported yet. */
  #workspaceBalance(): number {
    return this.#ledgerView.balanceMicros - this.#outbox.totals().charges;
  }

  /**
   * The full reservation a request needs when the lease cannot cover it (null when it can, or
   * when the admission will be refused before money is looked at or is a retry).
   */
  #shortOf(input: z.output<typeof admitInputSchema>, now: number): number | null {
    if (this.#store.hold(input.requestId)) return null;
    const stored = this.#store.key(input.key.id)?.config ?? input.key;
    if (stored.disabled || (stored.expiresAt !== null && stored.expiresAt <= now)) return null;
    const need = reservationMicros(input.promptMicros, input.requestedMaxTokens ?? input.modelMaxTokens, input.completionPrice);
    return this.#free(now) >= need ? null : need;
  }

  /**
   * Top the lease up so `needMicros` fits, plus LEASE_SECONDS of recent reservations (capped at a
   * share of the ledger's free credit). True when the ledger granted at least the shortfall.
   */
  #refill(shard: ShardConfig, needMicros: number, now: number): Promise<boolean> {
    return this.#serial(async () => {
      const short = needMicros - this.#free(now);
      if (short <= 0) return true;
      this.#recent = this.#recent.filter((r) => r.at > now - 60_000);
      const ask = short + prefetchMicros(this.#recent, now, this.#ledgerView.availableMicros, shard.count);
      const grant = await this.#ledger(shard).grantLease(shardName(shard.workspaceId, shard.index), ask, now);
      this.#run(() => {
        this.#store.appendJournal({ at: now, kind: "topup", amountMicros: grant.grantedMicros, keyId: null, reference: null, note: "lease grant" });
        this.#afterLedger(grant, false, now);
      });
      return grant.grantedMicros >= short;
    });
  }

  /**
   * Record the ledger's answer. After a flush that left nothing unreported, and with no other
   * lease RPC in flight (they run one at a time), the ledger's lease is the truth: bring the
   * shard's books to it (a lost grant answer, or a settlement overrun the ledger stopped at zero).
   */
  #afterLedger(view: LeaseView, acked: boolean, now: number): void {
    // The ledger's answer stands even if this transaction rolls back.
    this.#ledgerView = { balanceMicros: view.balanceMicros, availableMicros: view.availableMicros, reclaim: view.reclaim };
    if (!acked) return;
    this.#shard.acknowledge(view.ackedId);
    this.#store.onRollback(this.#outbox.acknowledge(view.ackedId));
    if (this.#outbox.totals().entries > 0) return;
    const drift = view.leasedMicros - this.#store.balance().balance;
    if (drift !== 0) {
      this.#store.appendJournal({ at: now, kind: "adjustment", amountMicros: drift, keyId: null, reference: null, note: "lease reconciliation" });
    }
  }

  /** Move the free part of the lease into the outbox as a return. Synchronous; returns the µ$. */
  #moveFreeToOutbox(now: number): number {
    const free = this.#free(now);
    if (free <= 0) return 0;
    this.#store.appendJournal({ at: now, kind: "adjustment", amountMicros: -free, keyId: null, reference: null, note: LEASE_RETURN_NOTE });
    const entry = { id: this.#shard.outboxId(this.#store.lastJournalId), kind: "return", amountMicros: free, at: now } as const;
    this.#store.onRollback(this.#outbox.push(entry));
    return free;
  }

  /** Refresh the shard's copy of a key's status from the ledger (ledger-shard-keys). */
  #checkKey(shard: ShardConfig, snapshot: KeyConfig, now: number): Promise<void> {
    return this.#keyChecks.refresh(snapshot.id, now, async () => {
      const [status] = await this.#ledger(shard).keyStatuses([snapshot], now);
      if (!status) return false;
      const stored = this.#store.key(snapshot.id);
      const changed = keyWithStatus(stored, snapshot, status);
      if (changed) this.#run(() => this.#store.upsertKey(changed, stored?.usage ?? emptyUsage(now)));
      return true;
    });
  }

  /** Run lease RPCs one at a time, in call order; a failure does not block the next. */
  #serial<T>(task: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(task, task);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /** Move the alarm earlier to `at` if it is not already due by then. */
  async #scheduleAlarm(at: number, now: number): Promise<void> {
    const pending = this.#store.alarmAt();
    if (pending !== null && pending > now && pending <= at) return;
    await this.#setAlarm(at);
  }

  async #setAlarm(at: number): Promise<void> {
    this.#store.setAlarmAt(at);
    await this.ctx.storage.setAlarm(at);
  }
}
