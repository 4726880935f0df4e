/**
 * @module residency/endpoint-filter
 * The planner's residency rule (routing/plan runs it before every other filter): an `eu`
 * workspace's plan holds only endpoints whose region is `eu`. It depends on the workspace's policy
 * alone — no `provider` preference, `models` list, variant or BYOK key reaches it — and failover,
 * retries and the circuit breaker only ever walk the plan's candidates, so it holds for every
 * attempt a request makes.
 */
import type { CatalogEndpoint } from "../catalog/store";
import type { Plan } from "../routing/plan";
import type { Rejection } from "../routing/preferences";
import { endpointAllowed, type WorkspaceRegion } from "./regions";

/** The exclusion constraint of the rule, e.g. `region=eu`. */
export function regionConstraint(region: WorkspaceRegion): string {
  return `region=${region}`;
}

/** Why `endpoint` may not serve a workspace pinned to `region`; null when it may. */
export function residencyRejection(region: WorkspaceRegion, endpoint: CatalogEndpoint): Rejection | null {
  if (endpointAllowed(region, endpoint.effectiveRegion)) return null;
  return {
    constraint: regionConstraint(region),
    reason: `endpoint region is ${endpoint.effectiveRegion}; the workspace is pinned to region ${region}`,
  };
}

/**
 * The requested models left without a candidate only because none of their endpoints is in
 * `region`, in the order first excluded. A model that has an endpoint in the region which another
 * rule removed is not among them: the client can fix that by changing the request.
 */
export function modelsOutsideRegion(plan: Plan, region: WorkspaceRegion): string[] {
  const constraint = regionConstraint(region);
  const served = new Set(plan.candidates.map((c) => c.model.id));
  const outside = new Map<string, boolean>();
  for (const e of plan.excluded) {
    if (served.has(e.model)) continue;
    outside.set(e.model, (outside.get(e.model) ?? true) && e.constraint === constraint);
  }
  return [...outside].filter(([, only]) => only).map(([model]) => model);
}
