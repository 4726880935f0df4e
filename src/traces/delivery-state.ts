/**
 * @module traces/delivery-state
 * Delivery health per destination (delivered and failed counts, last success, last error), kept in
 * D1 next to the destinations the admin API lists. The deliveries consumer tallies a batch in
 * memory and writes one upsert per destination touched, all in one D1 round trip: a few writes
 * per batch instead of one per trace, and SQLite adds the counts atomically, so concurrent
 * consumer invocations lose nothing. A Durable Object would give the same counts at the price of
 * one more moving part, for numbers that are only read by an operator.
 */
import { eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { traceDeliveryState } from "../db/schema";

/** What one batch did to one destination. */
export interface DeliveryTally {
  workspaceId: string;
  destinationId: string;
  delivered: number;
  failed: number;
  lastSuccessAt: number | null;
  lastErrorAt: number | null;
  lastError: string | null;
}

export interface DeliveryState {
  delivered: number;
  failed: number;
  lastSuccessAt: number | null;
  lastErrorAt: number | null;
  lastError: string | null;
}

/** Tallies of one batch, per destination. */
export class DeliveryTallies {
  readonly #byDestination = new Map<string, DeliveryTally>();

  #of(workspaceId: string, destinationId: string): DeliveryTally {
    const key = `${workspaceId}\u0000${destinationId}`;
    let tally = this.#byDestination.get(key);
    if (!tally) {
      tally = { workspaceId, destinationId, delivered: 0, failed: 0, lastSuccessAt: null, lastErrorAt: null, lastError: null };
      this.#byDestination.set(key, tally);
    }
    return tally;
  }

  success(workspaceId: string, destinationId: string, at: number): void {
    const tally = this.#of(workspaceId, destinationId);
    tally.delivered++;
    tally.lastSuccessAt = at;
  }

  failure(workspaceId: string, destinationId: string, at: number, error: string): void {
    const tally = this.#of(workspaceId, destinationId);
    tally.failed++;
    tally.lastErrorAt = at;
    tally.lastError = error.slice(0, 1024);
  }

  get all(): DeliveryTally[] {
    return [...this.#byDestination.values()];
  }
}

// The SELECT from trace_destinations makes the upsert a no-op for a destination deleted while its
// deliveries were in flight, instead of a foreign-key failure that would fail the whole batch.
const UPSERT = `INSERT INTO trace_delivery_state (workspace_id, destination_id, delivered, failed, last_success_at, last_error_at, last_error)
SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7 FROM trace_destinations WHERE workspace_id = ?1 AND id = ?2
ON CONFLICT (workspace_id, destination_id) DO UPDATE SET
  delivered = delivered + excluded.delivered,
  failed = failed + excluded.failed,
  last_success_at = CASE WHEN excluded.last_success_at > coalesce(last_success_at, 0) THEN excluded.last_success_at ELSE last_success_at END,
  last_error = CASE WHEN excluded.last_error_at > coalesce(last_error_at, 0) THEN excluded.last_error ELSE last_error END,
  last_error_at = CASE WHEN excluded.last_error_at > coalesce(last_error_at, 0) THEN excluded.last_error_at ELSE last_error_at END`;

/** Add a batch's tallies to the stored state: one statement per destination, one round trip. */
export async function recordDeliveryState(db: D1Database, tallies: readonly DeliveryTally[]): Promise<void> {
  if (tallies.length === 0) return;
  await db.batch(tallies.map((t) => db.prepare(UPSERT).bind(t.workspaceId, t.destinationId, t.delivered, t.failed, t.lastSuccessAt, t.lastErrorAt, t.lastError)));
}

/** Destination id → its delivery state, for one workspace. */
export async function deliveryStates(db: D1Database, workspaceId: string): Promise<Map<string, DeliveryState>> {
  const rows = await drizzle(db).select().from(traceDeliveryState).where(eq(traceDeliveryState.workspaceId, workspaceId));
  return new Map(
    rows.map((r) => [r.destinationId, { delivered: r.delivered, failed: r.failed, lastSuccessAt: r.lastSuccessAt, lastErrorAt: r.lastErrorAt, lastError: r.lastError }]),
  );
}
