/**
 * @module api/admin/workspaces
 * Workspaces and their API keys. A key is shown once, at creation; afterwards only its label.
 */
import { eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { Hono } from "hono";
import { z } from "zod";
import { findKeyInWorkspace, forgetKey, generateKey, hashKey, isWellFormedKey, keyLabel } from "../../auth/api-keys";
import type { AppEnv } from "../../context";
import { apiKeys, workspaces, type ApiKey } from "../../db/schema";
import { GatewayError } from "../../errors";
import { readJsonBody, validate } from "../validate";

const workspaceId = z.string().regex(/^[a-zA-Z0-9_-]{1,64}$/, "1–64 letters, digits, '_' or '-'");
const isoDate = z.iso.datetime({ offset: true }).transform((s) => Date.parse(s));

const workspaceBody = z.strictObject({
  name: z.string().min(1).max(128),
  default_model: z.string().min(1).max(256).nullable().optional(),
});

const newKeyBody = z.strictObject({
  name: z.string().min(1).max(128),
  /** A fixed key value (development setups); must have the gateway's key format. */
  key: z.string().refine(isWellFormedKey, "must be sk-sy-v1- followed by 64 hex characters").optional(),
  expires_at: isoDate.nullable().optional(),
});

const keyPatchBody = z.strictObject({
  name: z.string().min(1).max(128).optional(),
  disabled: z.boolean().optional(),
  expires_at: isoDate.nullable().optional(),
});

/** A key as the admin API shows it: never its hash or value. */
function keyJson(key: ApiKey) {
  return {
    id: key.id,
    workspace_id: key.workspaceId,
    name: key.name,
    label: key.label,
    disabled: key.disabled,
    expires_at: key.expiresAt === null ? null : new Date(key.expiresAt).toISOString(),
    created_at: new Date(key.createdAt).toISOString(),
  };
}

async function requireWorkspace(db: D1Database, id: string) {
  const rows = await drizzle(db).select().from(workspaces).where(eq(workspaces.id, id)).limit(1);
  const workspace = rows[0];
  if (!workspace) throw new GatewayError("not_found", `Workspace not found: ${id}`);
  return workspace;
}

export const workspaceAdmin = new Hono<AppEnv>()
  .put("/workspaces/:id", async (c) => {
    const id = validate(workspaceId, c.req.param("id"));
    const body = validate(workspaceBody, await readJsonBody(c.req.raw));
    const row = { id, name: body.name, ...(body.default_model !== undefined ? { defaultModel: body.default_model } : {}) };
    const [saved] = await drizzle(c.env.DB)
      .insert(workspaces)
      .values(row)
      .onConflictDoUpdate({ target: workspaces.id, set: row })
      .returning();
    return c.json({ data: saved });
  })
  .get("/workspaces/:id", async (c) => c.json({ data: await requireWorkspace(c.env.DB, c.req.param("id")) }))
  .get("/workspaces/:id/keys", async (c) => {
    const rows = await drizzle(c.env.DB).select().from(apiKeys).where(eq(apiKeys.workspaceId, c.req.param("id")));
    return c.json({ data: rows.map(keyJson) });
  })
  .post("/workspaces/:id/keys", async (c) => {
    const workspace = await requireWorkspace(c.env.DB, c.req.param("id"));
    const body = validate(newKeyBody, await readJsonBody(c.req.raw));
    const key = body.key ?? generateKey();
    const hash = await hashKey(key);
    const existing = await findKeyInWorkspace(c.env.DB, workspace.id, hash);
    if (existing) return c.json({ data: keyJson(existing), key }, 200);
    const row = {
      id: `key_${crypto.randomUUID().replaceAll("-", "")}`,
      workspaceId: workspace.id,
      name: body.name,
      hash,
      label: keyLabel(key),
      expiresAt: body.expires_at ?? null,
    };
    const inserted = await drizzle(c.env.DB).insert(apiKeys).values(row).onConflictDoNothing().returning();
    const saved = inserted[0];
    if (!saved) throw new GatewayError("bad_request", "That key value is already in use");
    return c.json({ data: keyJson(saved), key }, 201);
  })
  .patch("/keys/:id", async (c) => {
    const body = validate(keyPatchBody, await readJsonBody(c.req.raw));
    const set = {
      ...(body.name !== undefined ? { name: body.name } : {}),
      ...(body.disabled !== undefined ? { disabled: body.disabled } : {}),
      ...(body.expires_at !== undefined ? { expiresAt: body.expires_at } : {}),
    };
    const orm = drizzle(c.env.DB);
    const rows = Object.keys(set).length
      ? await orm.update(apiKeys).set(set).where(eq(apiKeys.id, c.req.param("id"))).returning()
      : await orm.select().from(apiKeys).where(eq(apiKeys.id, c.req.param("id"))).limit(1);
    const saved = rows[0];
    if (!saved) throw new GatewayError("not_found", `Key not found: ${c.req.param("id")}`);
    forgetKey(saved.hash);
    return c.json({ data: keyJson(saved) });
  });
