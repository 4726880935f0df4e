/**
 * @module billing/ledger-lease
 * The workspace Ledger's side of credit leases (docs/ledger-leases.md). A `LedgerShard` admits
 * requests against credit the ledger has leased to it; the ledger counts every outstanding lease
 * like a hold, so its own available credit (balance − holds − leases) drops by exactly what it
 * has leased, and Σ leases can never exceed what the balance covers.
 *
 * A shard reports what it spent (and gives back what it does not need) in batches of numbered
 * entries. The ledger applies each entry once, in order — a retried batch changes nothing — and
 * journals charges as ordinary `charge` entries, so balance = Σ journal still holds. Grants are
 * the only movement that is not idempotent: a lost grant answer leaves credit leased that the
 * shard does not know about, which only ever errs towards reserving too much, and the shard's
 * reconciliation (in `ledger-shard`) takes it back into its books.
 */
import { z } from "zod";
import { addUsage, emptyUsage } from "./ledger-periods";
import { keyConfigSchema } from "./ledger-schema";
import type { LedgerStore } from "./ledger-store";

const micros = z.number().int().nonnegative();

export const shardIdSchema = z.string().min(1).max(256);

/** One movement a shard reports: a charge of a request it admitted, or lease credit it gives back. */
export const leaseEntrySchema = z.discriminatedUnion("kind", [
  z.object({
    /** The shard's outbox id: increasing, applied once. */
    id: z.number().int().positive(),
    kind: z.literal("charge"),
    keyId: z.string().min(1),
    amountMicros: micros,
    /** Platform-equivalent cost of a BYOK request, for the key's BYOK usage counters. */
    byokUsageMicros: micros,
    /** The generation id, as in the ledger's own charges. */
    reference: z.string().min(1).max(128),
    at: z.number().int(),
  }),
  z.object({ id: z.number().int().positive(), kind: z.literal("return"), amountMicros: micros, at: z.number().int() }),
]);
export type LeaseEntry = z.infer<typeof leaseEntrySchema>;

const leaseEntriesSchema = z
  .array(leaseEntrySchema)
  .max(1000)
  .refine((entries) => entries.every((e, i) => i === 0 || e.id > (entries[i - 1]?.id ?? 0)), "entry ids must increase");

/** The ledger's view of one shard's lease, returned by every lease RPC. */
export interface LeaseView {
  shardId: string;
  /** Credit leased to this shard and not yet reported spent or returned, µ$. */
  leasedMicros: number;
  /** The highest entry id applied; the shard drops its outbox up to here. */
  ackedId: number;
  /** The ledger's balance − live holds − all leases, µ$ (what a new grant could take). */
  availableMicros: number;
  balanceMicros: number;
  /** Another shard was refused credit since this shard last gave some back: return what is idle. */
  reclaim: boolean;
}

export interface LeaseGrant extends LeaseView {
  grantedMicros: number;
}

/** A key's status as the ledger holds it (authoritative: `setKey` changes it). */
export interface KeyStatus {
  id: string;
  disabled: boolean;
  expiresAt: number | null;
}

type LeaseRow = { amount: number; acked_id: number; reclaim: number };

/**
 * Create the `leases` table idempotently. Versioned on its own key in `ledger_meta`, so the
 * ledger's main migration list stays untouched. Tables (lease schema version 1):
 * - `leases`: per shard, the credit leased and not yet accounted for, the last entry id applied,
 *   and whether the ledger wants idle credit back.
 */
export function ensureLeaseSchema(storage: DurableObjectStorage): void {
  storage.transactionSync(() => {
    const row = storage.sql.exec<{ value: number }>("SELECT value FROM ledger_meta WHERE key = 'lease_schema_version'").toArray()[0];
    if ((row?.value ?? 0) >= 1) return;
    storage.sql.exec(`CREATE TABLE IF NOT EXISTS leases (
      shard_id TEXT PRIMARY KEY,
      amount INTEGER NOT NULL CHECK (amount >= 0),
      acked_id INTEGER NOT NULL,
      reclaim INTEGER NOT NULL,
      updated_at INTEGER NOT NULL
    )`);
    storage.sql.exec("INSERT OR REPLACE INTO ledger_meta (key, value) VALUES ('lease_schema_version', 1)");
  });
}

/** The ledger's lease book. Every method is synchronous; callers run it inside one transaction. */
export class LeaseBook {
  constructor(
    private readonly sql: SqlStorage,
    private readonly store: LedgerStore,
  ) {}

  /**
   * Lease up to `requestedMicros` more to a shard: all of it when the ledger has that much free,
   * else everything it has (so the shard can refuse or cap exactly as the ledger would), and ask
   * the other shards holding credit to give back what is idle.
   */
  grant(shardId: string, requestedMicros: number, now: number): LeaseGrant {
    const id = shardIdSchema.parse(shardId);
    const requested = micros.parse(requestedMicros);
    const granted = Math.max(0, Math.min(requested, this.available(now)));
    const row = this.row(id);
    this.save(id, row.amount + granted, row.acked_id, row.reclaim === 1, now);
    if (granted < requested) this.sql.exec("UPDATE leases SET reclaim = 1 WHERE shard_id <> ? AND amount > 0", id);
    return { ...this.view(id, now), grantedMicros: granted };
  }

  /**
   * Apply a shard's entries once each, in order: journal charges (and count them in the key's
   * spend), take charged and returned credit off the lease. Entries at or below the last applied
   * id are a retry and change nothing. A charge above what is still leased (a settlement overrun
   * in the shard) is journalled in full; the lease stops at zero.
   */
  settle(shardId: string, entries: readonly LeaseEntry[], now: number): LeaseView {
    const id = shardIdSchema.parse(shardId);
    const parsed = leaseEntriesSchema.parse(entries);
    const row = this.row(id);
    let { amount, acked_id: acked } = row;
    let reclaim = row.reclaim === 1;
    for (const entry of parsed) {
      if (entry.id <= acked) continue;
      acked = entry.id;
      amount = Math.max(0, amount - entry.amountMicros);
      if (entry.kind === "return") {
        reclaim = false;
        continue;
      }
      this.store.appendJournal({
        at: entry.at,
        kind: "charge",
        amountMicros: -entry.amountMicros,
        keyId: entry.keyId,
        reference: entry.reference,
        note: null,
        byokUsageMicros: entry.byokUsageMicros,
      });
      const key = this.store.key(entry.keyId);
      if (key) this.store.saveUsage(entry.keyId, addUsage(key.usage, entry.amountMicros, entry.byokUsageMicros, entry.at));
    }
    if (amount === 0) reclaim = false;
    this.save(id, amount, acked, reclaim, now);
    return this.view(id, now);
  }

  /**
   * Key statuses for a shard, reconciled like an admission does: a key seen for the first time is
   * stored from the snapshot; afterwards the stored `disabled` and `expiresAt` win.
   */
  keyStatuses(snapshots: readonly z.input<typeof keyConfigSchema>[], now: number): KeyStatus[] {
    const parsed = z.array(keyConfigSchema).max(100).parse(snapshots);
    return parsed.map((snapshot) => {
      const stored = this.store.key(snapshot.id);
      if (!stored) this.store.upsertKey(snapshot, emptyUsage(now));
      const config = stored?.config ?? snapshot;
      return { id: config.id, disabled: config.disabled, expiresAt: config.expiresAt };
    });
  }

  /** Every shard's lease (for operators and tests). */
  leases(now: number): LeaseView[] {
    return this.sql
      .exec<{ shard_id: string }>("SELECT shard_id FROM leases ORDER BY shard_id")
      .toArray()
      .map((row) => this.view(row.shard_id, now));
  }

  /** Balance − live holds − all leases. Negative after a settlement overrun. */
  available(now: number): number {
    return this.store.balance().balance - this.store.heldMicros(now) - this.store.leasedMicros();
  }

  private row(shardId: string): LeaseRow {
    return (
      this.sql.exec<LeaseRow>("SELECT amount, acked_id, reclaim FROM leases WHERE shard_id = ?", shardId).toArray()[0] ?? {
        amount: 0,
        acked_id: 0,
        reclaim: 0,
      }
    );
  }

  private save(shardId: string, amount: number, ackedId: number, reclaim: boolean, now: number): void {
    this.store.leasesChanged();
    this.sql.exec(
      `INSERT INTO leases (shard_id, amount, acked_id, reclaim, updated_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (shard_id) DO UPDATE SET amount = excluded.amount, acked_id = excluded.acked_id, reclaim = excluded.reclaim, updated_at = excluded.updated_at`,
      shardId,
      amount,
      ackedId,
      reclaim ? 1 : 0,
      now,
    );
  }

  private view(shardId: string, now: number): LeaseView {
    const row = this.row(shardId);
    return {
      shardId,
      leasedMicros: row.amount,
      ackedId: row.acked_id,
      availableMicros: this.available(now),
      balanceMicros: this.store.balance().balance,
      reclaim: row.reclaim === 1,
    };
  }
}
