/**
 * The Health Durable Object through its real binding: report → snapshot over RPC, breakers
 * persisted across an eviction (statistics are not), one probe among concurrent claims, and input
 * validation. Each test uses its own object (storage is isolated per file, not per test).
 */
import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { COOL_DOWN_MS } from "../../../src/routing/health-breaker";
import type { Health } from "../../../src/routing/health";
import type { AttemptOutcome, EndpointHealth } from "../../../src/routing/health-types";

type HealthStub = DurableObjectStub<Health>;

const E = "anthropic/claude@anthropic";

function freshHealth(): HealthStub {
  return env.HEALTH.getByName(`test-${crypto.randomUUID()}`);
}

const ok = (extra: Partial<AttemptOutcome> = {}): AttemptOutcome => ({ endpointId: E, at: Date.now(), ok: true, ...extra });
const outage = (): AttemptOutcome => ({ endpointId: E, at: Date.now(), ok: false, errorType: "server" });

async function healthOf(stub: HealthStub, id = E): Promise<EndpointHealth | undefined> {
  const { endpoints } = await stub.snapshot();
  return endpoints.find((e) => e.endpointId === id)?.health;
}

function breakerRows(stub: HealthStub) {
  return runInDurableObject(stub, (_, state) =>
    state.storage.sql.exec<{ endpoint_id: string; opened_at: number; open_until: number; failed_probes: number }>("SELECT * FROM breakers").toArray(),
  );
}

/** The error an RPC call rejects with (awaiting in a try block keeps the rejection handled). */
async function thrown(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected the call to throw");
}

describe("Health object", () => {
  it("returns what was reported as a plain array of { endpointId, health } entries", async () => {
    const stub = freshHealth();
    const before = Date.now();
    await stub.report([
      ok({ latencyMs: 120, tokensPerSecond: 50 }),
      ok({ latencyMs: 120, tokensPerSecond: 50 }),
      ok({ endpointId: "other", latencyMs: 900 }),
      { endpointId: E, at: Date.now(), ok: false, errorType: "timeout" },
      { endpointId: E, at: Date.now(), ok: false, errorType: "rate_limit_exceeded", retryAfterSeconds: 20 },
    ]);
    const snapshot = await stub.snapshot();
    expect(snapshot.at).toBeGreaterThanOrEqual(before);
    expect(Array.isArray(snapshot.endpoints)).toBe(true);
    expect(snapshot.endpoints.map((e) => e.endpointId).sort()).toEqual([E, "other"]);
    const health = snapshot.endpoints.find((e) => e.endpointId === E)?.health;
    expect(health).toMatchObject({
      breaker: "closed",
      openUntil: null,
      uptime: (100 * 2) / 3,
      latencyMs: { p50: 120, p75: 120, p90: 120, p99: 120 },
      throughputTps: { p50: 50, p75: 50, p90: 50, p99: 50 },
    });
    expect(health?.lastOutageAt).toBeGreaterThanOrEqual(before);
    expect(health?.retryAfterUntil).toBeGreaterThanOrEqual(before + 20_000);
  });

  it("answers an empty snapshot before anything is reported", async () => {
    expect((await freshHealth().snapshot()).endpoints).toEqual([]);
  });

  it("shows a failure in the very next snapshot, even within the reuse second", async () => {
    const stub = freshHealth();
    await stub.report([ok()]);
    expect((await healthOf(stub))?.lastOutageAt).toBeNull();
    await stub.report([outage()]);
    expect((await healthOf(stub))?.lastOutageAt).not.toBeNull();
  });

  it("writes storage only when a breaker opens, and keeps it across an eviction; statistics are not kept", async () => {
    const stub = freshHealth();
    await stub.report(Array.from({ length: 50 }, () => ok({ latencyMs: 80 })));
    expect(await breakerRows(stub)).toEqual([]);
    await stub.report(Array.from({ length: 50 }, () => outage()));
    const open = await healthOf(stub);
    expect(open).toMatchObject({ breaker: "open", uptime: 50 });
    const rows = await breakerRows(stub);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ endpoint_id: E, open_until: open?.openUntil, failed_probes: 0 });
    expect((open?.openUntil ?? 0) - (rows[0]?.opened_at ?? 0)).toBe(COOL_DOWN_MS);

    await evictDurableObject(stub);
    const rebuilt = await healthOf(stub);
    expect(rebuilt).toMatchObject({ breaker: "open", openUntil: open?.openUntil, lastOutageAt: rows[0]?.opened_at, uptime: null, latencyMs: null });
    expect(await stub.claimProbe(E)).toBe(false);
    expect(await runInDurableObject(stub, (_, state) => state.storage.sql.exec("SELECT value FROM health_meta WHERE key = 'schema_version'").one().value)).toBe(1);
  });

  it("grants one probe among 20 concurrent claims once the cool-down is over, and closes on its success", async () => {
    const stub = freshHealth();
    await stub.report([outage(), outage(), outage()]);
    // Age the persisted breaker past its cool-down and rebuild the object from storage.
    const past = Date.now() - 1_000;
    await runInDurableObject(stub, (_, state) => {
      state.storage.sql.exec("UPDATE breakers SET open_until = ?", past);
    });
    await evictDurableObject(stub);
    expect((await healthOf(stub))?.breaker).toBe("half_open");

    const grants = await Promise.all(Array.from({ length: 20 }, () => stub.claimProbe(E)));
    expect(grants.filter(Boolean)).toHaveLength(1);

    await stub.report([ok()]);
    expect(await healthOf(stub)).toMatchObject({ breaker: "closed", openUntil: null });
    expect(await breakerRows(stub)).toEqual([]);
    expect(await stub.claimProbe(E)).toBe(true);
  });

  it("re-opens on a failed probe with a doubled cool-down, persisted", async () => {
    const stub = freshHealth();
    await stub.report([outage(), outage(), outage()]);
    await runInDurableObject(stub, (_, state) => {
      state.storage.sql.exec("UPDATE breakers SET open_until = ?", Date.now() - 1);
    });
    await evictDurableObject(stub);
    expect(await stub.claimProbe(E)).toBe(true);
    await stub.report([outage()]);
    const [row] = await breakerRows(stub);
    expect(row?.failed_probes).toBe(1);
    expect((row?.open_until ?? 0) - (row?.opened_at ?? 0)).toBe(2 * COOL_DOWN_MS);
    expect((await healthOf(stub))?.breaker).toBe("open");
  });

  it("lets anyone through a closed breaker, including an endpoint it has never heard of", async () => {
    expect(await freshHealth().claimProbe("never-seen")).toBe(true);
  });

  it("refuses malformed input whole, counting nothing", async () => {
    const stub = freshHealth();
    expect(await thrown(stub.report([ok(), { ...ok(), endpointId: "" }]))).toBeInstanceOf(Error);
    expect(await thrown(stub.report([{ ...ok(), latencyMs: -1 }]))).toBeInstanceOf(Error);
    expect(await thrown(stub.report([{ ...ok(), at: 1.5 }]))).toBeInstanceOf(Error);
    expect(await thrown(stub.report([{ ...ok(), ok: false, errorType: "exploded" as never }]))).toBeInstanceOf(Error);
    expect(await thrown(stub.report(Array.from({ length: 5_001 }, () => ok())))).toBeInstanceOf(Error);
    expect(await thrown(stub.claimProbe(""))).toBeInstanceOf(Error);
    expect((await stub.snapshot()).endpoints).toEqual([]);
  });
});
