/**
 * @module residency/policy
 * A workspace's residency policy and the ingress rule: an `eu` workspace is served only through
 * an EU hostname, unless its settings allow other hostnames explicitly. The region read from D1
 * is trusted only when it is exactly `global`; anything else is treated as `eu`, the stricter.
 */
import type { Workspace } from "../db/schema";
import { GatewayError } from "../errors";
import type { WorkspaceRegion } from "./regions";

export interface ResidencyPolicy {
  region: WorkspaceRegion;
  /** An `eu` workspace may be called through non-EU hostnames. */
  allowNonEuIngress: boolean;
}

export function policyOf(workspace: Pick<Workspace, "region" | "allowNonEuIngress">): ResidencyPolicy {
  return { region: workspace.region === "global" ? "global" : "eu", allowNonEuIngress: workspace.allowNonEuIngress === true };
}

/**
 * Why a request of a workspace with `policy` may not come in through `hostname` (region
 * `ingress`): a 403 `region_restricted` in OpenRouter's error shape; null when it may.
 */
export function ingressRefusal(policy: ResidencyPolicy, ingress: WorkspaceRegion, hostname: string): GatewayError | null {
  if (policy.region !== "eu" || ingress === "eu" || policy.allowNonEuIngress) return null;
  return new GatewayError(
    "forbidden",
    `This workspace is pinned to the EU: call it through the gateway's EU hostname (${hostname} is not an EU hostname), or allow non-EU ingress in the workspace's settings (allow_non_eu_ingress).`,
    { metadata: { reason: "region_restricted", workspace_region: policy.region, ingress_region: ingress, hostname } },
  );
}
