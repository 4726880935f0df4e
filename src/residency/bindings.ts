/**
 * @module residency/bindings
 * The resources a workspace's requests may use, chosen by its region policy. A `global`
 * workspace uses the bindings as they are; an `eu` workspace uses:
 *
 * | what | binding |
 * | --- | --- |
 * | Ledger, LedgerShards, Health | `LEDGER`, `LEDGER_SHARD`, `HEALTH` restricted to jurisdiction `eu` |
 * | generation records | `DB_EU` (a D1 database created with `--jurisdiction eu`) |
 * | traces | `TRACES_EU` → `TRACE_DELIVERIES_EU` → the `switchyard-trace-dlq-eu` queue, dead letters in `DB_EU`, content in `TRACE_CONTENT_EU`, archives in `TRACE_ARCHIVE_EU` |
 *
 * Control-plane configuration (workspaces, keys, BYOK keys, catalog, trace destinations and their
 * delivery counters) stays in `DB` for every workspace: it is the operator's, and authentication
 * needs it before it knows the workspace.
 *
 * Nothing here ever substitutes a non-EU resource for an EU one: a missing EU binding, or a
 * namespace that cannot be restricted, resolves to a problem, and the request is refused with 503
 * (`residencyUnavailable`). The one exception is the explicit local-development fallback of
 * residency/jurisdiction.
 */
import { GatewayError } from "../errors";
import { jurisdictionOf, localFallbackAllowed, restrictTo, type Resolved } from "./jurisdiction";
import type { WorkspaceRegion } from "./regions";

/** Where one workspace's state lives. */
export interface ResidentStores {
  region: WorkspaceRegion;
  ledger: Env["LEDGER"];
  ledgerShard: Env["LEDGER_SHARD"];
  health: Env["HEALTH"];
  /** The D1 database holding generation records (the audit); `dbBinding` names it. */
  db: D1Database;
  dbBinding: "DB" | "DB_EU";
  /** The queue traces are sent to. */
  traces: Queue;
  /** Where trace content too large for a message goes; unbound: traces go without it. */
  traceContent: R2Bucket | undefined;
}

/** The environment as it may really be: any binding can be missing from a misconfigured deployment. */
type Bindings = { [K in keyof Env]?: Env[K] | undefined };

function bound<T>(binding: string, value: T | undefined): Resolved<T> {
  return value === undefined || value === null ? { ok: false, problem: `the ${binding} binding is missing` } : { ok: true, value };
}

/** The Ledger namespace for a workspace in `region`. */
export function residentLedger(env: Env, region: WorkspaceRegion): Resolved<Env["LEDGER"]> {
  const bindings: Bindings = env;
  return restrictTo("LEDGER", bindings.LEDGER, jurisdictionOf(region), localFallbackAllowed(env));
}

/** The Health namespace for a region's Health object. */
export function residentHealth(env: Env, region: WorkspaceRegion): Resolved<Env["HEALTH"]> {
  const bindings: Bindings = env;
  return restrictTo("HEALTH", bindings.HEALTH, jurisdictionOf(region), localFallbackAllowed(env));
}

/** The D1 database of a region's generation records. */
export function residentDatabase(env: Env, region: WorkspaceRegion): Resolved<{ db: D1Database; binding: "DB" | "DB_EU" }> {
  const bindings: Bindings = env;
  const binding = region === "eu" ? "DB_EU" : "DB";
  const db = bound(binding, bindings[binding]);
  return db.ok ? { ok: true, value: { db: db.value, binding } } : db;
}

/**
 * Every resource of a workspace in `region`, resolved up front so that a request the deployment
 * cannot keep in its region is refused before anything is admitted, sent or recorded.
 */
export function residentStores(env: Env, region: WorkspaceRegion): Resolved<ResidentStores> {
  const bindings: Bindings = env;
  const localFallback = localFallbackAllowed(env);
  const jurisdiction = jurisdictionOf(region);
  const eu = region === "eu";
  const ledger = restrictTo("LEDGER", bindings.LEDGER, jurisdiction, localFallback);
  const ledgerShard = restrictTo("LEDGER_SHARD", bindings.LEDGER_SHARD, jurisdiction, localFallback);
  const health = restrictTo("HEALTH", bindings.HEALTH, jurisdiction, localFallback);
  const db = residentDatabase(env, region);
  const traces = eu ? bound("TRACES_EU", bindings.TRACES_EU) : bound("TRACES", bindings.TRACES);
  if (!ledger.ok) return ledger;
  if (!ledgerShard.ok) return ledgerShard;
  if (!health.ok) return health;
  if (!db.ok) return db;
  if (!traces.ok) return traces;
  return {
    ok: true,
    value: {
      region,
      ledger: ledger.value,
      ledgerShard: ledgerShard.value,
      health: health.value,
      db: db.value.db,
      dbBinding: db.value.binding,
      traces: traces.value,
      traceContent: eu ? bindings.TRACE_CONTENT_EU : bindings.TRACE_CONTENT,
    },
  };
}

/**
 * A region's trace pipeline, for the queue consumers and the admin API: the queue traces enter,
 * the delivery queue the TRACES consumer hands failed deliveries to, the D1 database dead letters
 * are kept in (they hold trace bodies, so they stay in the region), and the content and archive
 * buckets (optional: a trace whose content has no bucket goes without it). Destinations and delivery statistics are
 * configuration and stay in `DB`.
 */
export interface TracePipeline {
  traces: Queue;
  deliveries: Queue;
  deadLetterDb: D1Database;
  content: R2Bucket | undefined;
  archive: R2Bucket | undefined;
}

export function tracePipeline(env: Env, region: WorkspaceRegion): Resolved<TracePipeline> {
  const bindings: Bindings = env;
  const eu = region === "eu";
  const traces = eu ? bound("TRACES_EU", bindings.TRACES_EU) : bound("TRACES", bindings.TRACES);
  const deliveries = eu ? bound("TRACE_DELIVERIES_EU", bindings.TRACE_DELIVERIES_EU) : bound("TRACE_DELIVERIES", bindings.TRACE_DELIVERIES);
  const db = residentDatabase(env, region);
  if (!traces.ok) return traces;
  if (!deliveries.ok) return deliveries;
  if (!db.ok) return db;
  return {
    ok: true,
    value: {
      traces: traces.value,
      deliveries: deliveries.value,
      deadLetterDb: db.value.db,
      content: eu ? bindings.TRACE_CONTENT_EU : bindings.TRACE_CONTENT,
      archive: eu ? bindings.TRACE_ARCHIVE_EU : bindings.TRACE_ARCHIVE,
    },
  };
}

/** The client's error when a workspace's resources cannot be kept in its region: 503, never a substitute. */
export function residencyUnavailable(region: WorkspaceRegion, problem: string): GatewayError {
  return new GatewayError(
    "unavailable",
    `This workspace's data must stay in region ${region}, and this deployment cannot guarantee that now: ${problem}. The request was refused rather than served with resources outside the region.`,
    { metadata: { reason: "residency_unavailable", region } },
  );
}

/** The value, or the 503 that refuses the request (for the HTTP layer and admin operations). */
export function orRefuse<T>(region: WorkspaceRegion, resolved: Resolved<T>): T {
  if (!resolved.ok) throw residencyUnavailable(region, resolved.problem);
  return resolved.value;
}
