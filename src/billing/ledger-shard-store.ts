/**
 * @module billing/ledger-shard-store
 * The LedgerShard's own tables and its outbox, beside the ledger tables it reuses (its `balance`
 * row and journal are the books of its lease: grants in, charges and returns out). Created
 * idempotently behind their own version key in `ledger_meta`. Tables (shard schema version 3):
 * - `shard_config`: the workspace the shard serves, its index and the current shard count.
 * - `outbox`: only drained since version 3. Versions 1 and 2 queued charges and returns there;
 *   since version 3 the outbox is the shard's journal itself: every charge and every lease return
 *   is journalled anyway, so the entries after the last one the Ledger acknowledged
 *   (`outbox_acked`) are what it has not applied yet. That saved a row written per settlement
 *   (and one deleted per flush). Entry ids are journal ids lifted by `outbox_id_offset` (computed
 *   by version 2 above every id AUTOINCREMENT issued), so they only grow, as the Ledger needs (it
 *   takes ids at or below the last applied as retries); journal entries up to
 *   `outbox_journal_from` (the newest when version 3 ran) were queued in the table, not here.
 * - `ledger_meta` keys `ledger_balance`, `ledger_available`, `reclaim`: no longer written (the
 *   shard keeps the ledger's last answer in memory); read once on start if an earlier version left them.
 * - `key_checks`: no longer written (a shard keeps the time of its last key check in memory and
 *   checks again after a restart).
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
  [
    // Entries journalled from here on reach the Ledger from the journal; older ones from the table.
    `INSERT OR REPLACE INTO ledger_meta (key, value) VALUES ('outbox_journal_from', COALESCE((SELECT MAX(id) FROM journal), 0))`,
  ],
];

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

/** The journal note of a lease return: the one kind of adjustment that is an outbox entry. */
export const LEASE_RETURN_NOTE = "lease return";

/** What the shard keeps of the ledger's last answer about the workspace. */
export interface LedgerAnswer {
  balanceMicros: number;
  availableMicros: number;
  reclaim: boolean;
}

/** Numbers the shard remembers in `ledger_meta`. */
export type ShardMetaKey = "ledger_balance" | "ledger_available" | "reclaim" | "outbox_acked" | "outbox_id_offset" | "outbox_journal_from";

type OutboxRow = { id: number; kind: string; key_id: string | null; amount: number; byok_usage: number; reference: string | null; at: number };
type JournalOutboxRow = { id: number; kind: string; key_id: string | null; amount: number; reference: string | null; at: number };

/** Typed access to the shard tables. Every method is synchronous. */
export class ShardStore {
  #config: ShardConfig | null | undefined;
  /** `outbox_id_offset`, fixed since shard schema 2. */
  #offset: number | undefined;

  constructor(private readonly sql: SqlStorage) {}

  /** Which shard this object is (cached: it changes only through `saveConfig`). */
  config(): ShardConfig | null {
    if (this.#config !== undefined) return this.#config;
    const row = this.sql
      .exec<{ workspace_id: string; shard_index: number; shard_count: number }>("SELECT workspace_id, shard_index, shard_count FROM shard_config")
      .toArray()[0];
    this.#config = row ? { workspaceId: row.workspace_id, index: row.shard_index, count: row.shard_count } : null;
    return this.#config;
  }

  /** Store the config; call inside the transaction that needs it (a rollback drops the cache). */
  saveConfig(config: ShardConfig): void {
    this.#config = undefined;
    this.sql.exec(
      "INSERT INTO shard_config (id, workspace_id, shard_index, shard_count) VALUES (1, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET workspace_id = excluded.workspace_id, shard_index = excluded.shard_index, shard_count = excluded.shard_count",
      config.workspaceId,
      config.index,
      config.count,
    );
  }

  /** Forget cached state after a rolled-back transaction. */
  dropCache(): void {
    this.#config = undefined;
  }

  meta(key: ShardMetaKey): number | null {
    return this.sql.exec<{ value: number | null }>("SELECT value FROM ledger_meta WHERE key = ?", key).toArray()[0]?.value ?? null;
  }

  /** The ledger's answer as a version before 3 stored it (zeros when none did): a restart's starting point. */
  storedLedgerView(): LedgerAnswer {
    return { balanceMicros: this.meta("ledger_balance") ?? 0, availableMicros: this.meta("ledger_available") ?? 0, reclaim: this.meta("reclaim") === 1 };
  }

  setMeta(key: ShardMetaKey, value: number): void {
    this.sql.exec("INSERT INTO ledger_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value", key, value);
  }

  /**
   * Every entry the Ledger has not acknowledged, oldest first: what is left in the version 1–2
   * table, then the charges and lease returns journalled since. Read once, when the object starts.
   */
  unacknowledged(): LeaseEntry[] {
    const acked = this.meta("outbox_acked") ?? 0;
    const offset = this.outboxIdOffset();
    const from = Math.max(this.meta("outbox_journal_from") ?? 0, acked - offset);
    const table = this.sql
      .exec<OutboxRow>("SELECT id, kind, key_id, amount, byok_usage, reference, at FROM outbox WHERE id > ? ORDER BY id", acked)
      .toArray()
      .map(entryFromTableRow);
    const journal = this.sql
      .exec<JournalOutboxRow>(
        "SELECT id, kind, key_id, amount, reference, at FROM journal WHERE id > ? AND (kind = 'charge' OR (kind = 'adjustment' AND note = ?)) ORDER BY id",
        from,
        LEASE_RETURN_NOTE,
      )
      .toArray()
      .map((row) => entryFromJournalRow(row, offset));
    return [...table, ...journal];
  }

  /** The outbox id of the journal entry `journalId`. */
  outboxId(journalId: number): number {
    return journalId + this.outboxIdOffset();
  }

  /** Remember what the Ledger acknowledged; entries of the version 1–2 table it applied go. */
  acknowledge(ackedId: number): void {
    if ((this.meta("outbox_acked") ?? 0) >= ackedId) return;
    this.setMeta("outbox_acked", ackedId);
    this.sql.exec("DELETE FROM outbox WHERE id <= ?", ackedId);
  }

  private outboxIdOffset(): number {
    this.#offset ??= this.meta("outbox_id_offset") ?? 0;
    return this.#offset;
  }
}

function entryFromTableRow(row: OutboxRow): LeaseEntry {
  if (row.kind === "return") return { id: row.id, kind: "return", amountMicros: row.amount, at: row.at };
  if (row.kind === "charge" && row.key_id !== null && row.reference !== null) {
    return { id: row.id, kind: "charge", keyId: row.key_id, amountMicros: row.amount, byokUsageMicros: row.byok_usage, reference: row.reference, at: row.at };
  }
  throw new Error(`ledger shard: malformed outbox row ${row.id}`);
}

function entryFromJournalRow(row: JournalOutboxRow, offset: number): LeaseEntry {
  const id = row.id + offset;
  // Journal amounts are signed (money out is negative); the Ledger takes positive amounts.
  if (row.kind === "adjustment") return { id, kind: "return", amountMicros: -row.amount, at: row.at };
  if (row.key_id !== null && row.reference !== null) {
    return { id, kind: "charge", keyId: row.key_id, amountMicros: -row.amount, byokUsageMicros: 0, reference: row.reference, at: row.at };
  }
  throw new Error(`ledger shard: malformed journal charge ${row.id}`);
}
