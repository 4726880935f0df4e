/**
 * @module api/admin/byok
 * A workspace's own provider keys (BYOK): store one per provider (encrypted under `MASTER_KEY`),
 * list them (provider, last 4 characters, creation time — never the key), remove one. Every
 * change drops this isolate's cached keys of the workspace.
 */
import { eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { Hono } from "hono";
import { z } from "zod";
import { deleteByokKey, listByokKeys, putByokKey, type ByokKeyView } from "../../auth/byok-store";
import { requireWorkspace } from "../../auth/key-store";
import { masterKeyOf, MIN_MASTER_KEY_LENGTH } from "../../auth/secrets";
import type { AppEnv } from "../../context";
import { providers } from "../../db/schema";
import { GatewayError } from "../../errors";
import { readJsonBody, validate } from "../validate";

const byokBody = z.strictObject({
  api_key: z
    .string()
    .min(8, "too short to be a provider API key")
    .max(4096)
    .refine((key) => key.trim() === key && !/\s/.test(key), "must not contain whitespace"),
});

function byokJson(view: ByokKeyView) {
  return { provider: view.provider, last4: `…${view.last4}`, created_at: new Date(view.createdAt).toISOString() };
}

export const byokAdmin = new Hono<AppEnv>()
  .get("/workspaces/:id/byok", async (c) => {
    const workspace = await requireWorkspace(c.env.DB, c.req.param("id"));
    return c.json({ data: (await listByokKeys(c.env.DB, workspace.id)).map(byokJson) });
  })
  .put("/workspaces/:id/byok/:provider", async (c) => {
    // Fail closed: never store a provider key that could not be encrypted.
    const masterKey = masterKeyOf(c.env);
    if (!masterKey) {
      throw new GatewayError(
        "unavailable",
        `BYOK keys cannot be stored: MASTER_KEY is not configured (set a secret of at least ${MIN_MASTER_KEY_LENGTH} characters)`,
      );
    }
    const workspace = await requireWorkspace(c.env.DB, c.req.param("id"));
    const slug = c.req.param("provider");
    const body = validate(byokBody, await readJsonBody(c.req.raw));
    const [provider] = await drizzle(c.env.DB).select({ slug: providers.slug }).from(providers).where(eq(providers.slug, slug));
    if (!provider) throw new GatewayError("not_found", `Provider not found: ${slug}`);
    const view = await putByokKey(c.env.DB, masterKey, workspace.id, provider.slug, body.api_key);
    return c.json({ data: byokJson(view) });
  })
  .delete("/workspaces/:id/byok/:provider", async (c) => {
    const workspace = await requireWorkspace(c.env.DB, c.req.param("id"));
    const slug = c.req.param("provider");
    if (!(await deleteByokKey(c.env.DB, workspace.id, slug))) throw new GatewayError("not_found", `No BYOK key for provider ${slug}`);
    return c.json({ data: { provider: slug, deleted: true } });
  });
