/**
 * @module auth/middleware
 * `Authorization: Bearer <key>` for the inference API. Missing, unknown, disabled and expired
 * keys are all 401 in OpenRouter's error shape; the message says which, never echoing the key.
 * Public routes that answer differently per workspace (the model listing of an EU workspace) use
 * `optionalApiKey`: a usable key names the workspace, anything else is anonymous.
 */
import { createMiddleware } from "hono/factory";
import { GatewayError } from "../errors";
import type { AppEnv } from "../context";
import { findKeyByHash, hashKey, isWellFormedKey, type KeyContext } from "./api-keys";

type KeyCheck = { ok: true; found: KeyContext } | { ok: false; message: string };

/** The key an `Authorization` header carries, checked: known, enabled, not expired. */
async function checkBearer(db: D1Database, header: string | undefined): Promise<KeyCheck> {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? "");
  if (!match) return { ok: false, message: "Missing API key: send Authorization: Bearer <key>" };
  const key = match[1]!;
  if (!isWellFormedKey(key)) return { ok: false, message: "Invalid API key" };
  const found = await findKeyByHash(db, await hashKey(key));
  if (!found) return { ok: false, message: "Invalid API key" };
  if (found.key.disabled) return { ok: false, message: "This API key is disabled" };
  if (found.key.expiresAt !== null && found.key.expiresAt <= Date.now()) return { ok: false, message: "This API key has expired" };
  return { ok: true, found };
}

export const requireApiKey = createMiddleware<AppEnv>(async (c, next) => {
  const checked = await checkBearer(c.env.DB, c.req.header("authorization"));
  if (!checked.ok) throw new GatewayError("unauthorized", checked.message);
  c.set("auth", checked.found);
  await next();
});

/** The workspace of a usable bearer key, or null (no header, or a key that would be refused). */
export async function optionalApiKey(db: D1Database, header: string | undefined): Promise<KeyContext | null> {
  if (!header) return null;
  const checked = await checkBearer(db, header);
  return checked.ok ? checked.found : null;
}

/** Inference keys call models; management keys manage keys. Each is refused the other's routes. */
export function requireKind(kind: "inference" | "management") {
  return createMiddleware<AppEnv>(async (c, next) => {
    if (c.get("auth").key.kind !== kind) {
      throw new GatewayError(
        "forbidden",
        kind === "management" ? "This endpoint needs a management key" : "Management keys cannot be used for inference",
      );
    }
    await next();
  });
}
