/**
 * @module auth/key-store
 * Creating, listing and changing API keys, shared by the admin API and OpenRouter's management
 * keys API. D1 holds the configuration; every change is also pushed to the workspace's ledger,
 * which keeps the authoritative status so a revoked key is refused on the very next request. The
 * ledger is the one of the workspace's region (residency/bindings), resolved before anything is
 * written: when it cannot be reached in the region, nothing changes and the call is refused (503).
 */
import { and, eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { z } from "zod";
import { keyConfig } from "../billing/admission";
import { usdMicros } from "../catalog/seed-schema";
import { apiKeys, workspaces, type ApiKey, type Workspace } from "../db/schema";
import { GatewayError } from "../errors";
import { orRefuse, residentLedger } from "../residency/bindings";
import { policyOf } from "../residency/policy";
import { forgetKey, generateKey, hashKey, isWellFormedKey, keyLabel } from "./api-keys";

const isoDate = z.iso.datetime({ offset: true }).transform((s) => Date.parse(s));
const perMinute = z.number().int().positive().nullable();

/** Settings a key's owner may set, in OpenRouter's spelling (limit in USD); all optional. */
const keySettings = z
  .strictObject({
    limit: usdMicros.nullable(),
    limit_reset: z.enum(["daily", "weekly", "monthly"]).nullable(),
    include_byok_in_limit: z.boolean(),
    expires_at: isoDate.nullable(),
    rpm: perMinute,
    tpm: perMinute,
    concurrency: perMinute,
  })
  .partial();

const keyName = z.string().min(1).max(128);

export const newKeySchema = keySettings.extend({
  name: keyName,
  /** A fixed key value (development setups); must have the gateway's key format. */
  key: z.string().refine(isWellFormedKey, "must be sk-sy-v1- followed by 64 hex characters").optional(),
  kind: z.enum(["inference", "management"]).optional(),
});
export type NewKey = z.infer<typeof newKeySchema>;

export const keyPatchSchema = keySettings.extend({ name: keyName.optional(), disabled: z.boolean().optional() });
export type KeyPatch = z.infer<typeof keyPatchSchema>;

/** A key as APIs show it: never its value; `hash` is the SHA-256 OpenRouter's API names keys by. */
export function keyJson(key: ApiKey) {
  return {
    id: key.id,
    hash: key.hash,
    workspace_id: key.workspaceId,
    name: key.name,
    label: key.label,
    kind: key.kind,
    disabled: key.disabled,
    limit: key.limitMicros === null ? null : key.limitMicros / 1_000_000,
    limit_reset: key.limitReset ?? null,
    include_byok_in_limit: key.includeByokInLimit,
    rate_limits: { rpm: key.rpm, tpm: key.tpm, concurrency: key.concurrency },
    expires_at: key.expiresAt === null ? null : new Date(key.expiresAt).toISOString(),
    created_at: new Date(key.createdAt).toISOString(),
  };
}

export async function requireWorkspace(db: D1Database, id: string): Promise<Workspace> {
  const rows = await drizzle(db).select().from(workspaces).where(eq(workspaces.id, id)).limit(1);
  const workspace = rows[0];
  if (!workspace) throw new GatewayError("not_found", `Workspace not found: ${id}`);
  return workspace;
}

/** The workspace's ledger in its region; throws the 503 when the region cannot be guaranteed. */
function ledgerOf(env: Env, workspace: Workspace) {
  const { region } = policyOf(workspace);
  return orRefuse(region, residentLedger(env, region)).getByName(workspace.id);
}

/** Create a key; the value is returned once. A fixed value that already exists answers `created: false`. */
export async function createKey(env: Env, workspace: Workspace, input: NewKey): Promise<{ key: string; record: ApiKey; created: boolean }> {
  const ledger = ledgerOf(env, workspace);
  const value = input.key ?? generateKey();
  const hash = await hashKey(value);
  const orm = drizzle(env.DB);
  const existing = await orm
    .select()
    .from(apiKeys)
    .where(and(eq(apiKeys.workspaceId, workspace.id), eq(apiKeys.hash, hash)))
    .limit(1);
  if (existing[0]) return { key: value, record: existing[0], created: false };
  const inserted = await orm
    .insert(apiKeys)
    .values({
      id: `key_${crypto.randomUUID().replaceAll("-", "")}`,
      workspaceId: workspace.id,
      name: input.name,
      hash,
      label: keyLabel(value),
      kind: input.kind ?? "inference",
      expiresAt: input.expires_at ?? null,
      limitMicros: input.limit ?? null,
      limitReset: input.limit_reset ?? null,
      includeByokInLimit: input.include_byok_in_limit ?? false,
      rpm: input.rpm ?? null,
      tpm: input.tpm ?? null,
      concurrency: input.concurrency ?? null,
    })
    .onConflictDoNothing()
    .returning();
  const record = inserted[0];
  if (!record) throw new GatewayError("bad_request", "That key value is already in use");
  await ledger.setKey(keyConfig({ key: record, workspace }));
  return { key: value, record, created: true };
}

export async function findKey(db: D1Database, where: { id: string } | { hash: string }, workspaceId?: string): Promise<ApiKey | undefined> {
  const match = "id" in where ? eq(apiKeys.id, where.id) : eq(apiKeys.hash, where.hash);
  const rows = await drizzle(db)
    .select()
    .from(apiKeys)
    .where(workspaceId ? and(match, eq(apiKeys.workspaceId, workspaceId)) : match)
    .limit(1);
  return rows[0];
}

export async function listKeys(db: D1Database, workspaceId: string): Promise<ApiKey[]> {
  return drizzle(db).select().from(apiKeys).where(eq(apiKeys.workspaceId, workspaceId));
}

/** Apply a change to a key in D1 and in the ledger; the isolate's cached copy is dropped. */
export async function updateKey(env: Env, key: ApiKey, patch: KeyPatch): Promise<ApiKey> {
  const set = {
    ...(patch.name !== undefined ? { name: patch.name } : {}),
    ...(patch.disabled !== undefined ? { disabled: patch.disabled } : {}),
    ...(patch.limit !== undefined ? { limitMicros: patch.limit } : {}),
    ...(patch.limit_reset !== undefined ? { limitReset: patch.limit_reset } : {}),
    ...(patch.include_byok_in_limit !== undefined ? { includeByokInLimit: patch.include_byok_in_limit } : {}),
    ...(patch.expires_at !== undefined ? { expiresAt: patch.expires_at } : {}),
    ...(patch.rpm !== undefined ? { rpm: patch.rpm } : {}),
    ...(patch.tpm !== undefined ? { tpm: patch.tpm } : {}),
    ...(patch.concurrency !== undefined ? { concurrency: patch.concurrency } : {}),
  };
  const workspace = await requireWorkspace(env.DB, key.workspaceId);
  const ledger = ledgerOf(env, workspace);
  const orm = drizzle(env.DB);
  const updated = Object.keys(set).length ? (await orm.update(apiKeys).set(set).where(eq(apiKeys.id, key.id)).returning())[0] : key;
  if (!updated) throw new GatewayError("not_found", `Key not found: ${key.id}`);
  await ledger.setKey(keyConfig({ key: updated, workspace }));
  forgetKey(updated.hash);
  return updated;
}

/** Deleting a key disables it in the ledger first, so no request slips through in between. */
export async function deleteKey(env: Env, key: ApiKey): Promise<void> {
  await updateKey(env, key, { disabled: true });
  await drizzle(env.DB).delete(apiKeys).where(eq(apiKeys.id, key.id));
  forgetKey(key.hash);
}
