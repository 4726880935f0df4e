/**
 * @module billing/ledger-shard-outbox
 * A LedgerShard's unacknowledged charges and returns, in memory. The durable copy is the shard's
 * journal (ledger-shard-store): the outbox is read from it when the object starts and, after
 * that, only grows with what the shard journals and shrinks with what the Ledger acknowledges.
 * Keeping the running totals here spares a scan of the queue on every settlement.
 */
import type { LeaseEntry } from "./ledger-lease";

export class Outbox {
  #entries: LeaseEntry[] = [];
  #charges = 0;
  #returns = 0;

  /** Start from what storage says is unacknowledged (ids increasing). */
  load(entries: readonly LeaseEntry[]): void {
    this.#entries = [];
    this.#charges = 0;
    this.#returns = 0;
    for (const entry of entries) this.push(entry);
  }

  /** Queue an entry journalled just now; returns the step that takes it back out (for a rollback). */
  push(entry: LeaseEntry): () => void {
    const last = this.#entries.at(-1);
    if (last && entry.id <= last.id) throw new Error(`ledger shard: outbox id ${entry.id} does not follow ${last.id}`);
    this.#entries.push(entry);
    this.#count(entry, 1);
    return () => {
      if (this.#entries.at(-1) !== entry) return;
      this.#entries.pop();
      this.#count(entry, -1);
    };
  }

  /** The oldest `limit` entries, for one settleLease call. */
  batch(limit: number): LeaseEntry[] {
    return this.#entries.slice(0, limit);
  }

  /** Drop every entry the Ledger has applied (ids up to `ackedId`); returns the step that puts them back. */
  acknowledge(ackedId: number): () => void {
    let drop = 0;
    while (drop < this.#entries.length && this.#entries[drop]!.id <= ackedId) drop++;
    if (drop === 0) return () => {};
    const dropped = this.#entries.slice(0, drop);
    this.#entries = this.#entries.slice(drop);
    for (const entry of dropped) this.#count(entry, -1);
    return () => {
      this.#entries = [...dropped, ...this.#entries];
      for (const entry of dropped) this.#count(entry, 1);
    };
  }

  /** µ$ of charges and returns not yet acknowledged, and how many entries. */
  totals(): { charges: number; returns: number; entries: number } {
    return { charges: this.#charges, returns: this.#returns, entries: this.#entries.length };
  }

  #count(entry: LeaseEntry, sign: 1 | -1): void {
    if (entry.kind === "charge") this.#charges += sign * entry.amountMicros;
    else this.#returns += sign * entry.amountMicros;
  }
}
