/**
 * @module context
 * The Hono environment shared by every route: bindings and per-request variables.
 */
import type { KeyContext } from "./auth/api-keys";
import type { Residence } from "./residency/middleware";
import type { WorkspaceRegion } from "./residency/regions";

export interface AppEnv {
  Bindings: Env;
  Variables: {
    requestId: string;
    /** Region of ingress, from the hostname (residency/ingress); set for every request. */
    ingress: WorkspaceRegion;
    auth: KeyContext;
    /** The authenticated workspace's residency and resources (residency/middleware). */
    residence: Residence;
  };
}
