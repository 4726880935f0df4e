/**
 * @module auth/middleware
 * `Authorization: Bearer <key>` for the inference API. Missing, unknown, disabled and expired
 * keys are all 401 in OpenRouter's error shape; the message says which, never echoing the key.
 */
import { createMiddleware } from "hono/factory";
import { GatewayError } from "../errors";
import type { AppEnv } from "../context";
import { findKeyByHash, hashKey, isWellFormedKey } from "./api-keys";

export const requireApiKey = createMiddleware<AppEnv>(async (c, next) => {
  const header = c.req.header("authorization") ?? "";
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!match) throw new GatewayError("unauthorized", "Missing API key: send Authorization: Bearer <key>");
  const key = match[1]!;
  if (!isWellFormedKey(key)) throw new GatewayError("unauthorized", "Invalid API key");
  const found = await findKeyByHash(c.env.DB, await hashKey(key));
  if (!found) throw new GatewayError("unauthorized", "Invalid API key");
  if (found.key.disabled) throw new GatewayError("unauthorized", "This API key is disabled");
  if (found.key.expiresAt !== null && found.key.expiresAt <= Date.now()) {
    throw new GatewayError("unauthorized", "This API key has expired");
  }
  c.set("auth", found);
  await next();
});

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
