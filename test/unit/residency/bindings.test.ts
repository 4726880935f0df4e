/**
 * Which resources a workspace's requests use, by region: the production path (namespaces with
 * working jurisdictions, recorded), and the refusals when an EU resource is missing.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { residencyUnavailable, residentStores, tracePipeline } from "../../../src/residency/bindings";
import { recordingEnv, throwingNamespace, type BindingUse } from "./doubles";

/** The env without one binding, as a deployment that forgot it would run. */
function without(base: Env, binding: keyof Env): Env {
  const copy: Partial<Env> = { ...base };
  delete copy[binding];
  return copy as Env;
}

describe("residentStores", () => {
  it("gives an EU workspace EU-jurisdiction objects, DB_EU and TRACES_EU (fallback allowed, but not needed)", () => {
    const uses: BindingUse[] = [];
    const test = recordingEnv(env, uses);
    const resolved = residentStores(test, "eu");
    if (!resolved.ok) throw new Error(resolved.problem);
    const stores = resolved.value;
    expect(stores.db).toBe(test.DB_EU);
    expect(stores.dbBinding).toBe("DB_EU");
    expect(stores.traces).toBe(test.TRACES_EU);
    expect(stores.traceContent).toBe(test.TRACE_CONTENT_EU);
    stores.ledger.getByName("acme");
    stores.ledgerShard.getByName("acme#shard-0");
    stores.health.getByName("eu");
    expect(uses.filter((u) => u.op === "getByName")).toEqual([
      { binding: "LEDGER", jurisdiction: "eu", op: "getByName", detail: "acme" },
      { binding: "LEDGER_SHARD", jurisdiction: "eu", op: "getByName", detail: "acme#shard-0" },
      { binding: "HEALTH", jurisdiction: "eu", op: "getByName", detail: "eu" },
    ]);
  });

  it("gives a global workspace the bindings as they are", () => {
    const uses: BindingUse[] = [];
    const test = recordingEnv(env, uses);
    const resolved = residentStores(test, "global");
    if (!resolved.ok) throw new Error(resolved.problem);
    expect(resolved.value.db).toBe(test.DB);
    expect(resolved.value.traces).toBe(test.TRACES);
    resolved.value.ledger.getByName("acme");
    expect(uses.filter((u) => u.op === "jurisdiction")).toEqual([]);
    expect(uses.at(-1)).toEqual({ binding: "LEDGER", jurisdiction: null, op: "getByName", detail: "acme" });
  });

  it("refuses, never substitutes, when an EU binding is missing", () => {
    for (const [binding, problem] of [
      ["DB_EU", "the DB_EU binding is missing"],
      ["TRACES_EU", "the TRACES_EU binding is missing"],
      ["LEDGER", "the LEDGER binding is missing"],
      ["LEDGER_SHARD", "the LEDGER_SHARD binding is missing"],
      ["HEALTH", "the HEALTH binding is missing"],
    ] as const) {
      expect(residentStores(without(env, binding), "eu"), binding).toEqual({ ok: false, problem });
    }
    // A global workspace does not need them.
    expect(residentStores(without(without(env, "DB_EU"), "TRACES_EU"), "global").ok).toBe(true);
  });

  it("refuses when the platform cannot restrict a namespace (production failure), whatever the fallback says", () => {
    const failing = { ...env, LEDGER: throwingNamespace(env.LEDGER, new Error("jurisdictions are not enabled")) };
    const resolved = residentStores(failing, "eu");
    expect(resolved.ok).toBe(false);
    if (!resolved.ok) expect(residencyUnavailable("eu", resolved.problem).status).toBe(503);
  });

  it("refuses on local workerd when the fallback is off (its default)", () => {
    const off = { ...env, RESIDENCY_LOCAL_FALLBACK: "" };
    const resolved = residentStores(off, "eu");
    expect(resolved.ok).toBe(false);
    if (!resolved.ok) expect(resolved.problem).toMatch(/not implemented in workerd/);
  });
});

describe("tracePipeline", () => {
  it("keeps EU traces on the EU queues, DB_EU and the EU buckets", () => {
    const resolved = tracePipeline(env, "eu");
    if (!resolved.ok) throw new Error(resolved.problem);
    expect(resolved.value).toEqual({
      traces: env.TRACES_EU,
      deliveries: env.TRACE_DELIVERIES_EU,
      deadLetterDb: env.DB_EU,
      content: env.TRACE_CONTENT_EU,
      archive: env.TRACE_ARCHIVE_EU,
    });
    expect(tracePipeline(without(env, "TRACE_DELIVERIES_EU"), "eu")).toEqual({ ok: false, problem: "the TRACE_DELIVERIES_EU binding is missing" });
    expect(tracePipeline(without(env, "DB_EU"), "eu")).toEqual({ ok: false, problem: "the DB_EU binding is missing" });
  });
});
