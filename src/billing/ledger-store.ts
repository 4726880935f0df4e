/**
 * @module billing/ledger-store
 * Typed access to the Ledger Durable Object's tables (see `ledger-migrations` for what they hold).
 * Callers run these inside one `transactionSync` per RPC; nothing here awaits.
 */
import type { JournalEntry, JournalKind, KeyConfig, LimitReset } from "./ledger-schema";
import type { UsageCounters } from "./ledger-periods";
import { countInWindow, type RateWindow } from "./ledger-rate";

/** Scope name of a key's rate window. */
export function keyScope(keyId: string): string {
  return `key:${keyId}`;
}
export const WORKSPACE_SCOPE = "workspace";

export interface Hold {
  id: string;
  keyId: string;
  amount: number;
  byok: boolean;
  maxTokens: number;
  capped: boolean;
  promptTokens: number;
  createdAt: number;
  expiresAt: number;
}

export interface StoredKey {
  config: KeyConfig;
  usage: UsageCounters;
}

export type BalanceRow = {
  balance: number;
  credits: number;
  usage: number;
};

export type NewJournalEntry = Omit<JournalEntry, "id"> & {
  /** A charge's platform-equivalent BYOK usage, µ$ (replayed into the key's BYOK counters). */
  byokUsageMicros?: number;
};

export type HoldRow = {
  id: string;
  key_id: string;
  amount: number;
  byok: number;
  max_tokens: number;
  capped: number;
  prompt_tokens: number;
  created_at: number;
  expires_at: number;
};

export type KeyRow = {
  id: string;
  disabled: number;
  expires_at: number | null;
  limit_micros: number | null;
  limit_reset: string | null;
  include_byok: number;
  rpm: number | null;
  tpm: number | null;
  concurrency: number | null;
  usage_total: number;
  byok_total: number;
  day_start: number;
  day_usage: number;
  day_byok: number;
  week_start: number;
  week_usage: number;
  week_byok: number;
  month_start: number;
  month_usage: number;
  month_byok: number;
};

type JournalRow = {
  id: number;
  at: number;
  kind: string;
  amount: number;
  key_id: string | null;
  reference: string | null;
  note: string | null;
};

type WindowRow = { minute: number; requests: number; tokens: number; prev_requests: number; prev_tokens: number };

/** Typed access to the ledger's tables. Every method is synchronous. */
export class LedgerStore {
  constructor(protected readonly sql: SqlStorage) {}

  balance(): BalanceRow {
    return this.sql.exec<BalanceRow>("SELECT balance, credits, usage FROM balance WHERE id = 1").one();
  }

  /**
   * Append a journal entry and move the balance with it. Zero amounts are not journalled. Running
   * totals keep balance = credits − usage: credits are what was bought net of purchase fees (plus
   * refunds and positive adjustments), usage is what requests cost (plus negative adjustments).
   */
  appendJournal(entry: NewJournalEntry): void {
    const amount = entry.amountMicros;
    if (amount === 0) return;
    this.insertJournal(null, entry);
    const moved = balanceMove(amount, entry.kind);
    this.sql.exec(
      "UPDATE balance SET balance = balance + ?, credits = credits + ?, usage = usage + ? WHERE id = 1",
      amount,
      moved.credits,
      moved.usage,
    );
  }

  /** Insert a journal row; a null id takes the next one. */
  protected insertJournal(id: number | null, entry: NewJournalEntry): void {
    this.sql.exec(
      "INSERT INTO journal (id, at, kind, amount, key_id, reference, note, byok_usage) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
      id,
      entry.at,
      entry.kind,
      entry.amountMicros,
      entry.keyId,
      entry.reference,
      entry.note,
      entry.byokUsageMicros || null,
    );
  }

  /** A LeaseBook changed the `leases` table (a store that caches the leased total forgets it). */
  leasesChanged(): void {}

  /** The newest `limit` entries, oldest first. */
  journal(limit: number): JournalEntry[] {
    const rows = this.sql
      .exec<JournalRow>("SELECT id, at, kind, amount, key_id, reference, note FROM journal ORDER BY id DESC LIMIT ?", limit)
      .toArray();
    return rows.reverse().map((row) => ({
      id: row.id,
      at: row.at,
      kind: journalKind(row.kind),
      amountMicros: row.amount,
      keyId: row.key_id,
      reference: row.reference,
      note: row.note,
    }));
  }

  hold(id: string): Hold | null {
    const row = this.sql.exec<HoldRow>("SELECT * FROM holds WHERE id = ?", id).toArray()[0];
    return row ? holdFromRow(row) : null;
  }

  insertHold(hold: Hold): void {
    this.sql.exec(
      `INSERT INTO holds (id, key_id, amount, byok, max_tokens, capped, prompt_tokens, created_at, expires_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      hold.id,
      hold.keyId,
      hold.amount,
      hold.byok ? 1 : 0,
      hold.maxTokens,
      hold.capped ? 1 : 0,
      hold.promptTokens,
      hold.createdAt,
      hold.expiresAt,
    );
  }

  deleteHold(id: string): void {
    this.sql.exec("DELETE FROM holds WHERE id = ?", id);
  }

  /** Drop every hold expired at `now`; returns how many. */
  deleteExpiredHolds(now: number): number {
    return this.sql.exec("DELETE FROM holds WHERE expires_at <= ? RETURNING id", now).toArray().length;
  }

  earliestExpiry(): number | null {
    return this.sql.exec<{ at: number | null }>("SELECT MIN(expires_at) AS at FROM holds").one().at;
  }

  /** µ$ held by live holds of the workspace. */
  heldMicros(now: number): number {
    return this.sql.exec<{ held: number }>("SELECT COALESCE(SUM(amount), 0) AS held FROM holds WHERE expires_at > ?", now).one().held;
  }

  /** µ$ leased to LedgerShard objects (ledger-lease.ts): reserved like holds, until reported or returned. */
  leasedMicros(): number {
    return this.sql.exec<{ leased: number }>("SELECT COALESCE(SUM(amount), 0) AS leased FROM leases").one().leased;
  }

  /** µ$ held by one key's live holds; BYOK holds only when they count against its limit. */
  keyHeldMicros(keyId: string, now: number, includeByok: boolean): number {
    return this.sql
      .exec<{ held: number }>(
        "SELECT COALESCE(SUM(amount), 0) AS held FROM holds WHERE key_id = ? AND expires_at > ? AND (byok = 0 OR ? = 1)",
        keyId,
        now,
        includeByok ? 1 : 0,
      )
      .one().held;
  }

  /** Live holds of one key, or of the whole workspace when `keyId` is null. */
  liveHolds(now: number, keyId: string | null): number {
    const cursor =
      keyId === null
        ? this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM holds WHERE expires_at > ?", now)
        : this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM holds WHERE key_id = ? AND expires_at > ?", keyId, now);
    return cursor.one().n;
  }

  key(id: string): StoredKey | null {
    const row = this.sql.exec<KeyRow>("SELECT * FROM keys WHERE id = ?", id).toArray()[0];
    return row ? keyFromRow(row) : null;
  }

  /** Insert or replace a key's configuration; spend counters are kept (or start at `usage`). */
  upsertKey(config: KeyConfig, usage: UsageCounters): void {
    this.sql.exec(
      `INSERT INTO keys (id, disabled, expires_at, limit_micros, limit_reset, include_byok, rpm, tpm, concurrency,
         usage_total, byok_total, day_start, day_usage, day_byok, week_start, week_usage, week_byok,
         month_start, month_usage, month_byok)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET disabled = excluded.disabled, expires_at = excluded.expires_at,
         limit_micros = excluded.limit_micros, limit_reset = excluded.limit_reset,
         include_byok = excluded.include_byok, rpm = excluded.rpm, tpm = excluded.tpm,
         concurrency = excluded.concurrency`,
      config.id,
      config.disabled ? 1 : 0,
      config.expiresAt,
      config.limitMicros,
      config.limitReset,
      config.includeByokInLimit ? 1 : 0,
      config.limits.rpm,
      config.limits.tpm,
      config.limits.concurrency,
      ...usageValues(usage),
    );
  }

  saveUsage(keyId: string, usage: UsageCounters): void {
    this.sql.exec(
      `UPDATE keys SET usage_total = ?, byok_total = ?, day_start = ?, day_usage = ?, day_byok = ?,
         week_start = ?, week_usage = ?, week_byok = ?, month_start = ?, month_usage = ?, month_byok = ?
       WHERE id = ?`,
      ...usageValues(usage),
      keyId,
    );
  }

  window(scope: string): RateWindow | null {
    const row = this.sql
      .exec<WindowRow>("SELECT minute, requests, tokens, prev_requests, prev_tokens FROM rate_windows WHERE scope = ?", scope)
      .toArray()[0];
    return row
      ? { minute: row.minute, requests: row.requests, tokens: row.tokens, prevRequests: row.prev_requests, prevTokens: row.prev_tokens }
      : null;
  }

  /**
   * Count an answer's tokens in a scope's window. Only scopes with a per-minute limit keep a
   * window (admission creates it), so unlimited scopes cost no write here.
   */
  addTokens(scope: string, now: number, tokens: number): void {
    if (tokens <= 0) return;
    const window = this.window(scope);
    if (window) this.saveWindow(scope, countInWindow(window, now, 0, tokens));
  }

  saveWindow(scope: string, window: RateWindow): void {
    this.sql.exec(
      // An upsert rewrites the row in place; INSERT OR REPLACE would bill a delete and an insert.
      `INSERT INTO rate_windows (scope, minute, requests, tokens, prev_requests, prev_tokens) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (scope) DO UPDATE SET minute = excluded.minute, requests = excluded.requests, tokens = excluded.tokens,
         prev_requests = excluded.prev_requests, prev_tokens = excluded.prev_tokens`,
      scope,
      window.minute,
      window.requests,
      window.tokens,
      window.prevRequests,
      window.prevTokens,
    );
  }

  /** Platform-equivalent BYOK spend of the workspace in the month starting at `monthStart`, µ$. */
  byokMonthUsage(monthStart: number): number {
    return this.sql.exec<{ usage: number }>("SELECT usage FROM byok_months WHERE month_start = ?", monthStart).toArray()[0]?.usage ?? 0;
  }

  addByokMonthUsage(monthStart: number, micros: number): void {
    if (micros === 0) return;
    this.sql.exec(
      "INSERT INTO byok_months (month_start, usage) VALUES (?, ?) ON CONFLICT (month_start) DO UPDATE SET usage = usage + excluded.usage",
      monthStart,
      micros,
    );
  }

  /** When the pending alarm is due, as this ledger last set it; null when none is pending. */
  alarmAt(): number | null {
    return this.sql.exec<{ value: number | null }>("SELECT value FROM ledger_meta WHERE key = 'alarm_at'").toArray()[0]?.value ?? null;
  }

  setAlarmAt(at: number | null): void {
    this.sql.exec("INSERT INTO ledger_meta (key, value) VALUES ('alarm_at', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value", at);
  }
}

/**
 * How a journal amount moves the running totals: credits are what was bought net of purchase
 * fees (plus refunds and positive adjustments), usage is what requests cost (plus negative
 * adjustments); balance = credits − usage.
 */
export function balanceMove(amount: number, kind: JournalKind): { credits: number; usage: number } {
  return {
    credits: amount > 0 || kind === "fee" ? amount : 0,
    usage: amount < 0 && kind !== "fee" ? -amount : 0,
  };
}

function usageValues(usage: UsageCounters): number[] {
  return [
    usage.total,
    usage.byokTotal,
    usage.day.start,
    usage.day.usage,
    usage.day.byok,
    usage.week.start,
    usage.week.usage,
    usage.week.byok,
    usage.month.start,
    usage.month.usage,
    usage.month.byok,
  ];
}

export function holdFromRow(row: HoldRow): Hold {
  return {
    id: row.id,
    keyId: row.key_id,
    amount: row.amount,
    byok: row.byok === 1,
    maxTokens: row.max_tokens,
    capped: row.capped === 1,
    promptTokens: row.prompt_tokens,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
  };
}

export function keyFromRow(row: KeyRow): StoredKey {
  return {
    config: {
      id: row.id,
      disabled: row.disabled === 1,
      expiresAt: row.expires_at,
      limitMicros: row.limit_micros,
      limitReset: limitReset(row.limit_reset),
      includeByokInLimit: row.include_byok === 1,
      limits: { rpm: row.rpm, tpm: row.tpm, concurrency: row.concurrency },
    },
    usage: {
      total: row.usage_total,
      byokTotal: row.byok_total,
      day: { start: row.day_start, usage: row.day_usage, byok: row.day_byok },
      week: { start: row.week_start, usage: row.week_usage, byok: row.week_byok },
      month: { start: row.month_start, usage: row.month_usage, byok: row.month_byok },
    },
  };
}

function limitReset(value: string | null): LimitReset {
  switch (value) {
    case "daily":
    case "weekly":
    case "monthly":
    case null:
      return value;
    default:
      throw new Error(`ledger: unknown limit_reset in storage: ${value}`);
  }
}

export function journalKind(value: string): JournalKind {
  switch (value) {
    case "topup":
    case "fee":
    case "charge":
    case "refund":
    case "adjustment":
      return value;
    default:
      throw new Error(`ledger: unknown journal kind in storage: ${value}`);
  }
}
