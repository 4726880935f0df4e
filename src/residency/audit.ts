/**
 * @module residency/audit
 * The route decision each generation record keeps, so a team can show an auditor where every
 * request went: the region it came in through, the workspace's policy, every endpoint considered
 * (candidates in order with their regions, exclusions with the rule and reason that removed them)
 * and, in the row's own columns, the endpoint used and its region. Compact JSON: arrays, not
 * objects, and bounded so a plan over many models cannot bloat the row.
 */
import type { RouteRecord } from "../db/schema";
import type { Plan } from "../routing/plan";
import type { WorkspaceRegion } from "./regions";

/** Entries kept of each list; the rest are counted in `truncated`. */
export const MAX_ROUTE_ENTRIES = 100;
const MAX_REASON = 200;

/** The route columns of a generation row, less the serving endpoint (known once it answered). */
export interface RouteAudit {
  ingressRegion: WorkspaceRegion;
  /** Every endpoint the plan left out, before truncation. */
  excludedCount: number;
  route: RouteRecord;
}

export function routeAudit(plan: Plan, ingress: WorkspaceRegion, policy: WorkspaceRegion): RouteAudit {
  const candidates = plan.candidates.map((c): [string, string] => [c.endpoint.id, c.endpoint.effectiveRegion]);
  const excluded = plan.excluded.map((e): [string, string, string, string] => [e.model, e.provider, e.constraint, e.reason.slice(0, MAX_REASON)]);
  const truncated = Math.max(0, candidates.length - MAX_ROUTE_ENTRIES) + Math.max(0, excluded.length - MAX_ROUTE_ENTRIES);
  return {
    ingressRegion: ingress,
    excludedCount: plan.excluded.length,
    route: {
      ingress,
      policy,
      candidates: candidates.slice(0, MAX_ROUTE_ENTRIES),
      excluded: excluded.slice(0, MAX_ROUTE_ENTRIES),
      truncated,
    },
  };
}
