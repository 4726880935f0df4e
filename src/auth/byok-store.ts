/**
 * @module auth/byok-store
 * Workspaces' own provider keys (BYOK) in D1, encrypted (auth/secrets.ts), and the isolate cache
 * that routing reads them from: per workspace, the map provider slug → decrypted key, so a warm
 * request reads no D1. Admin changes drop the entry in this isolate; others follow within the TTL.
 */
import { and, eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { providerCredentials } from "../db/schema";
import { decryptSecret, encryptSecret, masterKeyOf } from "./secrets";

/** Provider slug → the workspace's own API key for it. */
export type ByokKeys = ReadonlyMap<string, string>;

/** A stored key as APIs show it: never the key, nor its ciphertext. */
export interface ByokKeyView {
  provider: string;
  last4: string;
  createdAt: number;
}

const CACHE_TTL_MS = 30_000;
const CACHE_MAX = 10_000;
const cache = new Map<string, { keys: ByokKeys; loadedAt: number }>();
const NONE: ByokKeys = new Map();

function purpose(providerSlug: string): string {
  return `byok:${providerSlug}`;
}

/** The last 4 characters, for recognising a key (shorter keys show less). */
function last4Of(apiKey: string): string {
  return apiKey.slice(-4);
}

/** Encrypt and store (or replace) a workspace's key for a provider. */
export async function putByokKey(db: D1Database, masterKey: string, workspaceId: string, providerSlug: string, apiKey: string): Promise<ByokKeyView> {
  const sealed = await encryptSecret(masterKey, { workspaceId, purpose: purpose(providerSlug) }, apiKey);
  const row = { workspaceId, providerSlug, ...sealed, last4: last4Of(apiKey), createdAt: Date.now() };
  await drizzle(db)
    .insert(providerCredentials)
    .values(row)
    .onConflictDoUpdate({ target: [providerCredentials.workspaceId, providerCredentials.providerSlug], set: row });
  forgetByokKeys(workspaceId);
  return { provider: providerSlug, last4: row.last4, createdAt: row.createdAt };
}

export async function listByokKeys(db: D1Database, workspaceId: string): Promise<ByokKeyView[]> {
  const rows = await drizzle(db)
    .select({ provider: providerCredentials.providerSlug, last4: providerCredentials.last4, createdAt: providerCredentials.createdAt })
    .from(providerCredentials)
    .where(eq(providerCredentials.workspaceId, workspaceId))
    .orderBy(providerCredentials.providerSlug);
  return rows;
}

/** Remove a workspace's key for a provider; false when there was none. */
export async function deleteByokKey(db: D1Database, workspaceId: string, providerSlug: string): Promise<boolean> {
  const deleted = await drizzle(db)
    .delete(providerCredentials)
    .where(and(eq(providerCredentials.workspaceId, workspaceId), eq(providerCredentials.providerSlug, providerSlug)))
    .returning({ slug: providerCredentials.providerSlug });
  forgetByokKeys(workspaceId);
  return deleted.length > 0;
}

/**
 * The workspace's decrypted keys, from the isolate cache when fresh (workspaces without keys are
 * cached too). A key that does not decrypt — no or another `MASTER_KEY` — is left out and logged:
 * routing then uses the platform's credentials, and nothing undecryptable is ever sent upstream.
 */
export async function getByokKeys(env: Env, workspaceId: string, now = Date.now()): Promise<ByokKeys> {
  const hit = cache.get(workspaceId);
  if (hit && now - hit.loadedAt < CACHE_TTL_MS) return hit.keys;
  const keys = await loadByokKeys(env, workspaceId);
  cache.delete(workspaceId);
  if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value ?? "");
  cache.set(workspaceId, { keys, loadedAt: now });
  return keys;
}

async function loadByokKeys(env: Env, workspaceId: string): Promise<ByokKeys> {
  const rows = await drizzle(env.DB).select().from(providerCredentials).where(eq(providerCredentials.workspaceId, workspaceId));
  if (rows.length === 0) return NONE;
  const masterKey = masterKeyOf(env);
  const keys = new Map<string, string>();
  for (const row of rows) {
    const key = masterKey ? await decryptSecret(masterKey, { workspaceId, purpose: purpose(row.providerSlug) }, row) : null;
    if (key === null) {
      console.error(JSON.stringify({ level: "error", msg: "BYOK key does not decrypt; using platform keys", workspaceId, provider: row.providerSlug, masterKey: masterKey !== null }));
      continue;
    }
    keys.set(row.providerSlug, key);
  }
  return keys;
}

/** Drop a workspace's cached keys (after an admin change in this isolate). */
export function forgetByokKeys(workspaceId: string): void {
  cache.delete(workspaceId);
}
