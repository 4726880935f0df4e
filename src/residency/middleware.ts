/**
 * @module residency/middleware
 * Residency on the request path. `regionOfIngress` (first, for every request) names the region the
 * request came in through and says so in `x-switchyard-region` on every response, errors included.
 * `requireResidency` (after authentication) refuses an EU workspace's request on a non-EU
 * hostname (403) and resolves the workspace's resources for its region up front (503 when one
 * cannot be kept there), so nothing downstream can reach for a resource outside the region.
 */
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../context";
import { orRefuse, residentStores, type ResidentStores } from "./bindings";
import { ingressRegion } from "./ingress";
import { ingressRefusal, policyOf, type ResidencyPolicy } from "./policy";
import type { WorkspaceRegion } from "./regions";
import { stampHeaders } from "../stamp-headers";

/** The region that processed the request (region of ingress). */
export const REGION_HEADER = "x-switchyard-region";
/** The region of the provider endpoint that served it. */
export const ENDPOINT_REGION_HEADER = "x-switchyard-endpoint-region";

/** One authenticated request's residency: where it came in, the workspace's policy, its resources. */
export interface Residence {
  ingress: WorkspaceRegion;
  policy: ResidencyPolicy;
  stores: ResidentStores;
}

export const regionOfIngress = createMiddleware<AppEnv>(async (c, next) => {
  const ingress = ingressRegion(c.req.url, c.env.REGION_HOSTS);
  c.set("ingress", ingress);
  await next();
  stampHeaders(c, { [REGION_HEADER]: ingress });
});

export const requireResidency = createMiddleware<AppEnv>(async (c, next) => {
  const policy = policyOf(c.get("auth").workspace);
  const ingress = c.get("ingress");
  const refusal = ingressRefusal(policy, ingress, new URL(c.req.url).hostname);
  if (refusal) throw refusal;
  const stores = orRefuse(policy.region, residentStores(c.env, policy.region));
  c.set("residence", { ingress, policy, stores });
  await next();
});
