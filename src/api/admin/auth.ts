/**
 * @module api/admin/auth
 * The bootstrap admin secret. Without `ADMIN_TOKEN` configured the admin API refuses everything
 * (fail closed); the comparison is constant-time.
 */
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../../context";
import { GatewayError } from "../../errors";

async function digest(text: string): Promise<ArrayBuffer> {
  return crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
}

export const requireAdmin = createMiddleware<AppEnv>(async (c, next) => {
  const expected = c.env.ADMIN_TOKEN;
  if (!expected) throw new GatewayError("forbidden", "The admin API is disabled: ADMIN_TOKEN is not configured");
  const match = /^Bearer\s+(\S+)\s*$/i.exec(c.req.header("authorization") ?? "");
  if (!match) throw new GatewayError("unauthorized", "Missing admin token: send Authorization: Bearer <ADMIN_TOKEN>");
  // Hash both sides so the comparison is constant-time regardless of length.
  const [given, wanted] = await Promise.all([digest(match[1]!), digest(expected)]);
  if (!crypto.subtle.timingSafeEqual(given, wanted)) throw new GatewayError("unauthorized", "Invalid admin token");
  await next();
});
