/**
 * @module billing/ledger-migrations
 * The Ledger Durable Object's SQLite schema, created idempotently behind a version number.
 *
 * Tables (schema version 1):
 * - `journal`: append-only money movements, signed µ$. `balance` (one row) moves in the same
 *   transaction as each insert, so balance = SUM(journal.amount) always.
 * - `holds`: reservations of admitted requests until they settle, are released or expire.
 * - `keys`: the last known configuration of each API key (its `disabled`/`expires_at` are
 *   authoritative here) and its spend counters per calendar period, BYOK usage apart.
 * - `rate_windows`: per scope (`key:<id>` or `workspace`), requests and tokens of the current and
 *   previous minute.
 * - `ledger_meta`: schema version and the time of the pending alarm.
 *
 * Version 2:
 * - `byok_months`: the workspace's platform-equivalent BYOK spend per UTC month (named by its
 *   first instant), against which the monthly BYOK free allowance is counted.
 *
 * Version 3 — fewer rows written per request (Durable Object SQLite bills every row written, and
 * an index entry counts as a row):
 * - `holds` becomes a WITHOUT ROWID table keyed by id, with no secondary index: a hold costs one
 *   row to write and one to delete. The few live holds are scanned instead (rows read cost a
 *   thousandth of rows written).
 * - `journal` keeps INTEGER PRIMARY KEY without AUTOINCREMENT, which spared a `sqlite_sequence`
 *   write per entry. Entries are never deleted, so ids still only grow.
 *
 * Version 4 — the Ledger keeps its working state in memory (ledger-memory-store.ts) and the
 * journal is the one row a settlement writes:
 * - `journal.byok_usage`: a charge's platform-equivalent BYOK usage, so key spend can be replayed
 *   from the journal like the balance.
 * - `balance.journal_id`: the last journal entry the `balance` row and the `keys` spend counters
 *   include (a checkpoint); entries after it are replayed when the object starts.
 * - `holds` is no longer written by the Ledger (holds live in memory); rows left from version 3
 *   are loaded once and deleted. LedgerShard objects still keep their holds there.
 */

/** Migrations by version: index 0 takes an empty database to version 1. Append, never edit. */
const MIGRATIONS: readonly (readonly string[])[] = [
  [
    `CREATE TABLE journal (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      at INTEGER NOT NULL,
      kind TEXT NOT NULL CHECK (kind IN ('topup', 'fee', 'charge', 'refund', 'adjustment')),
      amount INTEGER NOT NULL CHECK (amount <> 0),
      key_id TEXT,
      reference TEXT,
      note TEXT
    )`,
    `CREATE TABLE balance (
      id INTEGER PRIMARY KEY CHECK (id = 1),
      balance INTEGER NOT NULL,
      credits INTEGER NOT NULL,
      usage INTEGER NOT NULL
    )`,
    `INSERT INTO balance (id, balance, credits, usage) VALUES (1, 0, 0, 0)`,
    `CREATE TABLE holds (
      id TEXT PRIMARY KEY,
      key_id TEXT NOT NULL,
      amount INTEGER NOT NULL CHECK (amount >= 0),
      byok INTEGER NOT NULL,
      max_tokens INTEGER NOT NULL,
      capped INTEGER NOT NULL,
      prompt_tokens INTEGER NOT NULL,
      created_at INTEGER NOT NULL,
      expires_at INTEGER NOT NULL
    )`,
    `CREATE INDEX holds_by_expiry ON holds (expires_at)`,
    `CREATE INDEX holds_by_key ON holds (key_id, expires_at)`,
    `CREATE TABLE keys (
      id TEXT PRIMARY KEY,
      disabled INTEGER NOT NULL,
      expires_at INTEGER,
      limit_micros INTEGER,
      limit_reset TEXT,
      include_byok INTEGER NOT NULL,
      rpm INTEGER,
      tpm INTEGER,
      concurrency INTEGER,
      usage_total INTEGER NOT NULL,
      byok_total INTEGER NOT NULL,
      day_start INTEGER NOT NULL,
      day_usage INTEGER NOT NULL,
      day_byok INTEGER NOT NULL,
      week_start INTEGER NOT NULL,
      week_usage INTEGER NOT NULL,
      week_byok INTEGER NOT NULL,
      month_start INTEGER NOT NULL,
      month_usage INTEGER NOT NULL,
      month_byok INTEGER NOT NULL
    )`,
    `CREATE TABLE rate_windows (
      scope TEXT PRIMARY KEY,
      minute INTEGER NOT NULL,
      requests INTEGER NOT NULL,
      tokens INTEGER NOT NULL,
      prev_requests INTEGER NOT NULL,
      prev_tokens INTEGER NOT NULL
    )`,
  ],
  [
    `CREATE TABLE byok_months (
      month_start INTEGER PRIMARY KEY,
      usage INTEGER NOT NULL CHECK (usage >= 0)
    )`,
  ],
  [
    `CREATE TABLE holds_v3 (
      id TEXT PRIMARY KEY,
      key_id TEXT NOT NULL,
      amount INTEGER NOT NULL CHECK (amount >= 0),
      byok INTEGER NOT NULL,
      max_tokens INTEGER NOT NULL,
      capped INTEGER NOT NULL,
      prompt_tokens INTEGER NOT NULL,
      created_at INTEGER NOT NULL,
      expires_at INTEGER NOT NULL
    ) WITHOUT ROWID`,
    `INSERT INTO holds_v3 (id, key_id, amount, byok, max_tokens, capped, prompt_tokens, created_at, expires_at)
       SELECT id, key_id, amount, byok, max_tokens, capped, prompt_tokens, created_at, expires_at FROM holds`,
    `DROP TABLE holds`,
    `ALTER TABLE holds_v3 RENAME TO holds`,
    `CREATE TABLE journal_v3 (
      id INTEGER PRIMARY KEY,
      at INTEGER NOT NULL,
      kind TEXT NOT NULL CHECK (kind IN ('topup', 'fee', 'charge', 'refund', 'adjustment')),
      amount INTEGER NOT NULL CHECK (amount <> 0),
      key_id TEXT,
      reference TEXT,
      note TEXT
    )`,
    `INSERT INTO journal_v3 (id, at, kind, amount, key_id, reference, note) SELECT id, at, kind, amount, key_id, reference, note FROM journal`,
    `DROP TABLE journal`,
    `ALTER TABLE journal_v3 RENAME TO journal`,
  ],
  [
    `ALTER TABLE journal ADD COLUMN byok_usage INTEGER`,
    `ALTER TABLE balance ADD COLUMN journal_id INTEGER NOT NULL DEFAULT 0`,
    // Everything journalled so far is already in the balance and key rows.
    `UPDATE balance SET journal_id = (SELECT COALESCE(MAX(id), 0) FROM journal)`,
  ],
];

const SCHEMA_VERSION = MIGRATIONS.length;

/**
 * Bring the tables to SCHEMA_VERSION, idempotently (cloudflare/agents `_ensureSchema`). Run in the
 * constructor under `blockConcurrencyWhile`, so no call sees a half-made schema.
 */
export function ensureSchema(storage: DurableObjectStorage): void {
  storage.transactionSync(() => {
    storage.sql.exec("CREATE TABLE IF NOT EXISTS ledger_meta (key TEXT PRIMARY KEY, value INTEGER)");
    const row = storage.sql.exec<{ value: number }>("SELECT value FROM ledger_meta WHERE key = 'schema_version'").toArray()[0];
    for (const statements of MIGRATIONS.slice(row?.value ?? 0)) {
      for (const statement of statements) storage.sql.exec(statement);
    }
    storage.sql.exec("INSERT OR REPLACE INTO ledger_meta (key, value) VALUES ('schema_version', ?)", SCHEMA_VERSION);
  });
}
