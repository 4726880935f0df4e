/**
 * @module routing/order
 * The order in which a request's surviving endpoints are tried, and why each is where it is.
 * Precedence, strongest first:
 *
 * 1. endpoints the workspace has its own key for (BYOK), as OpenRouter tries them first;
 * 2. the request's `provider.order`, listed providers in that order, the rest after them;
 * 3. health: an endpoint with an outage in the last 30 s, an open or half-open breaker, or a
 *    Retry-After still running goes after every stable one (unstable ones oldest outage first);
 * 4. `preferred_min_throughput` / `preferred_max_latency`: stable endpoints that miss a
 *    threshold go to the back of the stable ones (soft: never excluded);
 * 5. stickiness, under load balancing only: the conversation's last endpoint leads its group, if
 *    it is stable and meets the preferred thresholds (explicit choices, `sort` and `order`
 *    included, win over a cache optimisation);
 * 6. `sort` (price, throughput, latency); with `provider.order` and no sort, price; otherwise
 *    load balancing: a weighted random draw without replacement, weight 1/price².
 *
 * Health only reorders within a BYOK/`order` slot: those are explicit choices, and the failover
 * loop moves past an endpoint that fails quickly. Pure: time and randomness are passed in.
 */
import type { CatalogEndpoint } from "../catalog/store";
import type { EndpointHealth, Percentiles } from "./health-types";
import type { SortBy } from "./variants";

/** What ordering reads of a candidate; `reasons` is where it writes why it placed it. */
export interface Rankable {
  endpoint: CatalogEndpoint;
  byok: boolean;
  health: EndpointHealth | undefined;
  reasons: readonly string[];
}

/** Cut-offs per percentile; a bare number in the request means p50. */
export type Cutoffs = Partial<Percentiles>;

export interface OrderOptions {
  /** `provider.order`, any case. Empty: none. */
  order: readonly string[];
  sort: SortBy | undefined;
  /** Tokens per second each given percentile should reach. */
  minThroughput: Cutoffs | undefined;
  /** Seconds (OpenRouter's unit) each given percentile of time to first token should stay under. */
  maxLatencySeconds: Cutoffs | undefined;
  now: number;
  /**
   * Uniform [0, 1) source for load balancing. Without one the plan stays deterministic: stable
   * endpoints go cheapest first, the single most likely outcome of the weighted draw.
   */
  random: (() => number) | undefined;
  /** The conversation's last endpoint id (sticky routing), if any. */
  stickyEndpointId: string | null | undefined;
}

/** An outage this recent (ms) marks an endpoint unstable, as in OpenRouter's default routing. */
export const OUTAGE_WINDOW_MS = 30_000;

/**
 * Prices are integer µ$ per million tokens, so 1 is the smallest non-zero price the catalog can
 * express. A free endpoint is weighted as if it cost that: no division by zero, and it is as
 * likely as the cheapest possible paid endpoint — in practice free endpoints lead (a $1/M
 * endpoint weighs 10⁻¹² of one) and share the lead evenly among themselves.
 */
export const PRICE_FLOOR_MICROS = 1;

const PERCENTILES = ["p50", "p75", "p90", "p99"] as const;

/** Prompt plus completion price, µ$ per million tokens. */
export function blendedPrice(endpoint: CatalogEndpoint): number {
  return endpoint.promptPrice + endpoint.completionPrice;
}

/** Load-balancing weight: inverse square of the price, so $1/M is 9× as likely as $3/M. */
export function loadBalanceWeight(endpoint: CatalogEndpoint): number {
  const price = Math.max(blendedPrice(endpoint), PRICE_FLOOR_MICROS);
  return 1 / (price * price);
}

/** "$1.38/M" from µ$ per million tokens. */
function usdPerMillion(micros: number): string {
  return `$${Number((micros / 1_000_000).toFixed(6))}/M`;
}

const seconds = (ms: number) => `${Math.round(ms / 100) / 10} s`;

/** Why an endpoint is unstable at `now`, or an empty list. */
export function instability(health: EndpointHealth | undefined, now: number): string[] {
  if (!health) return [];
  const why: string[] = [];
  if (health.lastOutageAt !== null && now - health.lastOutageAt < OUTAGE_WINDOW_MS) {
    why.push(`unstable: outage ${seconds(Math.max(0, now - health.lastOutageAt))} ago`);
  }
  if (health.breaker === "open") why.push("unstable: breaker open");
  if (health.breaker === "half_open") why.push("unstable: breaker half-open");
  if (health.retryAfterUntil !== null && health.retryAfterUntil > now) {
    why.push(`unstable: rate limited for ${seconds(health.retryAfterUntil - now)} more`);
  }
  return why;
}

/** Which preferred thresholds an endpoint misses; endpoints without data miss none. */
export function missedPreferences(health: EndpointHealth | undefined, options: Pick<OrderOptions, "minThroughput" | "maxLatencySeconds">): string[] {
  const missed: string[] = [];
  const throughput = health?.throughputTps;
  if (options.minThroughput && throughput) {
    for (const p of PERCENTILES) {
      const min = options.minThroughput[p];
      if (min !== undefined && throughput[p] < min) {
        missed.push(`below preferred throughput (${p} ${throughput[p]} < ${min} tok/s)`);
      }
    }
  }
  const latency = health?.latencyMs;
  if (options.maxLatencySeconds && latency) {
    for (const p of PERCENTILES) {
      const max = options.maxLatencySeconds[p];
      if (max !== undefined && latency[p] > max * 1000) {
        missed.push(`above preferred latency (${p} ${latency[p] / 1000} s > ${max} s)`);
      }
    }
  }
  return missed;
}

interface Placement<T> {
  candidate: T;
  index: number;
  key: [number, number, number, number];
  reasons: string[];
  unstable: boolean;
  missed: boolean;
}

const byPrice = <T extends Rankable>(a: Placement<T>, b: Placement<T>) =>
  blendedPrice(a.candidate.endpoint) - blendedPrice(b.candidate.endpoint);

/** A comparator for `sort`: measured endpoints first by the metric, then the rest cheapest first. */
function sortComparator<T extends Rankable>(by: SortBy): (a: Placement<T>, b: Placement<T>) => number {
  if (by === "price") return byPrice;
  const metric = (p: Placement<T>) =>
    by === "throughput" ? p.candidate.health?.throughputTps?.p50 : p.candidate.health?.latencyMs?.p50;
  return (a, b) => {
    const ma = metric(a);
    const mb = metric(b);
    if (ma === undefined || mb === undefined) {
      if (ma !== mb) return ma === undefined ? 1 : -1;
      return byPrice(a, b);
    }
    const diff = by === "throughput" ? mb - ma : ma - mb;
    return diff !== 0 ? diff : byPrice(a, b);
  };
}

function sortReason<T extends Rankable>(by: SortBy, p: Placement<T>): string {
  const { endpoint, health } = p.candidate;
  if (by === "price") return `sort=price: ${usdPerMillion(blendedPrice(endpoint))}`;
  if (by === "throughput") {
    const tps = health?.throughputTps?.p50;
    return tps === undefined ? "sort=throughput: no data (after measured endpoints, cheapest first)" : `sort=throughput: p50 ${tps} tok/s`;
  }
  const ms = health?.latencyMs?.p50;
  return ms === undefined ? "sort=latency: no data (after measured endpoints, cheapest first)" : `sort=latency: p50 ${ms / 1000} s`;
}

/** Weighted random order without replacement; each draw picks i with probability w_i / Σw. */
function weightedDraw<T>(items: readonly T[], weight: (item: T) => number, random: () => number): T[] {
  const pool = items.map((item) => ({ item, weight: weight(item) }));
  const drawn: T[] = [];
  while (pool.length > 0) {
    const total = pool.reduce((sum, p) => sum + p.weight, 0);
    let r = random() * total;
    let i = 0;
    // The last entry takes whatever floating-point rounding leaves over.
    for (; i < pool.length - 1; i++) {
      r -= pool[i]!.weight;
      if (r < 0) break;
    }
    drawn.push(pool.splice(i, 1)[0]!.item);
  }
  return drawn;
}

/** Order one tier of stable endpoints that share BYOK, order slot and preference standing. */
function orderStableTier<T extends Rankable>(tier: Placement<T>[], options: OrderOptions): Placement<T>[] {
  let rest = tier;
  const lead: Placement<T>[] = [];
  // Stickiness belongs to load balancing: an explicit `sort` or `order` is the client's choice and
  // holds on every turn (a turn that failed over returns to the preferred endpoint next time).
  const balancing = !options.sort && options.order.length === 0;
  const sticky = balancing && options.stickyEndpointId ? tier.find((p) => !p.missed && p.candidate.endpoint.id === options.stickyEndpointId) : undefined;
  if (sticky) {
    sticky.reasons.push("sticky: this conversation's last endpoint (prompt cache)");
    lead.push(sticky);
    rest = tier.filter((p) => p !== sticky);
  }
  if (options.sort) {
    const by = options.sort;
    for (const p of rest) p.reasons.push(sortReason(by, p));
    return [...lead, ...[...rest].sort(sortComparator(by))];
  }
  // Alone in its tier, there is no price order or draw to explain.
  if (rest.length < 2) return [...lead, ...rest];
  if (options.order.length > 0 || !options.random) {
    const why = options.order.length > 0 ? "price order (provider.order turns load balancing off)" : "cheapest first";
    for (const p of rest) p.reasons.push(`${why}: ${usdPerMillion(blendedPrice(p.candidate.endpoint))}`);
    return [...lead, ...[...rest].sort(byPrice)];
  }
  const total = rest.reduce((sum, p) => sum + loadBalanceWeight(p.candidate.endpoint), 0);
  for (const p of rest) {
    const share = loadBalanceWeight(p.candidate.endpoint) / total;
    p.reasons.push(
      `load balanced: ${Math.round(share * 1000) / 10}% chance to lead (weight 1/price², ${usdPerMillion(blendedPrice(p.candidate.endpoint))})`,
    );
  }
  return [...lead, ...weightedDraw(rest, (p) => loadBalanceWeight(p.candidate.endpoint), options.random)];
}

/** Unstable endpoints: the longest since its last outage first (none at all counts as longest). */
function orderUnstableTier<T extends Rankable>(tier: Placement<T>[]): Placement<T>[] {
  const outage = (p: Placement<T>) => p.candidate.health?.lastOutageAt ?? Number.NEGATIVE_INFINITY;
  for (const p of tier) p.reasons.push("after every stable endpoint");
  return [...tier].sort((a, b) => outage(a) - outage(b) || byPrice(a, b));
}

function compareKeys(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < a.length; i++) {
    const diff = a[i]! - b[i]!;
    if (diff !== 0) return diff;
  }
  return 0;
}

/**
 * `candidates` in the order they should be tried, each with `reasons` saying why it is there
 * (appended to any it already had). Candidates of different models keep their relative order only
 * as far as the rules above allow: call it once per model to keep the `models` fallback order.
 */
export function orderCandidates<T extends Rankable>(candidates: readonly T[], options: OrderOptions): T[] {
  const order = options.order.map((s) => s.toLowerCase());
  const placements: Placement<T>[] = candidates.map((candidate, index) => {
    const reasons: string[] = [];
    if (candidate.byok) reasons.push("byok: the workspace's own key is tried first");
    const slot = order.indexOf(candidate.endpoint.providerSlug.toLowerCase());
    if (slot >= 0) reasons.push(`provider.order #${slot + 1}`);
    else if (order.length > 0) reasons.push("not in provider.order: after the listed providers");
    const unstable = instability(candidate.health, options.now);
    reasons.push(...unstable);
    const missed = unstable.length > 0 ? [] : missedPreferences(candidate.health, options);
    reasons.push(...missed);
    return {
      candidate,
      index,
      key: [candidate.byok ? 0 : 1, slot >= 0 ? slot : order.length, unstable.length > 0 ? 1 : 0, missed.length > 0 ? 1 : 0],
      reasons,
      unstable: unstable.length > 0,
      missed: missed.length > 0,
    };
  });
  placements.sort((a, b) => compareKeys(a.key, b.key) || a.index - b.index);

  const ordered: Placement<T>[] = [];
  for (let start = 0; start < placements.length; ) {
    let end = start + 1;
    while (end < placements.length && compareKeys(placements[end]!.key, placements[start]!.key) === 0) end++;
    const tier = placements.slice(start, end);
    ordered.push(...(tier[0]!.unstable ? orderUnstableTier(tier) : orderStableTier(tier, options)));
    start = end;
  }
  return ordered.map((p) => ({ ...p.candidate, reasons: [...p.candidate.reasons, ...p.reasons] }));
}
