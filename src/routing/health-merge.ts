/**
 * @module routing/health-merge
 * What an isolate routes by: the Health object's last snapshot, aged to the isolate's clock and
 * overlaid with what this isolate saw itself since. The worse state wins, so a request right after
 * a local failure already avoids the endpoint, before the shared snapshot catches up.
 *
 * Only states are overlaid — an open breaker, a Retry-After, the last outage — never statistics:
 * a handful of local attempts would make a noisy uptime or percentile, and the shared numbers are
 * at most a few seconds behind. A local breaker counts only while it cools down; when it turns
 * half-open the shared breaker decides (and grants the probe).
 */
import type { EndpointHealth, HealthSnapshot } from "./health-types";

export interface MergedHealth {
  snapshot: HealthSnapshot;
  /** When the merge must be redone even if nothing new arrives: the next cool-down or Retry-After to end. */
  validUntil: number;
}

const UNKNOWN: EndpointHealth = {
  lastOutageAt: null,
  breaker: "closed",
  openUntil: null,
  retryAfterUntil: null,
  uptime: null,
  latencyMs: null,
  throughputTps: null,
};

function later(a: number | null, b: number | null): number | null {
  if (a === null) return b;
  if (b === null) return a;
  return Math.max(a, b);
}

/**
 * Merge `remote` (the Health object's snapshot) with `local` (this isolate's own view) at `now`.
 * Returns `remote` itself when there is nothing to change, so the common case allocates nothing.
 */
export function mergeHealth(remote: HealthSnapshot, local: ReadonlyMap<string, EndpointHealth>, now: number): MergedHealth {
  let validUntil = Number.POSITIVE_INFINITY;
  let out: Map<string, EndpointHealth> | null = null;
  const edit = (): Map<string, EndpointHealth> => (out ??= new Map(remote));

  for (const [id, health] of remote) {
    if (health.breaker !== "open" || health.openUntil === null) continue;
    // The snapshot was taken during the cool-down; past it the breaker is half-open.
    if (health.openUntil > now) validUntil = Math.min(validUntil, health.openUntil);
    else edit().set(id, { ...health, breaker: "half_open" });
  }

  for (const [id, mine] of local) {
    const base = (out ?? remote).get(id) ?? UNKNOWN;
    const coolingDown = mine.breaker === "open" && mine.openUntil !== null && mine.openUntil > now;
    const retryLater = mine.retryAfterUntil !== null && mine.retryAfterUntil > (base.retryAfterUntil ?? now);
    const newerOutage = mine.lastOutageAt !== null && mine.lastOutageAt > (base.lastOutageAt ?? Number.NEGATIVE_INFINITY);
    if (!coolingDown && !retryLater && !newerOutage) continue;

    const merged: EndpointHealth = {
      ...base,
      lastOutageAt: later(base.lastOutageAt, mine.lastOutageAt),
      retryAfterUntil: later(base.retryAfterUntil, mine.retryAfterUntil),
    };
    if (coolingDown && mine.openUntil !== null) {
      merged.breaker = "open";
      merged.openUntil = base.breaker === "open" ? later(base.openUntil, mine.openUntil) : mine.openUntil;
      validUntil = Math.min(validUntil, merged.openUntil ?? mine.openUntil);
    }
    if (retryLater && mine.retryAfterUntil !== null) validUntil = Math.min(validUntil, mine.retryAfterUntil);
    edit().set(id, merged);
  }
  return { snapshot: out ?? remote, validUntil };
}
