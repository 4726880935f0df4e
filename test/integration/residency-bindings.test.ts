/**
 * Fail closed: an EU workspace's request is refused with 503 — never served with a non-EU
 * resource — when its ledger, D1 database, queue or health object cannot be kept in the EU: a
 * missing binding, a namespace the platform cannot restrict, or local workerd without the
 * explicit fallback. With a platform whose jurisdictions work (a recording double), the fallback
 * switch is on and still unused. A global workspace is unaffected throughout.
 */
import { env } from "cloudflare:workers";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { admin, chatRequest, EU_ORIGIN, expectError, mswServer, ORIGIN, provision, provisionEu, recordUpstream, resetHealth, ADMIN_TOKEN, fetchWith } from "../helpers";
import { recordingEnv, throwingNamespace, type BindingUse } from "../unit/residency/doubles";

const HI = [{ role: "user", content: "hi" }];
let euKey: string;
let globalKey: string;

beforeAll(async () => {
  mswServer.listen({ onUnhandledRequest: "error" });
  euKey = await provisionEu("ws-eu-bindings");
  globalKey = await provision("ws-global-bindings");
});
afterEach(async () => {
  mswServer.resetHandlers();
  await resetHealth();
});
afterAll(() => mswServer.close());

function without(binding: keyof Env): Env {
  const copy: Partial<Env> = { ...env };
  delete copy[binding];
  return copy as Env;
}

const PRODUCTION_FAILURE = new Error("jurisdiction eu is not available for this account");

const BROKEN: Array<{ name: string; env: () => Env; problem: RegExp }> = [
  { name: "DB_EU is not bound (D1)", env: () => without("DB_EU"), problem: /the DB_EU binding is missing/ },
  { name: "TRACES_EU is not bound (queue)", env: () => without("TRACES_EU"), problem: /the TRACES_EU binding is missing/ },
  { name: "LEDGER is not bound (ledger)", env: () => without("LEDGER"), problem: /the LEDGER binding is missing/ },
  {
    name: "the LEDGER namespace cannot be restricted in production (ledger)",
    env: () => ({ ...env, LEDGER: throwingNamespace(env.LEDGER, PRODUCTION_FAILURE) }),
    problem: /LEDGER namespace cannot be restricted to jurisdiction "eu" \(jurisdiction eu is not available/,
  },
  {
    name: "the LEDGER_SHARD namespace cannot be restricted in production (ledger shards)",
    env: () => ({ ...env, LEDGER_SHARD: throwingNamespace(env.LEDGER_SHARD, PRODUCTION_FAILURE) }),
    problem: /LEDGER_SHARD namespace cannot be restricted/,
  },
  {
    name: "the HEALTH namespace cannot be restricted in production (health)",
    env: () => ({ ...env, HEALTH: throwingNamespace(env.HEALTH, PRODUCTION_FAILURE) }),
    problem: /HEALTH namespace cannot be restricted/,
  },
  {
    name: "local workerd without RESIDENCY_LOCAL_FALLBACK (its default: off)",
    env: () => ({ ...env, RESIDENCY_LOCAL_FALLBACK: "" }),
    problem: /LEDGER namespace cannot be restricted to jurisdiction "eu" \(Jurisdiction restrictions are not implemented in workerd/,
  },
];

describe("an EU workspace is refused with 503 when its resources cannot stay in the EU", () => {
  for (const broken of BROKEN) {
    it(broken.name, async () => {
      const up = recordUpstream();
      mswServer.use(up.handler);
      const res = await fetchWith(broken.env(), chatRequest(EU_ORIGIN, euKey, { model: "openai/gpt-4o-mini", messages: HI }));
      expect(res.headers.get("x-switchyard-region")).toBe("eu");
      const error = await expectError(res, 503);
      expect(error.message).toMatch(/must stay in region eu/);
      expect(error.message).toMatch(broken.problem);
      expect(error.metadata).toEqual({ reason: "residency_unavailable", region: "eu" });
      expect(up.hits).toEqual([]);

      // The account routes need the same resources and refuse the same way.
      const credits = await fetchWith(broken.env(), new Request(`${EU_ORIGIN}/api/v1/credits`, { headers: { authorization: `Bearer ${euKey}` } }));
      await expectError(credits, 503);

      // A global workspace does not use them and is served.
      if (!/LEDGER is not bound/.test(broken.name)) {
        const global = await fetchWith(broken.env(), chatRequest(ORIGIN, globalKey, { model: "openai/gpt-4o-mini", messages: HI, provider: { only: ["openai"] } }));
        expect(global.status).toBe(200);
      }
    });
  }
});

describe("admin operations on an EU workspace fail closed too", () => {
  const failing = () => ({ ...env, LEDGER: throwingNamespace(env.LEDGER, PRODUCTION_FAILURE) });
  const adminRequest = (path: string, method: string, body?: unknown) =>
    new Request(`${ORIGIN}/admin/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });

  it("a top-up and a balance read are refused rather than written to a non-EU ledger", async () => {
    await expectError(await fetchWith(failing(), adminRequest("/workspaces/ws-eu-bindings/credits", "POST", { amount: "10" })), 503);
    await expectError(await fetchWith(failing(), adminRequest("/workspaces/ws-eu-bindings/credits", "GET")), 503);
  });

  it("a key is not created when its EU ledger cannot be told", async () => {
    const before = ((await (await admin("/workspaces/ws-eu-bindings/keys", "GET")).json()) as { data: unknown[] }).data.length;
    await expectError(await fetchWith(failing(), adminRequest("/workspaces/ws-eu-bindings/keys", "POST", { name: "late" })), 503);
    const after = ((await (await admin("/workspaces/ws-eu-bindings/keys", "GET")).json()) as { data: unknown[] }).data.length;
    expect(after).toBe(before);
  });

  it("the residency report is refused without DB_EU", async () => {
    await expectError(await fetchWith(without("DB_EU"), adminRequest("/workspaces/ws-eu-bindings/residency", "GET")), 503);
  });
});

describe("on a platform with jurisdictions (namespace doubles)", () => {
  it("uses jurisdiction eu for every Durable Object of an EU workspace; the local fallback, though on, is not used", async () => {
    expect(env.RESIDENCY_LOCAL_FALLBACK).toBe("1");
    const up = recordUpstream();
    mswServer.use(up.handler);
    const uses: BindingUse[] = [];
    const res = await fetchWith(recordingEnv(env, uses), chatRequest(EU_ORIGIN, euKey, { model: "openai/gpt-4o-mini", messages: HI }));
    expect(res.status).toBe(200);
    const objects = uses.filter((u) => u.op === "getByName");
    expect(objects.map((u) => [u.binding, u.jurisdiction])).toEqual(expect.arrayContaining([["LEDGER", "eu"]]));
    expect(objects.every((u) => u.jurisdiction === "eu")).toBe(true);
    expect(uses.some((u) => u.binding === "DB_EU" && /insert into "?generations"?[\s(]/i.test(u.detail ?? ""))).toBe(true);
    expect(uses.some((u) => u.binding === "DB" && /generations/i.test(u.detail ?? ""))).toBe(false);
  });
});
