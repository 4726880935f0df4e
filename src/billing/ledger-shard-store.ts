/**
 * @module billing/ledger-shard-store
 * The LedgerShard's own tables, beside the ledger tables it reuses (its `balance` row and journal
 * are the books of its lease: grants in, charges and returns out). Created idempotently behind
 * their own version key in `ledger_meta`. Tables (shard schema version 2):
 * - `shard_config`: the workspace the shard serves, its index and the current shard count.
 * - `outbox`: charges and returns not yet acknowledged by the ledger, numbered; the ledger applies
 *   each id once and takes ids at or below the last it applied as retries, so ids must only grow.
 *   Since version 2 an entry's id is its journal entry's (every charge and return is journaled
 *   first, in the same transaction, and journal rows are never deleted, so journal ids only grow)
 *   plus `outbox_id_offset`: version 1 numbered entries with AUTOINCREMENT, which costs a
 *   sqlite_sequence row per entry, and the offset keeps new ids above every id it issued.
 * - `key_checks`: when the shard last read each key's status from the ledger.
 */
import type { LeaseEntry } from "./ledger-lease";

const MIGRATIONS: readonly (readonly string[])[] = [
  [
    `CREATE TABLE shard_config (
      id INTEGER PRIMARY KEY CHECK (id = 1),
      workspace_id TEXT NOT NULL,
      shard_index INTEGER NOT NULL,
      shard_count INTEGER NOT NULL
    )`,
    `CREATE TABLE outbox (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      kind TEXT NOT NULL CHECK (kind IN ('charge', 'return')),
      key_id TEXT,
      amount INTEGER NOT NULL CHECK (amount >= 0),
      byok_usage INTEGER NOT NULL,
      reference TEXT,
      at INTEGER NOT NULL
    )`,
    `CREATE TABLE key_checks (key_id TEXT PRIMARY KEY, checked_at INTEGER NOT NULL)`,
  ],
  [
    // New ids are journal ids + offset; the offset lifts them above the last AUTOINCREMENT id.
    `INSERT OR REPLACE INTO ledger_meta (key, value) VALUES ('outbox_id_offset',
      MAX(0, COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'outbox'), 0) - COALESCE((SELECT MAX(id) FROM journal), 0)))`,
    `CREATE TABLE outbox_v2 (
      id INTEGER PRIMARY KEY,
      kind TEXT NOT NULL CHECK (kind IN ('charge', 'return')),
      key_id TEXT,
      amount INTEGER NOT NULL CHECK (amount >= 0),
      byok_usage INTEGER NOT NULL,
      reference TEXT,
      at INTEGER NOT NULL
    )`,
    `INSERT INTO outbox_v2 (id, kind, key_id, amount, byok_usage, reference, at) SELECT id, kind, key_id, amount, byok_usage, reference, at FROM outbox`,
    `DROP TABLE outbox`,
    `ALTER TABLE outbox_v2 RENAME TO outbox`,
  ],
];

/** The id an outbox entry takes: its journal entry's (the newest), lifted by the version 1 offset. */
const OUTBOX_ID = `(SELECT MAX(id) FROM journal) + COALESCE((SELECT value FROM ledger_meta WHERE key = 'outbox_id_offset'), 0)`;

/** Bring the shard tables to the current version (the ledger tables are made by their own migrations). */
export function ensureShardSchema(storage: DurableObjectStorage): void {
  storage.transactionSync(() => {
    const row = storage.sql.exec<{ value: number }>("SELECT value FROM ledger_meta WHERE key = 'shard_schema_version'").toArray()[0];
    for (const statements of MIGRATIONS.slice(row?.value ?? 0)) {
      for (const statement of statements) storage.sql.exec(statement);
    }
    storage.sql.exec("INSERT OR REPLACE INTO ledger_meta (key, value) VALUES ('shard_schema_version', ?)", MIGRATIONS.length);
  });
}

export interface ShardConfig {
  workspaceId: string;
  index: number;
  count: number;
}

/** Numbers the shard remembers in `ledger_meta`. */
export type ShardMetaKey = "ledger_balance" | "ledger_available" | "reclaim";

type OutboxRow = { id: number; kind: string; key_id: string | null; amount: number; byok_usage: number; reference: string | null; at: number };

/** Typed access to the shard tables. Every method is synchronous. */
export class ShardStore {
  constructor(private readonly sql: SqlStorage) {}

  config(): ShardConfig | null {
    const row = this.sql
      .exec<{ workspace_id: string; shard_index: number; shard_count: number }>("SELECT workspace_id, shard_index, shard_count FROM shard_config")
      .toArray()[0];
    return row ? { workspaceId: row.workspace_id, index: row.shard_index, count: row.shard_count } : null;
  }

  saveConfig(config: ShardConfig): void {
    this.sql.exec(
      "INSERT INTO shard_config (id, workspace_id, shard_index, shard_count) VALUES (1, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET workspace_id = excluded.workspace_id, shard_index = excluded.shard_index, shard_count = excluded.shard_count",
      config.workspaceId,
      config.index,
      config.count,
    );
  }

  meta(key: ShardMetaKey): number | null {
    return this.sql.exec<{ value: number | null }>("SELECT value FROM ledger_meta WHERE key = ?", key).toArray()[0]?.value ?? null;
  }

  setMeta(key: ShardMetaKey, value: number): void {
    this.sql.exec("INSERT INTO ledger_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value", key, value);
  }

  /** Queue a charge for the ledger. Call it right after journaling the charge (its id is the entry's). */
  addCharge(keyId: string, amount: number, byokUsage: number, reference: string, at: number): void {
    this.sql.exec(`INSERT INTO outbox (id, kind, key_id, amount, byok_usage, reference, at) VALUES (${OUTBOX_ID}, 'charge', ?, ?, ?, ?, ?)`, keyId, amount, byokUsage, reference, at);
  }

  /** Queue a return for the ledger. Call it right after journaling the return (its id is the entry's). */
  addReturn(amount: number, at: number): void {
    this.sql.exec(`INSERT INTO outbox (id, kind, key_id, amount, byok_usage, reference, at) VALUES (${OUTBOX_ID}, 'return', NULL, ?, 0, NULL, ?)`, amount, at);
  }

  /** The oldest `limit` unacknowledged entries, in id order. */
  outbox(limit: number): LeaseEntry[] {
    return this.sql
      .exec<OutboxRow>("SELECT id, kind, key_id, amount, byok_usage, reference, at FROM outbox ORDER BY id LIMIT ?", limit)
      .toArray()
      .map((row): LeaseEntry => {
        if (row.kind === "return") return { id: row.id, kind: "return", amountMicros: row.amount, at: row.at };
        if (row.kind === "charge" && row.key_id !== null && row.reference !== null) {
          return { id: row.id, kind: "charge", keyId: row.key_id, amountMicros: row.amount, byokUsageMicros: row.byok_usage, reference: row.reference, at: row.at };
        }
        throw new Error(`ledger shard: malformed outbox row ${row.id}`);
      });
  }

  /** µ$ of charges (and returns) not yet acknowledged, and how many entries. */
  unreported(): { charges: number; returns: number; entries: number } {
    return this.sql
      .exec<{ charges: number; returns: number; entries: number }>(
        `SELECT COALESCE(SUM(CASE WHEN kind = 'charge' THEN amount ELSE 0 END), 0) AS charges,
                COALESCE(SUM(CASE WHEN kind = 'return' THEN amount ELSE 0 END), 0) AS returns,
                COUNT(*) AS entries FROM outbox`,
      )
      .one();
  }

  /** Drop the entries the ledger has applied. */
  dropOutbox(ackedId: number): void {
    this.sql.exec("DELETE FROM outbox WHERE id <= ?", ackedId);
  }

  keyCheckedAt(keyId: string): number | null {
    return this.sql.exec<{ checked_at: number }>("SELECT checked_at FROM key_checks WHERE key_id = ?", keyId).toArray()[0]?.checked_at ?? null;
  }

  setKeyChecked(keyId: string, at: number): void {
    this.sql.exec("INSERT INTO key_checks (key_id, checked_at) VALUES (?, ?) ON CONFLICT (key_id) DO UPDATE SET checked_at = excluded.checked_at", keyId, at);
  }
}
