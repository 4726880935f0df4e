/**
 * @module billing/ledger-shard-keys
 * How a LedgerShard keeps its copy of key statuses fresh (docs/ledger-leases.md, "Key status"):
 * it asks the ledger when its copy is older than KEY_STATUS_MAX_AGE_MS, concurrent admissions of
 * one key share one ask, and the key's row is written only when the status changed (a row per
 * check was a row per 2 s per key). When it last asked is kept in memory: a restarted shard asks
 * again on the key's next admission.
 */
import type { KeyStatus } from "./ledger-lease";
import type { KeyConfig } from "./ledger-schema";
import { KEY_STATUS_MAX_AGE_MS } from "./ledger-shard-policy";
import type { StoredKey } from "./ledger-store";

export class KeyStatusChecks {
  readonly #checkedAt = new Map<string, number>();
  readonly #pending = new Map<string, Promise<void>>();

  /**
   * Run `ask` unless this key's status was read less than KEY_STATUS_MAX_AGE_MS before `now`; an
   * ask already running for the key is shared. `ask` answers whether it read a status.
   */
  refresh(keyId: string, now: number, ask: () => Promise<boolean>): Promise<void> {
    const checked = this.#checkedAt.get(keyId);
    if (checked !== undefined && checked <= now && now - checked < KEY_STATUS_MAX_AGE_MS) return Promise.resolve();
    const pending = this.#pending.get(keyId);
    if (pending) return pending;
    const run = ask()
      .then((read) => {
        if (read) this.#checkedAt.set(keyId, now);
      })
      .finally(() => this.#pending.delete(keyId));
    this.#pending.set(keyId, run);
    return run;
  }
}

/** The key's configuration with the ledger's status applied, or null when the stored copy already has it. */
export function keyWithStatus(stored: StoredKey | null, snapshot: KeyConfig, status: KeyStatus): KeyConfig | null {
  const current = stored?.config ?? snapshot;
  if (stored && current.disabled === status.disabled && current.expiresAt === status.expiresAt) return null;
  return { ...current, disabled: status.disabled, expiresAt: status.expiresAt };
}
