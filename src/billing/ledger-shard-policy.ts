/**
 * @module billing/ledger-shard-policy
 * The numbers and pure rules behind credit leases (docs/ledger-leases.md): how a LedgerShard is
 * named and chosen, how much credit it asks the workspace Ledger for, how a workspace's rate
 * limits are split among its shards, and how stale its view of a key's status may get.
 */
import type { RateLimits } from "./ledger-schema";

/** A shard asks for enough credit to cover this many seconds of its recent reservations. */
export const LEASE_SECONDS = 5;
/** Prefetch beyond the request at hand is capped at available ÷ (2 × shard count) of the ledger. */
export const MAX_SHARE_DIVISOR = 2;
/** Charges reach the ledger's journal within about this long (the shard's flush alarm). */
export const FLUSH_MS = 1_000;
/** A shard that admitted nothing for this long gives its unused lease back. */
export const IDLE_RETURN_MS = 10_000;
/**
 * A shard asks the ledger for a key's status when its copy is older than this: a key disabled or
 * expired through the admin API is refused by every shard at most this long after the change.
 */
export const KEY_STATUS_MAX_AGE_MS = 2_000;
/** Refills an admission may try before it is refused (credit taken by concurrent admissions). */
export const MAX_REFILLS = 4;

/** The Durable Object name of a workspace's shard (also its lease id at the ledger). */
export function shardName(workspaceId: string, index: number): string {
  return `${workspaceId}#shard-${index}`;
}

/**
 * Which of `count` shards serves a key: FNV-1a of the key id. Every request of a key lands on the
 * same shard, so the key's own rate limits and concurrency are exact there.
 */
export function shardForKey(keyId: string, count: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < keyId.length; i++) {
    hash ^= keyId.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash % count;
}

/**
 * A workspace limit split evenly among `count` shards, rounded down (never more in total than
 * the limit) but at least 1 (so a limit below the shard count over-admits by at most
 * count − limit; documented).
 */
export function splitLimits(limits: RateLimits, count: number): RateLimits {
  const split = (value: number | null) => (value === null ? null : Math.max(1, Math.floor(value / count)));
  return { rpm: split(limits.rpm), tpm: split(limits.tpm), concurrency: split(limits.concurrency) };
}

/** One admitted reservation, remembered in memory for lease sizing. */
export interface RecentReservation {
  at: number;
  micros: number;
}

/**
 * Credit to ask for beyond a shortfall: LEASE_SECONDS of recent reservations, capped at a share
 * of what the ledger last said it had free, so one busy shard cannot starve the others.
 */
export function prefetchMicros(recent: readonly RecentReservation[], now: number, ledgerAvailable: number, count: number): number {
  const since = now - LEASE_SECONDS * 1000;
  const wanted = recent.reduce((sum, r) => (r.at > since && r.at <= now ? sum + r.micros : sum), 0);
  const cap = Math.floor(Math.max(0, ledgerAvailable) / (MAX_SHARE_DIVISOR * count));
  return Math.min(wanted, cap);
}
