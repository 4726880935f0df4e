/**
 * @module billing/ledger-memory-store
 * The Ledger's state held in memory, with the journal as the one durable record per request.
 *
 * Durable Object SQLite bills every row written ($1 per million), and each SQL statement is a
 * call into the runtime, so the table-backed store cost five rows and a dozen statements per
 * request. This store keeps the same interface with:
 *
 * - **Holds in memory only.** They are reservations of requests in flight. If the object restarts
 *   they are gone: until those requests settle, their credit counts as free (a bounded overrun,
 *   like a settlement overrun) and their concurrency slots as free. Their settlements still charge:
 *   the admission's receipt lets the Ledger charge a hold it lost, exactly once (`charged`).
 * - **Balance and key spend checkpointed.** Each charge is one journal row; the `balance` row and
 *   the `keys` spend counters are written every CHECKPOINT_EVERY entries with the id of the last
 *   entry they include, and the entries after it are replayed when the object starts. A change
 *   the journal cannot replay (BYOK usage with a zero fee) checkpoints at once.
 * - **Reads from memory.** Keys, rate windows and the leased total are cached; rate windows and
 *   key configuration are still written through when they change.
 *
 * Every RPC runs inside `run`, one synchronous SQLite transaction: if it throws, SQLite rolls back
 * and an undo log puts the memory back, so memory and storage never disagree.
 */
import type { UsageCounters } from "./ledger-periods";
import { addUsage } from "./ledger-periods";
import type { RateWindow } from "./ledger-rate";
import {
  LedgerStore,
  balanceMove,
  holdFromRow,
  journalKind,
  keyFromRow,
  type BalanceRow,
  type Hold,
  type HoldRow,
  type KeyRow,
  type NewJournalEntry,
  type StoredKey,
} from "./ledger-store";
import { HOLD_TTL_MS } from "./ledger-admit";
import type { HoldReceipt, KeyConfig } from "./ledger-schema";

/** Journal entries between two checkpoints: the most a restart replays. */
export const CHECKPOINT_EVERY = 64;

type JournalReplayRow = { id: number; at: number; kind: string; amount: number; key_id: string | null; byok_usage: number | null };

/** Which kind of object keeps the books: receipts say it, and each kind honours only its own. */
export type ReceiptIssuer = NonNullable<HoldReceipt["issuer"]>;

export class MemoryLedgerStore extends LedgerStore {
  /** This instance in memory: its receipts name it, so a receipt naming another is a lost hold's. */
  readonly incarnation = crypto.randomUUID();

  constructor(
    sql: SqlStorage,
    readonly issuer: ReceiptIssuer = "ledger",
  ) {
    super(sql);
  }
  #balance: BalanceRow = { balance: 0, credits: 0, usage: 0 };
  #lastJournalId = 0;
  #checkpointId = 0;
  readonly #holds = new Map<string, Hold>();
  readonly #keys = new Map<string, StoredKey>();
  /** Keys whose spend changed since the last checkpoint. */
  readonly #dirty = new Set<string>();
  /** Rate windows read from storage (null: none stored); a cache, dropped on rollback. */
  readonly #windows = new Map<string, RateWindow | null>();
  #leased: number | null = null;
  #alarmAt: number | null = null;
  /** Set when a change cannot be replayed from the journal: checkpoint before the transaction ends. */
  #mustCheckpoint = false;
  /** Keys journalled in the running transaction (their spend change replays). */
  readonly #journalled = new Set<string>();
  #undo: (() => void)[] | null = null;

  /** Read the checkpoint, replay the journal after it, adopt holds a table-backed version left. */
  load(): void {
    const row = this.sql.exec<BalanceRow & { journal_id: number }>("SELECT balance, credits, usage, journal_id FROM balance WHERE id = 1").one();
    this.#balance = { balance: row.balance, credits: row.credits, usage: row.usage };
    this.#checkpointId = row.journal_id;
    this.#keys.clear();
    for (const key of this.sql.exec<KeyRow>("SELECT * FROM keys").toArray()) this.#keys.set(key.id, keyFromRow(key));
    this.#lastJournalId = this.#checkpointId;
    const replay = this.sql
      .exec<JournalReplayRow>("SELECT id, at, kind, amount, key_id, byok_usage FROM journal WHERE id > ? ORDER BY id", this.#checkpointId)
      .toArray();
    for (const entry of replay) {
      const kind = journalKind(entry.kind);
      const moved = balanceMove(entry.amount, kind);
      this.#balance = { balance: this.#balance.balance + entry.amount, credits: this.#balance.credits + moved.credits, usage: this.#balance.usage + moved.usage };
      const key = kind === "charge" && entry.key_id !== null ? this.#keys.get(entry.key_id) : undefined;
      if (key && entry.key_id !== null) {
        this.#keys.set(entry.key_id, { config: key.config, usage: addUsage(key.usage, -entry.amount, entry.byok_usage ?? 0, entry.at) });
        this.#dirty.add(entry.key_id);
      }
      this.#lastJournalId = entry.id;
    }
    this.#holds.clear();
    for (const hold of this.sql.exec<HoldRow>("SELECT * FROM holds").toArray()) this.#holds.set(hold.id, holdFromRow(hold));
    if (this.#holds.size > 0) this.sql.exec("DELETE FROM holds");
  }

  /**
   * Run `fn` as one synchronous transaction; on a throw, storage rolls back and so does memory.
   * Checkpoints before committing when due.
   */
  run<T>(storage: DurableObjectStorage, fn: () => T): T {
    const undo: (() => void)[] = [];
    this.#undo = undo;
    this.#journalled.clear();
    try {
      return storage.transactionSync(() => {
        const result = fn();
        if (this.#mustCheckpoint || this.#lastJournalId - this.#checkpointId >= CHECKPOINT_EVERY) this.checkpoint();
        return result;
      });
    } catch (error) {
      for (const step of undo.reverse()) step();
      this.#windows.clear();
      this.#leased = null;
      throw error;
    } finally {
      this.#undo = null;
      this.#mustCheckpoint = false;
    }
  }

  /** Write the balance and every changed key's spend, naming the last journal entry they include. */
  checkpoint(): void {
    const dirty = [...this.#dirty];
    const previous = this.#checkpointId;
    this.sql.exec(
      "UPDATE balance SET balance = ?, credits = ?, usage = ?, journal_id = ? WHERE id = 1",
      this.#balance.balance,
      this.#balance.credits,
      this.#balance.usage,
      this.#lastJournalId,
    );
    for (const id of dirty) {
      const key = this.#keys.get(id);
      if (key) super.saveUsage(id, key.usage);
    }
    this.#checkpointId = this.#lastJournalId;
    this.#dirty.clear();
    this.#record(() => {
      this.#checkpointId = previous;
      for (const id of dirty) this.#dirty.add(id);
    });
  }

  /** The id of the newest journal entry. */
  get lastJournalId(): number {
    return this.#lastJournalId;
  }

  /** Whether a charge referencing `reference` was journalled after entry `afterId`. */
  charged(reference: string, afterId: number): boolean {
    return this.sql.exec("SELECT 1 FROM journal WHERE id > ? AND kind = 'charge' AND reference = ? LIMIT 1", afterId, reference).toArray().length > 0;
  }

  /** The receipt of a live hold, naming this instance (null if the hold is not here). */
  receipt(holdId: string): HoldReceipt | null {
    const hold = this.#holds.get(holdId);
    if (!hold) return null;
    const { issuer, incarnation } = this;
    return { issuer, incarnation, journalId: this.#lastJournalId, at: hold.createdAt, keyId: hold.keyId, byok: hold.byok, promptTokens: hold.promptTokens };
  }

  /**
   * Whether a receipt was issued by this kind of object (one without an issuer predates shard
   * receipts and is a Ledger's). A Ledger must never charge a shard's hold, which is on the
   * shard's lease: that would charge it twice.
   */
  issued(receipt: HoldReceipt | undefined): receipt is HoldReceipt {
    return receipt !== undefined && (receipt.issuer ?? "ledger") === this.issuer;
  }

  /**
   * The hold a receipt describes, when another instance of this kind issued it and its charge is
   * not in the journal yet. Null otherwise: this instance's own holds are known or gone, and
   * another kind's are not this object's to charge. A zero charge leaves no journal entry, so a
   * settlement of a lost hold retried after yet another restart would count a free request's
   * BYOK usage (never money) twice.
   */
  lostHold(receipt: HoldReceipt | undefined, reference: string): Hold | null {
    if (!this.issued(receipt) || receipt.incarnation === this.incarnation) return null;
    if (this.charged(reference, receipt.journalId)) return null;
    return {
      id: `lost:${reference}`,
      keyId: receipt.keyId,
      amount: 0,
      byok: receipt.byok,
      maxTokens: 0,
      capped: false,
      promptTokens: receipt.promptTokens,
      createdAt: receipt.at,
      expiresAt: receipt.at + HOLD_TTL_MS,
    };
  }

  override balance(): BalanceRow {
    return this.#balance;
  }

  override appendJournal(entry: NewJournalEntry): void {
    const amount = entry.amountMicros;
    if (amount === 0) return;
    const id = this.#lastJournalId + 1;
    this.insertJournal(id, entry);
    const before = this.#balance;
    const moved = balanceMove(amount, entry.kind);
    this.#balance = { balance: before.balance + amount, credits: before.credits + moved.credits, usage: before.usage + moved.usage };
    this.#lastJournalId = id;
    if (entry.kind === "charge" && entry.keyId !== null) this.#journalled.add(entry.keyId);
    this.#record(() => {
      this.#balance = before;
      this.#lastJournalId = id - 1;
    });
  }

  /** Every hold in memory, expired ones not yet dropped included, by expiry then id. */
  holds(): Hold[] {
    return [...this.#holds.values()].sort((a, b) => a.expiresAt - b.expiresAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  override hold(id: string): Hold | null {
    return this.#holds.get(id) ?? null;
  }

  override insertHold(hold: Hold): void {
    this.#holds.set(hold.id, hold);
    this.#record(() => this.#holds.delete(hold.id));
  }

  override deleteHold(id: string): void {
    const hold = this.#holds.get(id);
    if (!hold) return;
    this.#holds.delete(id);
    this.#record(() => this.#holds.set(id, hold));
  }

  override deleteExpiredHolds(now: number): number {
    let expired = 0;
    for (const hold of this.#holds.values()) {
      if (hold.expiresAt > now) continue;
      this.deleteHold(hold.id);
      expired++;
    }
    return expired;
  }

  override earliestExpiry(): number | null {
    let earliest: number | null = null;
    for (const hold of this.#holds.values()) if (earliest === null || hold.expiresAt < earliest) earliest = hold.expiresAt;
    return earliest;
  }

  override heldMicros(now: number): number {
    let held = 0;
    for (const hold of this.#holds.values()) if (hold.expiresAt > now) held += hold.amount;
    return held;
  }

  override keyHeldMicros(keyId: string, now: number, includeByok: boolean): number {
    let held = 0;
    for (const hold of this.#holds.values()) {
      if (hold.keyId === keyId && hold.expiresAt > now && (!hold.byok || includeByok)) held += hold.amount;
    }
    return held;
  }

  override liveHolds(now: number, keyId: string | null): number {
    let live = 0;
    for (const hold of this.#holds.values()) if (hold.expiresAt > now && (keyId === null || hold.keyId === keyId)) live++;
    return live;
  }

  override leasedMicros(): number {
    this.#leased ??= super.leasedMicros();
    return this.#leased;
  }

  override leasesChanged(): void {
    this.#leased = null;
  }

  override key(id: string): StoredKey | null {
    return this.#keys.get(id) ?? null;
  }

  override upsertKey(config: KeyConfig, usage: UsageCounters): void {
    const before = this.#keys.get(config.id);
    // The stored row keeps its (checkpointed) spend; memory keeps the current one.
    super.upsertKey(config, before?.usage ?? usage);
    this.#keys.set(config.id, { config, usage: before?.usage ?? usage });
    this.#record(() => (before ? this.#keys.set(config.id, before) : this.#keys.delete(config.id)));
  }

  override saveUsage(keyId: string, usage: UsageCounters): void {
    const before = this.#keys.get(keyId);
    if (!before) return;
    const wasDirty = this.#dirty.has(keyId);
    this.#keys.set(keyId, { config: before.config, usage });
    this.#dirty.add(keyId);
    // Spend that no journal entry of this transaction explains would be lost by a restart.
    if (!this.#journalled.has(keyId)) this.#mustCheckpoint = true;
    this.#record(() => {
      this.#keys.set(keyId, before);
      if (!wasDirty) this.#dirty.delete(keyId);
    });
  }

  override window(scope: string): RateWindow | null {
    const cached = this.#windows.get(scope);
    if (cached !== undefined) return cached;
    const stored = super.window(scope);
    this.#windows.set(scope, stored);
    return stored;
  }

  override saveWindow(scope: string, window: RateWindow): void {
    super.saveWindow(scope, window);
    this.#windows.set(scope, window);
  }

  override alarmAt(): number | null {
    return this.#alarmAt;
  }

  /** Holds in memory need no alarm: one past its lifetime is dropped by the next call. */
  override setAlarmAt(at: number | null): void {
    this.#alarmAt = at;
  }

  /**
   * Register a step that puts memory the caller owns back if the running transaction throws (the
   * LedgerShard's outbox moves with its journal).
   */
  onRollback(step: () => void): void {
    this.#record(step);
  }

  #record(step: () => void): void {
    this.#undo?.push(step);
  }
}
