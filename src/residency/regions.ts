/**
 * @module residency/regions
 * The regions residency speaks of. A workspace's policy and a request's region of ingress are
 * each `global` or `eu`; an endpoint's region is the catalog's (`eu`, `us` or `global`). An `eu`
 * policy admits exactly the endpoints whose region is `eu`: a `global` endpoint may run anywhere,
 * so it is not EU.
 */
import { z } from "zod";
import type { Region, WorkspaceRegion } from "../db/schema";

export type { WorkspaceRegion };

export const workspaceRegionSchema = z.enum(["global", "eu"]) satisfies z.ZodType<WorkspaceRegion>;

/** Whether an endpoint in `endpointRegion` may serve a workspace whose policy is `policy`. */
export function endpointAllowed(policy: WorkspaceRegion, endpointRegion: Region): boolean {
  return policy === "global" || endpointRegion === policy;
}
