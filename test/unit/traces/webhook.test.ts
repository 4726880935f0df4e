/**
 * Webhook deliveries: the signature a receiver checks is verified here with node:crypto, an
 * implementation independent of the Web Crypto code that produced it, the way README tells
 * receivers to verify it.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { env } from "cloudflare:workers";
import { HttpResponse } from "msw";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { deliverToDestination } from "../../../src/traces/delivery";
import type { Destination } from "../../../src/traces/destination-store";
import type { Trace } from "../../../src/traces/schema";
import { mswServer } from "../../helpers";
import { exampleTrace, sink, type SinkHit } from "./fixtures";

beforeAll(() => mswServer.listen({ onUnhandledRequest: "error" }));
afterEach(() => mswServer.resetHandlers());
afterAll(() => mswServer.close());

const SECRET = "whsec_independent_check_abcdef0123";

function hook(url: string, headers: Record<string, string> = {}): Destination {
  return {
    workspaceId: "ws-hook",
    id: "hook",
    name: null,
    enabled: true,
    filter: { samplingRate: 1, apiKeyIds: null },
    privacyMode: false,
    target: { type: "webhook", url, headers, signingSecret: SECRET },
    problem: null,
  };
}

/** A receiver's check, as in README: recompute HMAC-SHA256 over `${t}.${body}` and compare in constant time. */
function verify(hit: SinkHit, secret: string, toleranceSeconds = 300): boolean {
  const header = hit.headers.get("x-switchyard-signature") ?? "";
  const fields = Object.fromEntries(header.split(",").map((kv) => kv.split("=") as [string, string]));
  const t = Number(fields.t);
  if (!Number.isInteger(t) || Math.abs(Date.now() / 1000 - t) > toleranceSeconds || !fields.v1) return false;
  const expected = createHmac("sha256", secret).update(`${t}.${hit.body}`).digest();
  const given = Buffer.from(fields.v1, "hex");
  return given.length === expected.length && timingSafeEqual(given, expected);
}

describe("webhook destination", () => {
  it("signs each POST so an independent HMAC-SHA256 implementation verifies it", async () => {
    const hits = sink("https://hooks.sink.test/signed");
    const traces = [exampleTrace(), exampleTrace()];
    const outcomes = await deliverToDestination(env, hook("https://hooks.sink.test/signed", { "x-team": "observability" }), traces);
    expect(outcomes.map((o) => o.ok)).toEqual([true, true]);
    expect(hits).toHaveLength(2);
    for (const hit of hits) {
      expect(hit.headers.get("x-switchyard-signature")).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
      expect(verify(hit, SECRET)).toBe(true);
      expect(verify(hit, "another-secret-of-the-same-length!")).toBe(false);
      expect(verify({ ...hit, body: hit.body.replace("Paris", "Lyon") }, SECRET)).toBe(false);
      expect(hit.headers.get("content-type")).toBe("application/json");
      expect(hit.headers.get("x-team")).toBe("observability");
      const body = JSON.parse(hit.body) as Trace;
      expect(hit.headers.get("x-switchyard-delivery")).toBe(body.generation_id);
      expect(body.v).toBe(1);
    }
    expect(hits.map((h) => (JSON.parse(h.body) as Trace).generation_id).sort()).toEqual(traces.map((t) => t.generation_id).sort());
  });

  it("signs with each destination's own secret when destinations take turns (imported keys are kept per secret)", async () => {
    const hits = sink("https://hooks.sink.test/turns");
    const other = "whsec_second_destination_9876543210";
    const second: Destination = { ...hook("https://hooks.sink.test/turns"), id: "hook-2", target: { type: "webhook", url: "https://hooks.sink.test/turns", headers: {}, signingSecret: other } };
    for (const destination of [hook("https://hooks.sink.test/turns"), second, hook("https://hooks.sink.test/turns"), second]) {
      const outcomes = await deliverToDestination(env, destination, [exampleTrace()]);
      expect(outcomes.map((o) => o.ok)).toEqual([true]);
    }
    expect(hits.map((hit) => [verify(hit, SECRET), verify(hit, other)])).toEqual([
      [true, false],
      [false, true],
      [true, false],
      [false, true],
    ]);
  });

  it("reports 5xx and 429 as retryable (with Retry-After), other 4xx as permanent, and unreachable hosts as retryable", async () => {
    sink("https://hooks.sink.test/500", () => new HttpResponse("boom", { status: 500 }));
    sink("https://hooks.sink.test/429", () => new HttpResponse("later", { status: 429, headers: { "retry-after": "30" } }));
    sink("https://hooks.sink.test/404", () => new HttpResponse("no such hook", { status: 404 }));
    sink("https://hooks.sink.test/reset", () => HttpResponse.error());
    const [e500] = await deliverToDestination(env, hook("https://hooks.sink.test/500"), [exampleTrace()]);
    const [e429] = await deliverToDestination(env, hook("https://hooks.sink.test/429"), [exampleTrace()]);
    const [e404] = await deliverToDestination(env, hook("https://hooks.sink.test/404"), [exampleTrace()]);
    const [reset] = await deliverToDestination(env, hook("https://hooks.sink.test/reset"), [exampleTrace()]);
    expect(e500).toMatchObject({ ok: false, retryable: true, status: 500 });
    expect(e429).toMatchObject({ ok: false, retryable: true, status: 429, retryAfterSeconds: 30 });
    expect(e404).toMatchObject({ ok: false, retryable: false, status: 404 });
    expect(reset).toMatchObject({ ok: false, retryable: true, status: null });
  });

  it("fails permanently, without a request, when the destination's secret cannot be used", async () => {
    const broken: Destination = { ...hook("https://hooks.sink.test/never"), target: null, problem: "its secret does not decrypt" };
    const [outcome] = await deliverToDestination(env, broken, [exampleTrace()]);
    expect(outcome).toMatchObject({ ok: false, retryable: false });
    expect(outcome?.ok === false && outcome.error).toMatch(/does not decrypt/);
  });
});
