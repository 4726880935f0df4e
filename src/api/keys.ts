/**
 * @module api/keys
 * OpenRouter's management keys API for the key's own workspace: `GET/POST /keys`,
 * `GET/PATCH/DELETE /keys/:hash`. Only management keys may call it.
 */
import { Hono } from "hono";
import { createKey, deleteKey, findKey, keyJson, keyPatchSchema, listKeys, newKeySchema, requireWorkspace, updateKey } from "../auth/key-store";
import type { ApiKey } from "../db/schema";
import type { AppEnv } from "../context";
import { GatewayError } from "../errors";
import { readJsonBody, validate } from "./validate";

/** Management keys create inference keys; a fixed value or another management key is the admin's call. */
const createBody = newKeySchema.omit({ key: true, kind: true });

async function ownKey(env: Env, workspaceId: string, hash: string): Promise<ApiKey> {
  const key = await findKey(env.DB, { hash }, workspaceId);
  if (!key) throw new GatewayError("not_found", "Key not found");
  return key;
}

export const keys = new Hono<AppEnv>()
  .get("/keys", async (c) => c.json({ data: (await listKeys(c.env.DB, c.get("auth").workspace.id)).map(keyJson) }))
  .post("/keys", async (c) => {
    const body = validate(createBody, await readJsonBody(c.req.raw));
    const workspace = await requireWorkspace(c.env.DB, c.get("auth").workspace.id);
    const { key, record } = await createKey(c.env, workspace, body);
    return c.json({ data: keyJson(record), key }, 201);
  })
  .get("/keys/:hash", async (c) => c.json({ data: keyJson(await ownKey(c.env, c.get("auth").workspace.id, c.req.param("hash"))) }))
  .patch("/keys/:hash", async (c) => {
    const body = validate(keyPatchSchema, await readJsonBody(c.req.raw));
    return c.json({ data: keyJson(await updateKey(c.env, await ownKey(c.env, c.get("auth").workspace.id, c.req.param("hash")), body)) });
  })
  .delete("/keys/:hash", async (c) => {
    const key = await ownKey(c.env, c.get("auth").workspace.id, c.req.param("hash"));
    if (key.id === c.get("auth").key.id) throw new GatewayError("bad_request", "A management key cannot delete itself");
    await deleteKey(c.env, key);
    return c.json({ data: { deleted: true } });
  });
