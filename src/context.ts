/**
 * @module context
 * The Hono environment shared by every route: bindings and per-request variables.
 */
import type { KeyContext } from "./auth/api-keys";

export interface AppEnv {
  Bindings: Env;
  Variables: {
    requestId: string;
    auth: KeyContext;
  };
}
