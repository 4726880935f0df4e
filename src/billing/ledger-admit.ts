/**
 * @module billing/ledger-admit
 * The admission decision of the Ledger Durable Object, run inside one synchronous transaction:
 * key state, then rate limits (key scope, then workspace scope), then money (the workspace's
 * available credits, then the key's credit limit). Only an admitted request writes a hold and is
 * counted against the rate windows.
 */
import type { z } from "zod";
import { fitBudget, reservationMicros } from "./ledger-budget";
import { emptyUsage, limitUsage } from "./ledger-periods";
import { checkRate, countInWindow, rollWindow, type Measure, type RateWindow } from "./ledger-rate";
import type { AdmitRefusal, AdmitResult, Headroom, KeyConfig, RateLimits, admitInputSchema } from "./ledger-schema";
import { WORKSPACE_SCOPE, keyScope, type Hold, type LedgerStore, type StoredKey } from "./ledger-store";

/** How long an unsettled hold lives before it is released without charge (a crashed request). */
export const HOLD_TTL_MS = 15 * 60_000;

export type ParsedAdmitInput = z.output<typeof admitInputSchema>;

export interface Admission {
  result: AdmitResult;
  /** When set, the object's alarm must be (re)scheduled for this time. */
  alarmAt: number | null;
}

interface Scope {
  scope: "key" | "workspace";
  name: string;
  limits: RateLimits;
  liveHolds: number;
  window: RateWindow;
}

export function admitRequest(store: LedgerStore, input: ParsedAdmitInput, now: number): Admission {
  store.deleteExpiredHolds(now);
  const existing = store.hold(input.requestId);
  // A retried admission of a request that already holds credits: the same answer, counted once.
  if (existing) {
    const scopes = scopesFor(store, existing.keyId, input, now);
    const stored = store.key(existing.keyId);
    const headroom = { freeMicros: freeAfterHolds(store, stored, existing.byok, now), ratesTight: scopes.some((scope) => ratesTight(scope, now)) };
    return { result: admitted(existing, scopes, now, headroom), alarmAt: null };
  }

  const key = reconcileKey(store, input.key, now);
  if (key.config.disabled) return refuse({ ok: false, reason: "key_disabled" });
  if (key.config.expiresAt !== null && key.config.expiresAt <= now) return refuse({ ok: false, reason: "key_expired" });

  const scopes = scopesFor(store, key.config.id, { ...input, key: key.config }, now);
  for (const scope of scopes) {
    const refusal = rateRefusal(scope, now, input.promptTokens);
    if (refusal) return refuse(refusal);
  }

  const sized = sizeAgainstMoney(store, key, input, now);
  if (!sized.ok) return refuse(sized.refusal);

  const hold: Hold = {
    id: input.requestId,
    keyId: key.config.id,
    amount: reservationMicros(input.promptMicros, sized.maxTokens, input.completionPrice),
    byok: input.byok,
    maxTokens: sized.maxTokens,
    capped: input.requestedMaxTokens === null && sized.maxTokens < input.modelMaxTokens,
    promptTokens: input.promptTokens,
    createdAt: now,
    expiresAt: now + HOLD_TTL_MS,
  };
  store.insertHold(hold);
  for (const scope of scopes) {
    scope.window = countInWindow(scope.window, now, 1, input.promptTokens);
    // Concurrency is counted from live holds; only per-minute limits need a stored window.
    if (scope.limits.rpm !== null || scope.limits.tpm !== null) store.saveWindow(scope.name, scope.window);
  }
  const headroom = { freeMicros: sized.freeMicros - hold.amount, ratesTight: scopes.some((scope) => ratesTight(scope, now)) };
  return { result: admitted(hold, scopes, now, headroom), alarmAt: alarmToSchedule(store, hold, now) };
}

function refuse(refusal: AdmitRefusal): Admission {
  return { result: refusal, alarmAt: null };
}

/**
 * The key as the ledger knows it. A key seen for the first time is stored from the snapshot;
 * afterwards the snapshot refreshes the limits, but the stored `disabled` and `expiresAt` win:
 * they change only through `setKey`, so a revoked key stays revoked whatever a cache says.
 */
function reconcileKey(store: LedgerStore, snapshot: KeyConfig, now: number): StoredKey {
  const stored = store.key(snapshot.id);
  if (!stored) {
    const usage = emptyUsage(now);
    store.upsertKey(snapshot, usage);
    return { config: snapshot, usage };
  }
  const config: KeyConfig = { ...snapshot, disabled: stored.config.disabled, expiresAt: stored.config.expiresAt };
  if (!sameConfig(config, stored.config)) store.upsertKey(config, stored.usage);
  return { config, usage: stored.usage };
}

function sameConfig(a: KeyConfig, b: KeyConfig): boolean {
  return (
    a.disabled === b.disabled &&
    a.expiresAt === b.expiresAt &&
    a.limitMicros === b.limitMicros &&
    a.limitReset === b.limitReset &&
    a.includeByokInLimit === b.includeByokInLimit &&
    a.limits.rpm === b.limits.rpm &&
    a.limits.tpm === b.limits.tpm &&
    a.limits.concurrency === b.limits.concurrency
  );
}

function scopesFor(store: LedgerStore, keyId: string, input: Pick<ParsedAdmitInput, "key" | "workspaceLimits">, now: number): Scope[] {
  return [
    {
      scope: "key",
      name: keyScope(keyId),
      limits: input.key.limits,
      liveHolds: store.liveHolds(now, keyId),
      window: rollWindow(store.window(keyScope(keyId)), now),
    },
    {
      scope: "workspace",
      name: WORKSPACE_SCOPE,
      limits: input.workspaceLimits,
      liveHolds: store.liveHolds(now, null),
      window: rollWindow(store.window(WORKSPACE_SCOPE), now),
    },
  ];
}

/**
 * Concurrency, then requests per minute, then tokens per minute. A concurrency slot frees when any
 * request of the scope finishes, so its refusal asks for a retry after one second.
 */
function rateRefusal(scope: Scope, now: number, promptTokens: number): AdmitRefusal | null {
  const { concurrency, rpm, tpm } = scope.limits;
  if (concurrency !== null && scope.liveHolds >= concurrency) {
    return {
      ok: false,
      reason: "rate_limited",
      scope: scope.scope,
      limit: "concurrency",
      limitValue: concurrency,
      remaining: 0,
      resetAt: Math.floor(now / 1000) + 1,
      retryAfterSeconds: 1,
    };
  }
  const perMinute: [limit: "rpm" | "tpm", measure: Measure, value: number | null, cost: number][] = [
    ["rpm", "requests", rpm, 1],
    ["tpm", "tokens", tpm, promptTokens],
  ];
  for (const [limit, measure, value, cost] of perMinute) {
    if (value === null) continue;
    const check = checkRate(scope.window, now, measure, value, cost);
    if (!check.ok) {
      const { remaining, resetAt, retryAfterSeconds } = check;
      return { ok: false, reason: "rate_limited", scope: scope.scope, limit, limitValue: value, remaining, resetAt, retryAfterSeconds };
    }
  }
  return null;
}

/** `freeMicros`: the smallest budget the request was fitted into (before its own hold). */
type Sized = { ok: true; maxTokens: number; freeMicros: number } | { ok: false; refusal: AdmitRefusal };

/**
 * Fit the request into the workspace's available credits (balance minus live holds and credit
 * leased to shards), then into the key's remaining limit. A negative balance leaves a negative
 * budget, which no reservation (not even a zero-cost one) fits. BYOK requests meet the key limit only when the key includes
 * BYOK usage in it.
 */
function sizeAgainstMoney(store: LedgerStore, key: StoredKey, input: ParsedAdmitInput, now: number): Sized {
  const balance = store.balance().balance;
  const free = balance - store.heldMicros(now) - store.leasedMicros();
  const credit = fitBudget(free, input, input.modelMaxTokens);
  if (!credit.ok) {
    const { requestedTokens, affordableTokens } = credit;
    return { ok: false, refusal: { ok: false, reason: "insufficient_credits", requestedTokens, affordableTokens, balanceMicros: balance } };
  }
  const { id, limitMicros, limitReset, includeByokInLimit } = key.config;
  if (limitMicros === null || (input.byok && !includeByokInLimit)) return { ...credit, freeMicros: free };
  const remaining =
    limitMicros - limitUsage(key.usage, limitReset, includeByokInLimit, now) - store.keyHeldMicros(id, now, includeByokInLimit);
  const limit = fitBudget(remaining, input, credit.maxTokens);
  if (!limit.ok) {
    const { requestedTokens, affordableTokens } = limit;
    return {
      ok: false,
      refusal: { ok: false, reason: "key_limit", requestedTokens, affordableTokens, limitRemainingMicros: Math.max(0, remaining) },
    };
  }
  return { ...limit, freeMicros: Math.min(free, remaining) };
}

/** Credit free once every live hold is counted: the workspace's, or the key's limit if smaller. */
function freeAfterHolds(store: LedgerStore, key: StoredKey | null, byok: boolean, now: number): number {
  const free = store.balance().balance - store.heldMicros(now) - store.leasedMicros();
  if (!key || key.config.limitMicros === null || (byok && !key.config.includeByokInLimit)) return free;
  const { id, limitMicros, limitReset, includeByokInLimit } = key.config;
  const remaining = limitMicros - limitUsage(key.usage, limitReset, includeByokInLimit, now) - store.keyHeldMicros(id, now, includeByokInLimit);
  return Math.min(free, remaining);
}

function admitted(hold: Hold, scopes: Scope[], now: number, headroom: Headroom): AdmitResult {
  return {
    ok: true,
    holdId: hold.id,
    reservedMicros: hold.amount,
    maxTokens: hold.maxTokens,
    capped: hold.capped,
    rate: tightestRpm(scopes, now),
    headroom,
  };
}

/** Whether any limit of the scope is more than half used, counting the request just admitted. */
function ratesTight(scope: Scope, now: number): boolean {
  const { concurrency, rpm, tpm } = scope.limits;
  if (concurrency !== null && (scope.liveHolds + 1) * 2 > concurrency) return true;
  if (rpm !== null && checkRate(scope.window, now, "requests", rpm, 0).remaining * 2 < rpm) return true;
  return tpm !== null && checkRate(scope.window, now, "tokens", tpm, 0).remaining * 2 < tpm;
}

/** The request limit with the fewest requests left, for X-RateLimit-* headers. */
function tightestRpm(scopes: Scope[], now: number): { limit: number; remaining: number; resetAt: number } | null {
  let tightest: { limit: number; remaining: number; resetAt: number } | null = null;
  for (const scope of scopes) {
    const rpm = scope.limits.rpm;
    if (rpm === null) continue;
    const { remaining, resetAt } = checkRate(scope.window, now, "requests", rpm, 0);
    if (tightest === null || remaining < tightest.remaining || (remaining === tightest.remaining && rpm < tightest.limit)) {
      tightest = { limit: rpm, remaining, resetAt };
    }
  }
  return tightest;
}

/**
 * Holds expire in admission order, so the alarm only needs moving when none is pending (or the
 * pending one is overdue, or later than this hold). Returns the new alarm time, if any.
 */
function alarmToSchedule(store: LedgerStore, hold: Hold, now: number): number | null {
  const pending = store.alarmAt();
  if (pending !== null && pending > now && pending <= hold.expiresAt) return null;
  const at = store.earliestExpiry() ?? hold.expiresAt;
  store.setAlarmAt(at);
  return at;
}
