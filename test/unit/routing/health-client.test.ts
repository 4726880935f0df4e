/**
 * The isolate side of endpoint health: the cached snapshot (fresh, stale-while-refreshing, cold,
 * failed refresh), the reporter (failures at once, successes batched) and the local overlay, with
 * RPCs counted around the real Health binding or answered by a scripted fake.
 */
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { COOL_DOWN_MS } from "../../../src/routing/health-breaker";
import {
  HEALTH_TTL_MS,
  MAX_SUCCESS_BATCH,
  REFRESH_ABANDON_MS,
  claimProbe,
  forgetHealth,
  healthSnapshot,
  reportOutcome,
  type HealthEnv,
  type HealthRpc,
} from "../../../src/routing/health-client";
import { EMPTY_HEALTH, type AttemptOutcome, type EndpointHealth, type SerializedHealthSnapshot } from "../../../src/routing/health-types";

const E = "mistral/large@mistral";
/** The Worker's own Env is what the client takes. */
const realEnv: HealthEnv = env;

beforeEach(() => forgetHealth());

function region(): string {
  return `test-${crypto.randomUUID()}`;
}

/** Collects `waitUntil` promises; `settle` waits for them (and for those they add). */
function background() {
  const pending: Promise<unknown>[] = [];
  return {
    waitUntil: (p: Promise<unknown>) => void pending.push(p),
    get count() {
      return pending.length;
    },
    async settle() {
      while (pending.length > 0) await Promise.all(pending.splice(0));
    },
  };
}

/** The real binding, with every RPC counted. */
function counted(inner: HealthEnv = realEnv) {
  const calls = { snapshot: 0, report: 0, claimProbe: 0, batches: [] as AttemptOutcome[][] };
  const healthEnv: HealthEnv = {
    HEALTH: {
      getByName(name) {
        const stub = inner.HEALTH.getByName(name);
        return {
          snapshot: () => (calls.snapshot++, stub.snapshot()),
          report: (outcomes) => (calls.report++, calls.batches.push(outcomes), stub.report(outcomes)),
          claimProbe: (id) => (calls.claimProbe++, stub.claimProbe(id)),
        };
      },
    },
  };
  return { env: healthEnv, calls };
}

/** A fake Health object whose snapshots are answered by hand, in order. */
function scripted() {
  const answers: { resolve: (s: SerializedHealthSnapshot) => void; reject: (e: unknown) => void }[] = [];
  const reports: AttemptOutcome[][] = [];
  const stub: HealthRpc = {
    snapshot: () => new Promise((resolve, reject) => answers.push({ resolve, reject })),
    report: async (outcomes) => void reports.push(outcomes),
    claimProbe: async () => true,
  };
  return { env: { HEALTH: { getByName: () => stub } } satisfies HealthEnv, answers, reports };
}

function health(overrides: Partial<EndpointHealth> = {}): EndpointHealth {
  return { lastOutageAt: null, breaker: "closed", openUntil: null, retryAfterUntil: null, uptime: 99, latencyMs: null, throughputTps: null, ...overrides };
}

function wire(at: number, entries: [string, EndpointHealth][]): SerializedHealthSnapshot {
  return { at, endpoints: entries.map(([endpointId, health]) => ({ endpointId, health })) };
}

/** The Health object's own view, read straight from the binding. */
async function shared(r: string): Promise<Map<string, EndpointHealth>> {
  const { endpoints } = await env.HEALTH.getByName(r).snapshot();
  return new Map(endpoints.map((e) => [e.endpointId, e.health]));
}

const success = (at: number): AttemptOutcome => ({ endpointId: E, at, ok: true, latencyMs: 100 });
const outage = (at: number): AttemptOutcome => ({ endpointId: E, at, ok: false, errorType: "timeout" });

describe("healthSnapshot", () => {
  it("gives a cold isolate EMPTY_HEALTH at once, then the refreshed data", async () => {
    const r = region();
    await env.HEALTH.getByName(r).report([{ endpointId: E, at: Date.now(), ok: true, latencyMs: 250 }]);
    const { env: counting, calls } = counted();
    const bg = background();
    const now = Date.now();
    expect(healthSnapshot(counting, r, bg.waitUntil, now)).toBe(EMPTY_HEALTH);
    expect(calls.snapshot).toBe(1);
    await bg.settle();
    expect(healthSnapshot(counting, r, bg.waitUntil, now + 1)?.get(E)).toMatchObject({ uptime: 100, latencyMs: { p50: 250 } });
    expect(calls.snapshot).toBe(1);
  });

  it("serves a fresh snapshot without an RPC, and refreshes once it is 2 s old", async () => {
    const r = region();
    const { env: counting, calls } = counted();
    const bg = background();
    const t = Date.now();
    healthSnapshot(counting, r, bg.waitUntil, t);
    await bg.settle();
    const first = healthSnapshot(counting, r, bg.waitUntil, t);
    for (let i = 1; i < HEALTH_TTL_MS; i += 199) expect(healthSnapshot(counting, r, bg.waitUntil, t + i)).toBe(first);
    expect(calls.snapshot).toBe(1);
    healthSnapshot(counting, r, bg.waitUntil, t + HEALTH_TTL_MS);
    expect(calls.snapshot).toBe(2);
    await bg.settle();
  });

  it("serves the stale snapshot while one refresh is in flight, then the new one", async () => {
    const fake = scripted();
    const bg = background();
    const t = 1_000_000;
    healthSnapshot(fake.env, "global", bg.waitUntil, t);
    fake.answers[0]?.resolve(wire(t, [[E, health({ uptime: 90 })]]));
    await bg.settle();
    expect(healthSnapshot(fake.env, "global", bg.waitUntil, t + 1)?.get(E)?.uptime).toBe(90);

    // Stale: returned at once, and a single refresh starts however many requests ask.
    for (const dt of [HEALTH_TTL_MS, HEALTH_TTL_MS + 500, 3 * HEALTH_TTL_MS, REFRESH_ABANDON_MS]) {
      expect(healthSnapshot(fake.env, "global", bg.waitUntil, t + dt)?.get(E)?.uptime).toBe(90);
    }
    expect(fake.answers).toHaveLength(2);
    fake.answers[1]?.resolve(wire(t, [[E, health({ uptime: 40 })]]));
    await bg.settle();
    expect(healthSnapshot(fake.env, "global", bg.waitUntil, t + REFRESH_ABANDON_MS + 1)?.get(E)?.uptime).toBe(40);
  });

  it("gives up on a refresh that never answers, and ignores it if it lands after a newer one", async () => {
    const fake = scripted();
    const bg = background();
    const t = 1_000_000;
    healthSnapshot(fake.env, "global", bg.waitUntil, t);
    expect(healthSnapshot(fake.env, "global", bg.waitUntil, t + REFRESH_ABANDON_MS - 1)).toBe(EMPTY_HEALTH);
    expect(fake.answers).toHaveLength(1);
    healthSnapshot(fake.env, "global", bg.waitUntil, t + REFRESH_ABANDON_MS);
    expect(fake.answers).toHaveLength(2);
    fake.answers[1]?.resolve(wire(t, [[E, health({ uptime: 70 })]]));
    await new Promise((resolve) => setTimeout(resolve, 0));
    fake.answers[0]?.resolve(wire(t, [[E, health({ uptime: 10 })]]));
    await bg.settle();
    expect(healthSnapshot(fake.env, "global", bg.waitUntil, t + REFRESH_ABANDON_MS + 1)?.get(E)?.uptime).toBe(70);
  });

  it("keeps the old snapshot when a refresh fails, never throws, and waits a TTL before retrying", async () => {
    const fake = scripted();
    const bg = background();
    const t = 1_000_000;
    healthSnapshot(fake.env, "global", bg.waitUntil, t);
    fake.answers[0]?.resolve(wire(t, [[E, health({ uptime: 80 })]]));
    await bg.settle();
    healthSnapshot(fake.env, "global", bg.waitUntil, t + HEALTH_TTL_MS);
    fake.answers[1]?.reject(new Error("Health object overloaded"));
    await bg.settle();
    expect(healthSnapshot(fake.env, "global", bg.waitUntil, t + HEALTH_TTL_MS + 1)?.get(E)?.uptime).toBe(80);
    expect(fake.answers).toHaveLength(2);
    healthSnapshot(fake.env, "global", bg.waitUntil, t + 2 * HEALTH_TTL_MS);
    expect(fake.answers).toHaveLength(3);
  });

  it("survives a binding that throws before any RPC", async () => {
    const broken: HealthEnv = {
      HEALTH: {
        getByName: () => {
          throw new Error("no such binding");
        },
      },
    };
    const bg = background();
    expect(healthSnapshot(broken, "global", bg.waitUntil, 5)).toBe(EMPTY_HEALTH);
    expect(() => reportOutcome(broken, "global", outage(5), bg.waitUntil, 5)).not.toThrow();
    await bg.settle();
    expect(await claimProbe(broken, "global", E)).toBe(false);
  });

  it("turns a snapshot's open breaker half-open once its cool-down ends, without an RPC", async () => {
    const fake = scripted();
    const bg = background();
    const t = 1_000_000;
    healthSnapshot(fake.env, "global", bg.waitUntil, t);
    fake.answers[0]?.resolve(wire(t, [[E, health({ breaker: "open", openUntil: t + 1_000, lastOutageAt: t })]]));
    await bg.settle();
    expect(healthSnapshot(fake.env, "global", bg.waitUntil, t + 999)?.get(E)).toMatchObject({ breaker: "open" });
    expect(healthSnapshot(fake.env, "global", bg.waitUntil, t + 1_000)?.get(E)).toMatchObject({ breaker: "half_open", openUntil: t + 1_000 });
    expect(fake.answers).toHaveLength(1);
  });
});

describe("reportOutcome and the local overlay", () => {
  it("sends a failure at once and shows it to the next request before any refresh", async () => {
    const r = region();
    const { env: counting, calls } = counted();
    const bg = background();
    const t = Date.now();
    healthSnapshot(counting, r, bg.waitUntil, t);
    await bg.settle();
    reportOutcome(counting, r, outage(t), bg.waitUntil, t);
    expect(calls.report).toBe(1);
    expect(healthSnapshot(counting, r, bg.waitUntil, t + 1)?.get(E)).toMatchObject({ lastOutageAt: t, breaker: "closed" });
    // Rate limited: the Retry-After is visible at once too.
    reportOutcome(counting, r, { endpointId: "other", at: t, ok: false, errorType: "rate_limit_exceeded", retryAfterSeconds: 30 }, bg.waitUntil, t);
    expect(healthSnapshot(counting, r, bg.waitUntil, t + 2)?.get("other")).toMatchObject({ retryAfterUntil: t + 30_000, uptime: null });
    expect(calls.snapshot).toBe(1);
    await bg.settle();
    // The Health object has them as well.
    const view = await shared(r);
    expect(view.get(E)?.lastOutageAt).toBe(t);
    expect(view.get("other")?.retryAfterUntil).toBe(t + 30_000);
  });

  it("opens a local breaker on three local outages, worse than the shared closed one, until its cool-down ends", async () => {
    const fake = scripted();
    const bg = background();
    const t = 1_000_000;
    healthSnapshot(fake.env, "global", bg.waitUntil, t);
    fake.answers[0]?.resolve(wire(t, [[E, health({ uptime: 99.5 })]]));
    await bg.settle();
    for (const dt of [1, 2, 3]) reportOutcome(fake.env, "global", outage(t + dt), bg.waitUntil, t + dt);
    expect(fake.reports).toHaveLength(3);
    const merged = healthSnapshot(fake.env, "global", bg.waitUntil, t + 4)?.get(E);
    // States from the overlay, statistics from the shared snapshot.
    expect(merged).toMatchObject({ breaker: "open", openUntil: t + 3 + COOL_DOWN_MS, lastOutageAt: t + 3, uptime: 99.5 });
    // After the local cool-down the shared breaker decides again (no RPC needed to see that).
    expect(healthSnapshot(fake.env, "global", bg.waitUntil, t + 3 + COOL_DOWN_MS)?.get(E)).toMatchObject({ breaker: "closed", uptime: 99.5 });
  });

  it("batches successes into one RPC sent within a second, and a failure carries the waiting ones", async () => {
    const r = region();
    const { env: counting, calls } = counted();
    const bg = background();
    const t = Date.now();
    for (let i = 0; i < 25; i++) reportOutcome(counting, r, success(t + i), bg.waitUntil, t + i);
    expect(calls.report).toBe(0);
    expect(bg.count).toBe(1);
    await bg.settle();
    expect(calls.report).toBe(1);
    expect(calls.batches[0]).toHaveLength(25);
    expect((await shared(r)).get(E)).toMatchObject({ uptime: 100, latencyMs: { p50: 100 } });

    const u = Date.now();
    for (let i = 0; i < 3; i++) reportOutcome(counting, r, success(u + i), bg.waitUntil, u + i);
    reportOutcome(counting, r, outage(u + 5), bg.waitUntil, u + 5);
    expect(calls.report).toBe(2);
    expect(calls.batches[1]?.map((o) => o.ok)).toEqual([true, true, true, false]);
    await bg.settle();
    // The batch timer found nothing left to send.
    expect(calls.report).toBe(2);
  });

  it("sends early when a batch fills up", async () => {
    const fake = scripted();
    const bg = background();
    for (let i = 0; i < MAX_SUCCESS_BATCH; i++) reportOutcome(fake.env, "global", success(i), bg.waitUntil, i);
    expect(fake.reports).toHaveLength(1);
    expect(fake.reports[0]).toHaveLength(MAX_SUCCESS_BATCH);
    await bg.settle();
    expect(fake.reports).toHaveLength(1);
  });
});

describe("claimProbe", () => {
  it("asks the Health object, and answers false when it cannot be reached", async () => {
    const { env: counting, calls } = counted();
    expect(await claimProbe(counting, region(), E)).toBe(true);
    expect(calls.claimProbe).toBe(1);
    const failing: HealthEnv = {
      HEALTH: { getByName: () => ({ ...scripted().env.HEALTH.getByName(), claimProbe: () => Promise.reject(new Error("reset")) }) },
    };
    expect(await claimProbe(failing, "global", E)).toBe(false);
  });
});
