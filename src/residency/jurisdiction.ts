/**
 * @module residency/jurisdiction
 * Durable Object namespaces restricted to a workspace's jurisdiction. An `eu` workspace's objects
 * come from `namespace.jurisdiction("eu")`: the same name there is a different object, created,
 * run and stored in the EU. A `global` workspace uses the namespace as bound.
 *
 * Local workerd has no jurisdictions: `jurisdiction()` throws "Jurisdiction restrictions are not
 * implemented in workerd". Only then, and only when `RESIDENCY_LOCAL_FALLBACK` is `"1"`, the plain
 * namespace is used instead, so development and tests can run EU workspaces. In production
 * `jurisdiction()` works, so that variable changes nothing there: the fallback is refused
 * whenever the Worker is not running on local workerd, by construction rather than by a check
 * that could be misconfigured. Any other failure refuses the request (fail closed).
 */
import type { WorkspaceRegion } from "./regions";

/** The variable that allows the local fallback (vitest.config.ts, .dev.vars.example). */
export const LOCAL_FALLBACK_VAR = "RESIDENCY_LOCAL_FALLBACK";

/** workerd's message when the platform lacks jurisdictions (cloudflare/workerd#4167). */
const NOT_IN_WORKERD = /Jurisdiction restrictions are not implemented in workerd/;

/** A namespace that can be restricted to a jurisdiction (Durable Object namespaces, and test doubles). */
export interface Restrictable<N> {
  jurisdiction(jurisdiction: DurableObjectJurisdiction): N;
}

/** A resolved resource, or why it cannot be used (the request is then refused). */
export type Resolved<T> = { ok: true; value: T } | { ok: false; problem: string };

/** The jurisdiction a region's objects live in; null: no restriction. */
export function jurisdictionOf(region: WorkspaceRegion): DurableObjectJurisdiction | null {
  return region === "eu" ? "eu" : null;
}

/** Whether the environment allows the local fallback (`RESIDENCY_LOCAL_FALLBACK=1`). */
export function localFallbackAllowed(env: object): boolean {
  return Reflect.get(env, LOCAL_FALLBACK_VAR) === "1";
}

/** True when `error` is local workerd saying it has no jurisdictions. */
export function isLocalWorkerdRefusal(error: unknown): boolean {
  return error instanceof Error && NOT_IN_WORKERD.test(error.message);
}

let warned = false;

/**
 * `namespace` restricted to `jurisdiction` (unchanged when null). `binding` names it in messages.
 * Falls back to the plain namespace only when the platform lacks jurisdictions and
 * `localFallback` allows it.
 */
export function restrictTo<N extends Restrictable<N>>(
  binding: string,
  namespace: N | undefined,
  jurisdiction: DurableObjectJurisdiction | null,
  localFallback: boolean,
): Resolved<N> {
  if (!namespace) return { ok: false, problem: `the ${binding} binding is missing` };
  if (jurisdiction === null) return { ok: true, value: namespace };
  try {
    return { ok: true, value: namespace.jurisdiction(jurisdiction) };
  } catch (error) {
    if (localFallback && isLocalWorkerdRefusal(error)) {
      if (!warned) {
        warned = true;
        console.warn(JSON.stringify({ level: "warn", msg: `${LOCAL_FALLBACK_VAR}: this workerd has no Durable Object jurisdictions; using un-jurisdictioned namespaces (local development only)` }));
      }
      return { ok: true, value: namespace };
    }
    const detail = error instanceof Error ? error.message : String(error);
    return { ok: false, problem: `the ${binding} namespace cannot be restricted to jurisdiction "${jurisdiction}" (${detail})` };
  }
}

const JURISDICTIONS: ReadonlySet<string> = new Set<DurableObjectJurisdiction>(["eu", "us", "fedramp", "fedramp-high"]);

function isJurisdiction(value: string): value is DurableObjectJurisdiction {
  return JURISDICTIONS.has(value);
}

/**
 * The namespace through which a Durable Object reaches objects of its own jurisdiction, given its
 * `ctx.id.jurisdiction` (set by the platform for objects created through `jurisdiction()`;
 * undefined for others, and on local workerd). Used by a LedgerShard to find its workspace's
 * Ledger: derived from the object's own id, so it cannot disagree with where the shard lives.
 */
export function sameJurisdiction<N extends Restrictable<N>>(namespace: N, jurisdiction: string | undefined): N {
  if (jurisdiction === undefined) return namespace;
  if (!isJurisdiction(jurisdiction)) throw new Error(`unknown Durable Object jurisdiction "${jurisdiction}"`);
  return namespace.jurisdiction(jurisdiction);
}
