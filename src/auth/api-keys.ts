/**
 * @module auth/api-keys
 * API keys: generated from 32 random bytes, shown once, stored only as their SHA-256. Lookups go
 * through a short isolate cache so a warm request reads no D1.
 */
import { eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { apiKeys, workspaces, type ApiKey, type Workspace } from "../db/schema";

export const KEY_PREFIX = "sk-sy-v1-";
const KEY_PATTERN = /^sk-sy-v1-[0-9a-f]{64}$/;

export function isWellFormedKey(key: string): boolean {
  return KEY_PATTERN.test(key);
}

export function generateKey(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return KEY_PREFIX + toHex(bytes);
}

export async function hashKey(key: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(key));
  return toHex(new Uint8Array(digest));
}

/** What may be shown of a key: its prefix, three characters, and the last four. */
export function keyLabel(key: string): string {
  return `${key.slice(0, KEY_PREFIX.length + 3)}…${key.slice(-4)}`;
}

function toHex(bytes: Uint8Array): string {
  let hex = "";
  for (const byte of bytes) hex += byte.toString(16).padStart(2, "0");
  return hex;
}

export interface KeyContext {
  key: ApiKey;
  workspace: Workspace;
}

const CACHE_TTL_MS = 30_000;
const CACHE_MAX = 10_000;
const cache = new Map<string, { value: KeyContext; loadedAt: number }>();

/**
 * The key and its workspace by hash. Cached for a short while per isolate: disabling a key takes
 * effect at once in the isolate that served the admin call and within the TTL elsewhere.
 */
export async function findKeyByHash(db: D1Database, hash: string, now = Date.now()): Promise<KeyContext | null> {
  const hit = cache.get(hash);
  if (hit && now - hit.loadedAt < CACHE_TTL_MS) return hit.value;
  const rows = await drizzle(db)
    .select({ key: apiKeys, workspace: workspaces })
    .from(apiKeys)
    .innerJoin(workspaces, eq(apiKeys.workspaceId, workspaces.id))
    .where(eq(apiKeys.hash, hash))
    .limit(1);
  const row = rows[0];
  if (!row) {
    cache.delete(hash);
    return null;
  }
  if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value ?? "");
  cache.set(hash, { value: row, loadedAt: now });
  return row;
}

export function forgetKey(hash: string): void {
  cache.delete(hash);
}

/** Drop every cached key of a workspace (its settings changed). Other isolates follow within the TTL. */
export function forgetWorkspace(workspaceId: string): void {
  for (const [hash, entry] of cache) if (entry.value.workspace.id === workspaceId) cache.delete(hash);
}
