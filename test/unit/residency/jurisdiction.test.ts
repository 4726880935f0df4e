/**
 * Jurisdiction-aware namespaces. The production path — `jurisdiction("eu")` works — is tested
 * against namespace doubles that record the jurisdiction asked for and give the same name a
 * different id in each jurisdiction; the local fallback only against workerd's own refusal.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { isLocalWorkerdRefusal, jurisdictionOf, localFallbackAllowed, restrictTo, sameJurisdiction } from "../../../src/residency/jurisdiction";
import { NamespaceDouble, throwingNamespace } from "./doubles";

const WORKERD = new Error("Jurisdiction restrictions are not implemented in workerd.");

describe("jurisdictions", () => {
  it("give the same workspace name a different Durable Object id in each jurisdiction", () => {
    const ns = new NamespaceDouble(() => ({}));
    const eu = restrictTo("LEDGER", ns, jurisdictionOf("eu"), false);
    const global = restrictTo("LEDGER", ns, jurisdictionOf("global"), false);
    if (!eu.ok || !global.ok) throw new Error("unresolved");
    expect(eu.value.idFromName("acme")).toBe("eu:acme");
    expect(global.value.idFromName("acme")).toBe("default:acme");
    expect(eu.value.idFromName("acme")).not.toBe(global.value.idFromName("acme"));
  });

  it("are what local workerd lacks: its namespaces throw the error the fallback recognises", () => {
    let thrown: unknown;
    try {
      env.LEDGER.jurisdiction("eu");
    } catch (error) {
      thrown = error;
    }
    expect(isLocalWorkerdRefusal(thrown)).toBe(true);
    expect(isLocalWorkerdRefusal(new Error("jurisdiction eu is not enabled for this account"))).toBe(false);
    expect(isLocalWorkerdRefusal("Jurisdiction restrictions are not implemented in workerd.")).toBe(false);
  });
});

describe("restrictTo", () => {
  it("restricts an EU workspace's namespace to jurisdiction eu when the platform supports it, fallback allowed or not", () => {
    for (const fallback of [false, true]) {
      const ns = new NamespaceDouble((jurisdiction, name) => ({ jurisdiction, name }));
      const resolved = restrictTo("LEDGER", ns, "eu", fallback);
      if (!resolved.ok) throw new Error(resolved.problem);
      expect(resolved.value.getByName("acme")).toEqual({ jurisdiction: "eu", name: "acme" });
      expect(ns.asked).toEqual([{ jurisdiction: "eu", name: "acme" }]);
    }
  });

  it("leaves a global workspace's namespace unrestricted", () => {
    const ns = new NamespaceDouble(() => ({}));
    const resolved = restrictTo("HEALTH", ns, null, false);
    expect(resolved.ok && resolved.value).toBe(ns);
  });

  it("falls back to the plain namespace only on local workerd's refusal and only when allowed", () => {
    const local = throwingNamespace(env.LEDGER, WORKERD);
    const fellBack = restrictTo("LEDGER", local, "eu", true);
    expect(fellBack.ok && fellBack.value).toBe(local);
    const refused = restrictTo("LEDGER", local, "eu", false);
    expect(refused.ok).toBe(false);
    if (!refused.ok) expect(refused.problem).toMatch(/LEDGER namespace cannot be restricted to jurisdiction "eu".*not implemented in workerd/);
    // The real local namespace, with the fallback off (the default): refused.
    expect(restrictTo("LEDGER", env.LEDGER, "eu", false).ok).toBe(false);
  });

  it("never falls back when jurisdiction() fails for any other reason, even with the variable set", () => {
    const failing = throwingNamespace(env.LEDGER, new Error("jurisdiction eu is not available on this account"));
    const resolved = restrictTo("LEDGER", failing, "eu", true);
    expect(resolved.ok).toBe(false);
    if (!resolved.ok) expect(resolved.problem).toMatch(/not available on this account/);
  });

  it("refuses a namespace that is not bound", () => {
    expect(restrictTo("LEDGER_SHARD", undefined, "eu", true)).toEqual({ ok: false, problem: "the LEDGER_SHARD binding is missing" });
    expect(restrictTo("LEDGER_SHARD", undefined, null, true)).toEqual({ ok: false, problem: "the LEDGER_SHARD binding is missing" });
  });

  it("reads the fallback switch only as the exact string 1", () => {
    expect(localFallbackAllowed({ RESIDENCY_LOCAL_FALLBACK: "1" })).toBe(true);
    for (const value of [undefined, "", "0", "true", "yes", 1]) expect(localFallbackAllowed({ RESIDENCY_LOCAL_FALLBACK: value })).toBe(false);
  });
});

describe("sameJurisdiction", () => {
  it("sends an object created in the EU to the EU namespace, and others to the plain one", () => {
    const ns = new NamespaceDouble((jurisdiction, name) => ({ jurisdiction, name }));
    expect(sameJurisdiction(ns, "eu").getByName("acme")).toEqual({ jurisdiction: "eu", name: "acme" });
    expect(sameJurisdiction(ns, undefined).getByName("acme")).toEqual({ jurisdiction: null, name: "acme" });
    expect(() => sameJurisdiction(ns, "mars")).toThrow(/unknown Durable Object jurisdiction/);
  });
});
