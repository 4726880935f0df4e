import { describe, expect, it } from "vitest";
import type { EndpointHealth } from "../../../src/routing/health-types";
import { loadBalanceWeight, OUTAGE_WINDOW_MS, PRICE_FLOOR_MICROS } from "../../../src/routing/order";
import { planRoute, type PlanOptions } from "../../../src/routing/plan";
import type { ProviderPreferences } from "../../../src/schemas/openrouter";
import { anyKey, catalogOf, chatRequest, endpointOf, healthOf, modelOf, mulberry32, named, providersOf, routeOf, usd, type EndpointSpec } from "./fixtures";

const NOW = 1_800_000_000_000;
const M = "acme/model";
const N = "acme/other";

/** One model whose endpoints are `specs`; prices in USD per million (prompt + completion). */
function single(...specs: Array<[slug: string, dollars: number]>) {
  return catalogOf(modelOf(M, specs.map(([provider, dollars]): EndpointSpec => ({ provider, promptPrice: usd(dollars), completionPrice: 0 }))));
}

function healthMap(entries: Record<string, EndpointHealth>, model = M): Map<string, EndpointHealth> {
  return new Map(Object.entries(entries).map(([slug, h]) => [`${model}:${slug}`, h]));
}

function planOf(catalog: ReturnType<typeof catalogOf>, provider: ProviderPreferences | undefined, options: PlanOptions = {}, models = [M]) {
  return planRoute(catalog, models, chatRequest(provider ? { provider } : {}), anyKey, options);
}

describe("load balancing: weighted random by 1/price²", () => {
  const DRAWS = 10_000;
  /** ±1.5 percentage points: over 3σ for any share at 10,000 draws (σ ≤ 0.5 pp). */
  const TOLERANCE = 0.015;

  function firstShares(catalog: ReturnType<typeof catalogOf>, seed: number): Map<string, number> {
    const random = mulberry32(seed);
    const counts = new Map<string, number>();
    for (let i = 0; i < DRAWS; i++) {
      const first = planOf(catalog, undefined, { random }).candidates[0]!.endpoint.providerSlug;
      counts.set(first, (counts.get(first) ?? 0) + 1);
    }
    return new Map([...counts].map(([slug, n]) => [slug, n / DRAWS]));
  }

  it.each(named([
    { name: "$1 vs $3 leads about 9:1", specs: [["one", 1], ["three", 3]] as Array<[string, number]>, seed: 1 },
    { name: "$1, $2, $3: 36:9:4", specs: [["one", 1], ["two", 2], ["three", 3]] as Array<[string, number]>, seed: 2 },
    { name: "equal prices share evenly", specs: [["a", 0.5], ["b", 0.5], ["c", 0.5], ["d", 0.5]] as Array<[string, number]>, seed: 3 },
    { name: "catalog order does not matter", specs: [["three", 3], ["two", 2], ["one", 1]] as Array<[string, number]>, seed: 4 },
  ]))("the share of each endpoint leading matches w_i / Σw: %s", (_name, { specs, seed }) => {
    const weights = specs.map(([, dollars]) => 1 / (dollars * dollars));
    const total = weights.reduce((a, b) => a + b, 0);
    const shares = firstShares(single(...specs), seed);
    specs.forEach(([slug], i) => {
      expect(Math.abs((shares.get(slug) ?? 0) - weights[i]! / total), slug).toBeLessThan(TOLERANCE);
    });
  });

  it("gives $1 vs $3 the 9:1 split: 90% ± 1.5 pp", () => {
    const shares = firstShares(single(["one", 1], ["three", 3]), 99);
    expect(shares.get("one")).toBeGreaterThan(0.9 - TOLERANCE);
    expect(shares.get("one")).toBeLessThan(0.9 + TOLERANCE);
  });

  it("draws without replacement: the rest follow, each endpoint exactly once", () => {
    const random = mulberry32(5);
    for (let i = 0; i < 200; i++) {
      expect([...providersOf(planOf(single(["a", 1], ["b", 2], ["c", 3], ["d", 4]), undefined, { random }))].sort()).toEqual(["a", "b", "c", "d"]);
    }
  });

  it("second place follows the weights of what is left: with $1 first, $2 beats $3 about 9:4", () => {
    const random = mulberry32(6);
    let afterOne = 0;
    let twoSecond = 0;
    for (let i = 0; i < DRAWS; i++) {
      const order = providersOf(planOf(single(["one", 1], ["two", 2], ["three", 3]), undefined, { random }));
      if (order[0] !== "one") continue;
      afterOne++;
      if (order[1] === "two") twoSecond++;
    }
    expect(Math.abs(twoSecond / afterOne - (1 / 4) / (1 / 4 + 1 / 9))).toBeLessThan(TOLERANCE * 2);
  });

  it("weighs a free endpoint as the smallest expressible price: it leads, and free endpoints share the lead", () => {
    const free = endpointOf(M, { provider: "free", promptPrice: 0, completionPrice: 0 });
    expect(loadBalanceWeight(free)).toBe(1 / (PRICE_FLOOR_MICROS * PRICE_FLOOR_MICROS));
    expect(Number.isFinite(loadBalanceWeight(free))).toBe(true);
    const shares = firstShares(single(["gratis", 0], ["libre", 0], ["paid", 0.01]), 8);
    expect(shares.get("paid") ?? 0).toBe(0);
    expect(Math.abs((shares.get("gratis") ?? 0) - 0.5)).toBeLessThan(TOLERANCE);
  });

  it("is deterministic without a random source: cheapest first", () => {
    expect(providersOf(planOf(single(["three", 3], ["one", 1], ["two", 2]), undefined))).toEqual(["one", "two", "three"]);
  });

  it("states each endpoint's chance of leading in its reasons", () => {
    const plan = planOf(single(["one", 1], ["three", 3]), undefined, { random: () => 0 });
    expect(plan.candidates.map((c) => c.reasons)).toEqual([
      ["load balanced: 90% chance to lead (weight 1/price², $1/M)"],
      ["load balanced: 10% chance to lead (weight 1/price², $3/M)"],
    ]);
  });

  it.each(named([
    { name: "sort", provider: { sort: "price" } as ProviderPreferences, expected: ["one", "two", "three"] },
    { name: "order", provider: { order: ["three"] } as ProviderPreferences, expected: ["three", "one", "two"] },
  ]))("turns off with %s: deterministic whatever the draw", (_name, { provider, expected }) => {
    for (const value of [0, 0.5, 0.999]) {
      expect(providersOf(planOf(single(["three", 3], ["one", 1], ["two", 2]), provider, { random: () => value }))).toEqual(expected);
    }
  });

  it("balances within BYOK endpoints and within platform ones, BYOK first", () => {
    const byok = new Map([["c", "own-c"], ["d", "own-d"]]);
    const random = mulberry32(11);
    for (let i = 0; i < 50; i++) {
      const order = providersOf(planOf(single(["a", 1], ["b", 1], ["c", 1], ["d", 1]), undefined, { random, byok }));
      expect(new Set(order.slice(0, 2))).toEqual(new Set(["c", "d"]));
    }
  });
});

describe("health", () => {
  const h = {
    fine: healthOf(),
    outage12s: healthOf({ lastOutageAt: NOW - 12_000 }),
    outage25s: healthOf({ lastOutageAt: NOW - 25_000 }),
    outageOld: healthOf({ lastOutageAt: NOW - OUTAGE_WINDOW_MS }),
    open: healthOf({ breaker: "open", openUntil: NOW + 5_000, lastOutageAt: NOW - 40_000 }),
    halfOpen: healthOf({ breaker: "half_open", lastOutageAt: NOW - 60_000 }),
    retryAfter: healthOf({ retryAfterUntil: NOW + 7_000 }),
    retryAfterPast: healthOf({ retryAfterUntil: NOW }),
  };
  // a is the cheapest, so price order alone would try a, b, c, d.
  const catalog = single(["a", 1], ["b", 2], ["c", 3], ["d", 4]);

  type HealthRow = { name: string; health: Record<string, EndpointHealth>; expected: string[]; reason: string | null };
  it.each(named<HealthRow>([
    { name: "an outage 12 s ago moves an endpoint after the stable ones", health: { a: h.outage12s }, expected: ["b", "c", "d", "a"], reason: "unstable: outage 12 s ago" },
    { name: "an outage exactly 30 s ago no longer counts", health: { a: h.outageOld }, expected: ["a", "b", "c", "d"], reason: null },
    { name: "an open breaker moves it", health: { a: h.open }, expected: ["b", "c", "d", "a"], reason: "unstable: breaker open" },
    { name: "a half-open breaker moves it", health: { a: h.halfOpen }, expected: ["b", "c", "d", "a"], reason: "unstable: breaker half-open" },
    { name: "a running Retry-After moves it", health: { a: h.retryAfter }, expected: ["b", "c", "d", "a"], reason: "unstable: rate limited for 7 s more" },
    { name: "a Retry-After that ended now does not", health: { a: h.retryAfterPast }, expected: ["a", "b", "c", "d"], reason: null },
    { name: "health without problems changes nothing", health: { a: h.fine, b: h.fine }, expected: ["a", "b", "c", "d"], reason: null },
  ]))("%s", (_name, { health, expected, reason }) => {
    const plan = planOf(catalog, { sort: "price" }, { health: healthMap(health), now: NOW });
    expect(providersOf(plan)).toEqual(expected);
    const a = plan.candidates.find((c) => c.endpoint.providerSlug === "a")!;
    if (reason) expect(a.reasons).toEqual([reason, "after every stable endpoint"]);
    else expect(a.reasons.some((r) => r.startsWith("unstable"))).toBe(false);
  });

  it("orders unstable endpoints by how long ago their last outage was, oldest first", () => {
    // halfOpen: 60 s ago; open: 40 s ago; outage25s; outage12s.
    const plan = planOf(catalog, { sort: "price" }, { health: healthMap({ a: h.outage12s, b: h.open, c: h.outage25s, d: h.halfOpen }), now: NOW });
    expect(providersOf(plan)).toEqual(["d", "b", "c", "a"]);
  });

  it("puts an unstable endpoint without any outage (rate limited) before those with one", () => {
    const plan = planOf(catalog, { sort: "price" }, { health: healthMap({ a: h.outage12s, b: h.retryAfter }), now: NOW });
    expect(providersOf(plan)).toEqual(["c", "d", "b", "a"]);
  });

  it("never load-balances onto an unstable endpoint ahead of a stable one", () => {
    const random = mulberry32(3);
    for (let i = 0; i < 100; i++) {
      expect(providersOf(planOf(catalog, undefined, { health: healthMap({ a: h.outage12s }), now: NOW, random })).at(-1)).toBe("a");
    }
  });

  it("keeps BYOK first and provider.order slots even when unstable (explicit choices)", () => {
    const byBoth = planOf(catalog, { order: ["c"] }, { health: healthMap({ c: h.open, d: h.open }), now: NOW, byok: new Map([["d", "own"]]) });
    expect(providersOf(byBoth)).toEqual(["d", "c", "a", "b"]);
  });

  it("carries each candidate's health snapshot (or undefined without data)", () => {
    const plan = planOf(catalog, { sort: "price" }, { health: healthMap({ b: h.fine }), now: NOW });
    expect(plan.candidates.map((c) => c.health)).toEqual([undefined, h.fine, undefined, undefined]);
  });
});

describe("sort by throughput and latency", () => {
  const catalog = single(["a", 1], ["b", 2], ["c", 3], ["d", 4]);
  const health = healthMap({
    b: healthOf({ tps: 50, latency: 300 }),
    c: healthOf({ tps: 200, latency: 900 }),
    d: healthOf({ tps: 120, latency: 300 }),
  });

  it.each(named([
    { name: "throughput: highest p50 first, endpoints without data after, cheapest first", sort: "throughput" as const, expected: ["c", "d", "b", "a"] },
    { name: "latency: lowest p50 first (ties cheapest first), endpoints without data after", sort: "latency" as const, expected: ["b", "d", "c", "a"] },
    { name: "price: cheapest first regardless of measurements", sort: "price" as const, expected: ["a", "b", "c", "d"] },
  ]))("%s", (_name, { sort, expected }) => {
    expect(providersOf(planOf(catalog, { sort }, { health, now: NOW, random: mulberry32(1) }))).toEqual(expected);
  });

  it("falls back to price order when no endpoint has data", () => {
    expect(providersOf(planOf(single(["c", 3], ["a", 1], ["b", 2]), { sort: "throughput" }, { health: new Map(), now: NOW }))).toEqual(["a", "b", "c"]);
  });

  it("explains the metric it sorted by", () => {
    const plan = planOf(catalog, { sort: "throughput" }, { health, now: NOW });
    expect(plan.candidates.map((c) => c.reasons)).toEqual([
      ["sort=throughput: p50 200 tok/s"],
      ["sort=throughput: p50 120 tok/s"],
      ["sort=throughput: p50 50 tok/s"],
      ["sort=throughput: no data (after measured endpoints, cheapest first)"],
    ]);
  });
});

describe("sort partition", () => {
  const catalog = catalogOf(
    modelOf(M, [
      { provider: "a", promptPrice: usd(3), completionPrice: 0 },
      { provider: "b", promptPrice: usd(5), completionPrice: 0 },
    ]),
    modelOf(N, [
      { provider: "c", promptPrice: usd(1), completionPrice: 0 },
      { provider: "d", promptPrice: usd(4), completionPrice: 0 },
    ]),
  );

  it("model (the default): each model sorted on its own, models in fallback order", () => {
    expect(routeOf(planOf(catalog, { sort: { by: "price", partition: "model" } }, {}, [M, N]))).toEqual([`${M}@a`, `${M}@b`, `${N}@c`, `${N}@d`]);
    expect(routeOf(planOf(catalog, { sort: { by: "price" } }, {}, [M, N]))).toEqual([`${M}@a`, `${M}@b`, `${N}@c`, `${N}@d`]);
  });

  it("none: every model's endpoints sorted together", () => {
    expect(routeOf(planOf(catalog, { sort: { by: "price", partition: "none" } }, {}, [M, N]))).toEqual([`${N}@c`, `${M}@a`, `${N}@d`, `${M}@b`]);
  });

  it("none by throughput across models", () => {
    const health = new Map([
      [`${N}:d`, healthOf({ tps: 500 })],
      [`${M}:b`, healthOf({ tps: 100 })],
    ]);
    expect(routeOf(planOf(catalog, { sort: { by: "throughput", partition: "none" } }, { health, now: NOW }, [M, N]))).toEqual([
      `${N}@d`,
      `${M}@b`,
      `${N}@c`,
      `${M}@a`,
    ]);
  });

  it("none still puts BYOK endpoints first, then unstable endpoints last", () => {
    const health = new Map([[`${N}:c`, healthOf({ lastOutageAt: NOW - 1_000 })]]);
    const plan = planOf(catalog, { sort: { by: "price", partition: "none" } }, { health, now: NOW, byok: new Map([["b", "own"]]) }, [M, N]);
    expect(routeOf(plan)).toEqual([`${M}@b`, `${M}@a`, `${N}@d`, `${N}@c`]);
  });
});

describe("preferred_min_throughput and preferred_max_latency (soft)", () => {
  const catalog = single(["a", 1], ["b", 2], ["c", 3]);
  // a: cheap and slow; b: no data; c: fast.
  const health = healthMap({
    a: healthOf({ tps: { p50: 40, p75: 30, p90: 20, p99: 10 }, latency: { p50: 2500, p75: 3000, p90: 4000, p99: 9000 } }),
    c: healthOf({ tps: { p50: 150, p75: 120, p90: 90, p99: 60 }, latency: { p50: 300, p75: 400, p90: 600, p99: 1200 } }),
  });

  it.each(named([
    { name: "a number is the p50 throughput: the slow endpoint goes to the back, not out", prefs: { preferred_min_throughput: 100 }, expected: ["b", "c", "a"], missed: ["below preferred throughput (p50 40 < 100 tok/s)"] },
    { name: "an object checks each given percentile", prefs: { preferred_min_throughput: { p90: 50 } }, expected: ["b", "c", "a"], missed: ["below preferred throughput (p90 20 < 50 tok/s)"] },
    { name: "thresholds every endpoint meets change nothing", prefs: { preferred_min_throughput: { p50: 10, p99: 5 } }, expected: ["a", "b", "c"], missed: [] },
    { name: "latency is in seconds: p50 2.5 s misses 1 s", prefs: { preferred_max_latency: 1 }, expected: ["b", "c", "a"], missed: ["above preferred latency (p50 2.5 s > 1 s)"] },
    { name: "latency percentiles", prefs: { preferred_max_latency: { p99: 5 } }, expected: ["b", "c", "a"], missed: ["above preferred latency (p99 9 s > 5 s)"] },
    {
      name: "both at once name every miss",
      prefs: { preferred_min_throughput: 100, preferred_max_latency: { p75: 2 } },
      expected: ["b", "c", "a"],
      missed: ["below preferred throughput (p50 40 < 100 tok/s)", "above preferred latency (p75 3 s > 2 s)"],
    },
  ]))("%s", (_name, { prefs, expected, missed }) => {
    const plan = planOf(catalog, { ...prefs, sort: "price" }, { health, now: NOW });
    expect(providersOf(plan)).toEqual(expected);
    const a = plan.candidates.find((c) => c.endpoint.providerSlug === "a")!;
    expect(a.reasons.filter((r) => r.startsWith("below") || r.startsWith("above"))).toEqual(missed);
    expect(plan.excluded).toEqual([]);
  });

  it("keeps misses ahead of unstable endpoints", () => {
    const withOutage = new Map([...health, [`${M}:b`, healthOf({ lastOutageAt: NOW - 5_000 })]]);
    expect(providersOf(planOf(catalog, { preferred_min_throughput: 100, sort: "price" }, { health: withOutage, now: NOW }))).toEqual(["c", "a", "b"]);
  });

  it("takes the thresholds from the workspace's defaults", () => {
    expect(providersOf(planOf(catalog, { sort: "price" }, { health, now: NOW, workspacePreferences: { preferred_max_latency: 1 } }))).toEqual(["b", "c", "a"]);
  });
});

describe("sticky routing in the plan", () => {
  const catalog = single(["a", 1], ["b", 2], ["c", 3]);
  const base = { now: NOW, health: new Map<string, EndpointHealth>() };

  it("moves the conversation's endpoint to the front of its stable group", () => {
    const plan = planOf(catalog, undefined, { ...base, random: mulberry32(1), stickyEndpointId: `${M}:c` });
    expect(providersOf(plan)[0]).toBe("c");
    expect(plan.candidates[0]!.reasons).toEqual(["sticky: this conversation's last endpoint (prompt cache)"]);
  });

  it("yields to an explicit sort or provider.order (the client's choice holds on every turn)", () => {
    expect(providersOf(planOf(catalog, { sort: "price" }, { ...base, stickyEndpointId: `${M}:b` }))).toEqual(["a", "b", "c"]);
    expect(providersOf(planOf(catalog, { order: ["c"] }, { ...base, random: mulberry32(1), stickyEndpointId: `${M}:b` }))).toEqual(["c", "a", "b"]);
  });

  it.each(named([
    { name: "unstable", options: { health: healthMap({ c: healthOf({ breaker: "open" }) }) }, prefs: undefined },
    { name: "excluded by a filter", options: {}, prefs: { ignore: ["c"] } },
    { name: "below a preferred threshold", options: { health: healthMap({ c: healthOf({ tps: 1 }) }) }, prefs: { preferred_min_throughput: 10 } },
  ]))("does not move it ahead when it is %s", (_name, { options, prefs }) => {
    for (let seed = 1; seed <= 20; seed++) {
      const withSticky = planOf(catalog, prefs, { ...base, ...options, random: mulberry32(seed), stickyEndpointId: `${M}:c` });
      const without = planOf(catalog, prefs, { ...base, ...options, random: mulberry32(seed) });
      expect(providersOf(withSticky)).toEqual(providersOf(without));
      expect(withSticky.candidates.flatMap((c) => c.reasons).some((r) => r.startsWith("sticky"))).toBe(false);
    }
  });

  it("leads only its own group: BYOK endpoints stay ahead of it", () => {
    for (let seed = 1; seed <= 20; seed++) {
      const plan = planOf(catalog, undefined, { ...base, byok: new Map([["b", "own"]]), random: mulberry32(seed), stickyEndpointId: `${M}:c` });
      expect(providersOf(plan)).toEqual(["b", "c", "a"]);
    }
  });

  it("ignores an endpoint id of another model", () => {
    const withOther = planOf(catalog, undefined, { ...base, random: mulberry32(7), stickyEndpointId: `${N}:c` });
    expect(providersOf(withOther)).toEqual(providersOf(planOf(catalog, undefined, { ...base, random: mulberry32(7) })));
  });
});
