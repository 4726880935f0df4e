/**
 * @module routing/health
 * The `Health` Durable Object: one per region, named by it — "global", and "eu" (created in the EU
 * jurisdiction, residency/bindings) for the workspaces pinned to the EU — shared by every isolate
 * routing there. Isolates report attempt outcomes, read a snapshot every couple of
 * seconds (routing/health-client keeps it cached), and ask it for the one probe a half-open
 * breaker allows. The numbers live in a `HealthBook` in memory — they are ephemeral, and losing
 * them on eviction only forgets 30 minutes of statistics.
 *
 * Only breakers are persisted, because forgetting an open one would send the whole region's
 * traffic back to a dead endpoint. A row is written when a breaker opens or re-opens and deleted
 * when it closes: a busy healthy endpoint costs no storage write at all.
 *
 * Storage (SQLite, schema version 1):
 * - `breakers (endpoint_id PK, opened_at, open_until, failed_probes)` WITHOUT ROWID: one row per
 *   open (or half-open) breaker; `failed_probes` is the cool-down's exponent.
 * - `health_meta (key PK, value)`: `schema_version`.
 */
import { DurableObject } from "cloudflare:workers";
import type { SavedBreaker } from "./health-breaker";
import { HealthBook, type BreakerChange } from "./health-book";
import { endpointIdSchema, reportInputSchema } from "./health-schema";
import type { AttemptOutcome, SerializedHealthSnapshot } from "./health-types";

/**
 * A computed snapshot is served again for this long unless a failure or a breaker change arrives
 * meanwhile. Every isolate of the region asks every couple of seconds; without this each ask would
 * summarise every endpoint.
 */
export const SNAPSHOT_REUSE_MS = 1_000;

/** Migrations by version: index 0 takes an empty database to version 1. Append, never edit. */
const MIGRATIONS: readonly (readonly string[])[] = [
  [
    `CREATE TABLE breakers (
      endpoint_id TEXT PRIMARY KEY,
      opened_at INTEGER NOT NULL,
      open_until INTEGER NOT NULL,
      failed_probes INTEGER NOT NULL CHECK (failed_probes >= 0)
    ) WITHOUT ROWID`,
  ],
];

/** Bring the tables to the latest version, idempotently; run under `blockConcurrencyWhile`. */
function ensureSchema(storage: DurableObjectStorage): void {
  storage.transactionSync(() => {
    storage.sql.exec("CREATE TABLE IF NOT EXISTS health_meta (key TEXT PRIMARY KEY, value INTEGER)");
    const row = storage.sql.exec<{ value: number }>("SELECT value FROM health_meta WHERE key = 'schema_version'").toArray()[0];
    for (const statements of MIGRATIONS.slice(row?.value ?? 0)) {
      for (const statement of statements) storage.sql.exec(statement);
    }
    storage.sql.exec("INSERT OR REPLACE INTO health_meta (key, value) VALUES ('schema_version', ?)", MIGRATIONS.length);
  });
}

interface BreakerRow extends Record<string, SqlStorageValue> {
  endpoint_id: string;
  opened_at: number;
  open_until: number;
  failed_probes: number;
}

export class Health extends DurableObject<Env> {
  readonly #book = new HealthBook();
  #cached: SerializedHealthSnapshot | null = null;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    void ctx.blockConcurrencyWhile(async () => {
      ensureSchema(ctx.storage);
      for (const row of ctx.storage.sql.exec<BreakerRow>("SELECT endpoint_id, opened_at, open_until, failed_probes FROM breakers")) {
        const saved: SavedBreaker = { openedAt: row.opened_at, openUntil: row.open_until, failedProbes: row.failed_probes };
        this.#book.restore(row.endpoint_id, saved);
      }
    });
  }

  /**
   * Count a batch of attempt outcomes. Writes storage only when a breaker opens or closes. A
   * malformed batch throws and counts nothing.
   */
  report(outcomes: AttemptOutcome[]): void {
    const parsed = reportInputSchema.parse(outcomes);
    const changes = this.#book.record(parsed, Date.now());
    if (changes.length > 0) this.#persist(changes);
    // Successes alone only move statistics, which may lag a second; anything else may matter now.
    if (changes.length > 0 || parsed.some((o) => !o.ok)) this.#cached = null;
  }

  /** Every endpoint with recent data or an open breaker, as a plain array of entries. */
  snapshot(): SerializedHealthSnapshot {
    const now = Date.now();
    if (this.#cached && now - this.#cached.at < SNAPSHOT_REUSE_MS) return this.#cached;
    this.#cached = { at: now, endpoints: Array.from(this.#book.snapshot(now), ([endpointId, health]) => ({ endpointId, health })) };
    return this.#cached;
  }

  /**
   * Whether the caller may send to the endpoint now: true when its breaker is closed, false while
   * it cools down, and true to exactly one caller once it is half-open (the probe). Not persisted:
   * an eviction forgets a grant, which costs at most one extra probe.
   */
  claimProbe(endpointId: string): boolean {
    return this.#book.claimProbe(endpointIdSchema.parse(endpointId), Date.now());
  }

  /**
   * Forget one endpoint's health (or every endpoint's), breaker included: an operator who fixed a
   * provider's configuration need not wait out a cool-down. Returns the breakers it removed.
   */
  reset(endpointId?: string): number {
    const id = endpointId === undefined ? undefined : endpointIdSchema.parse(endpointId);
    this.#book.forget(id);
    this.#cached = null;
    const sql = this.ctx.storage.sql;
    const cursor = id === undefined ? sql.exec("DELETE FROM breakers") : sql.exec("DELETE FROM breakers WHERE endpoint_id = ?", id);
    return cursor.rowsWritten;
  }

  #persist(changes: readonly BreakerChange[]): void {
    const sql = this.ctx.storage.sql;
    this.ctx.storage.transactionSync(() => {
      for (const { endpointId, saved } of changes) {
        if (saved) {
          sql.exec(
            "INSERT OR REPLACE INTO breakers (endpoint_id, opened_at, open_until, failed_probes) VALUES (?, ?, ?, ?)",
            endpointId,
            saved.openedAt,
            saved.openUntil,
            saved.failedProbes,
          );
        } else {
          sql.exec("DELETE FROM breakers WHERE endpoint_id = ?", endpointId);
        }
      }
    });
  }
}
