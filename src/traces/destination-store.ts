/**
 * @module traces/destination-store
 * Trace destinations in D1, their secrets encrypted (auth/secrets.ts), and the isolate cache the
 * queue consumers read them from: per workspace, every destination with its secret decrypted, for
 * 30 s. The consumers run once per batch, not per request, so a short TTL costs little D1 and an
 * admin change reaches every isolate within it (this isolate at once).
 */
import { and, eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { z } from "zod";
import { decryptSecret, encryptSecret, masterKeyOf, type SecretScope } from "../auth/secrets";
import { traceDestinations, type TraceDestinationRow } from "../db/schema";
import { resolveTarget, secretHint, splitInput, targetConfigSchema, type DestinationInput, type Target, type TargetConfig } from "./destination-config";
import type { TraceFilter } from "./sampling";

/** A destination as the consumers use it. */
export interface Destination {
  workspaceId: string;
  id: string;
  name: string | null;
  enabled: boolean;
  filter: TraceFilter;
  privacyMode: boolean;
  /** Null when it cannot deliver; `problem` says why (e.g. its secret does not decrypt). */
  target: Target | null;
  problem: string | null;
}

/** A destination as the admin API shows it: never a secret, only its hint. */
export interface DestinationRecord {
  workspaceId: string;
  id: string;
  name: string | null;
  type: TargetConfig["type"];
  config: TargetConfig;
  secretHint: Record<string, string>;
  samplingRate: number;
  apiKeyIds: string[] | null;
  privacyMode: boolean;
  enabled: boolean;
  createdAt: number;
  updatedAt: number;
}

export type PutResult = { ok: true; record: DestinationRecord; created: boolean } | { ok: false; code: "bad_request" | "unavailable"; message: string };

const CACHE_TTL_MS = 30_000;
const CACHE_MAX = 10_000;
const cache = new Map<string, { destinations: readonly Destination[]; loadedAt: number }>();

function scope(workspaceId: string, destinationId: string): SecretScope {
  return { workspaceId, purpose: `trace-destination:${destinationId}` };
}

const hintSchema = z.record(z.string(), z.string());
const keyIdsSchema = z.array(z.string()).nullable();

function parseJson<S extends z.ZodType>(schema: S, text: string | null, fallback: z.infer<S>): z.infer<S> {
  if (text === null) return fallback;
  try {
    const parsed = schema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : fallback;
  } catch {
    return fallback;
  }
}

/** The row's public config; null when the stored JSON is not a config (never written by this code). */
function configOf(row: TraceDestinationRow): TargetConfig | null {
  return parseJson(targetConfigSchema.nullable(), row.config, null);
}

function recordOf(row: TraceDestinationRow, config: TargetConfig): DestinationRecord {
  return {
    workspaceId: row.workspaceId,
    id: row.id,
    name: row.name,
    type: config.type,
    config,
    secretHint: parseJson(hintSchema, row.secretHint, {}),
    samplingRate: row.samplingRate,
    apiKeyIds: parseJson(keyIdsSchema, row.apiKeyIds, null),
    privacyMode: row.privacyMode,
    enabled: row.enabled,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
  };
}

/**
 * Create or replace a destination. Secret fields left out of an update keep the stored secret
 * when the type is unchanged; a type that needs a secret refuses to be stored without one, and
 * nothing is stored unencrypted (no `MASTER_KEY`: refused).
 */
export async function putDestination(db: D1Database, masterKey: string | null, workspaceId: string, id: string, input: DestinationInput): Promise<PutResult> {
  const split = splitInput(input);
  const [existing] = await drizzle(db)
    .select()
    .from(traceDestinations)
    .where(and(eq(traceDestinations.workspaceId, workspaceId), eq(traceDestinations.id, id)));
  const keepSecret = split.secret === undefined && existing !== undefined && existing.secretCiphertext !== null && sameKind(configOf(existing), split.config);
  if (split.secret === undefined && split.needsSecret && !keepSecret) {
    return { ok: false, code: "bad_request", message: `A ${split.config.type} destination needs its secret fields (${secretFieldsOf(split.config)})` };
  }
  let sealed: { secretCiphertext: string | null; secretIv: string | null; secretHint: string };
  if (split.secret !== undefined) {
    if (!masterKey) return { ok: false, code: "unavailable", message: "Destination secrets cannot be stored: MASTER_KEY is not configured" };
    const { ciphertext, iv } = await encryptSecret(masterKey, scope(workspaceId, id), JSON.stringify(split.secret));
    sealed = { secretCiphertext: ciphertext, secretIv: iv, secretHint: JSON.stringify(secretHint(split.secret)) };
  } else if (keepSecret && existing) {
    sealed = { secretCiphertext: existing.secretCiphertext, secretIv: existing.secretIv, secretHint: existing.secretHint };
  } else {
    sealed = { secretCiphertext: null, secretIv: null, secretHint: "{}" };
  }
  const now = Date.now();
  const row = {
    workspaceId,
    id,
    name: split.settings.name,
    type: split.config.type,
    config: JSON.stringify(split.config),
    ...sealed,
    samplingRate: split.settings.samplingRate,
    apiKeyIds: split.settings.apiKeyIds === null ? null : JSON.stringify(split.settings.apiKeyIds),
    privacyMode: split.settings.privacyMode,
    enabled: split.settings.enabled,
    updatedAt: now,
  };
  const [saved] = await drizzle(db)
    .insert(traceDestinations)
    .values(row)
    .onConflictDoUpdate({ target: [traceDestinations.workspaceId, traceDestinations.id], set: row })
    .returning();
  forgetDestinations(workspaceId);
  if (!saved) throw new Error("destination upsert returned no row");
  return { ok: true, record: recordOf(saved, split.config), created: existing === undefined };
}

/** Whether a stored secret still fits: same type (and for S3, same way of writing). */
function sameKind(before: TargetConfig | null, after: TargetConfig): boolean {
  if (!before || before.type !== after.type) return false;
  return before.type !== "s3" || after.type !== "s3" || before.via === after.via;
}

function secretFieldsOf(config: TargetConfig): string {
  switch (config.type) {
    case "webhook":
      return "signing_secret";
    case "otlp":
      return "secret_headers";
    case "s3":
      return "access_key_id, secret_access_key";
    case "langfuse":
      return "public_key, secret_key";
  }
}

export async function listDestinationRecords(db: D1Database, workspaceId: string): Promise<DestinationRecord[]> {
  const rows = await drizzle(db).select().from(traceDestinations).where(eq(traceDestinations.workspaceId, workspaceId)).orderBy(traceDestinations.id);
  return rows.flatMap((row) => {
    const config = configOf(row);
    return config ? [recordOf(row, config)] : [];
  });
}

export async function getDestinationRecord(db: D1Database, workspaceId: string, id: string): Promise<DestinationRecord | null> {
  const [row] = await drizzle(db)
    .select()
    .from(traceDestinations)
    .where(and(eq(traceDestinations.workspaceId, workspaceId), eq(traceDestinations.id, id)));
  const config = row ? configOf(row) : null;
  return row && config ? recordOf(row, config) : null;
}

/** Remove a destination (its delivery state goes with it); false when there was none. */
export async function deleteDestination(db: D1Database, workspaceId: string, id: string): Promise<boolean> {
  const deleted = await drizzle(db)
    .delete(traceDestinations)
    .where(and(eq(traceDestinations.workspaceId, workspaceId), eq(traceDestinations.id, id)))
    .returning({ id: traceDestinations.id });
  forgetDestinations(workspaceId);
  return deleted.length > 0;
}

/** The workspace's destinations, decrypted, from the isolate cache when fresh. */
export async function getDestinations(env: Pick<Env, "DB" | "MASTER_KEY">, workspaceId: string, now = Date.now()): Promise<readonly Destination[]> {
  const hit = cache.get(workspaceId);
  if (hit && now - hit.loadedAt < CACHE_TTL_MS) return hit.destinations;
  const destinations = await loadDestinations(env, workspaceId);
  cache.delete(workspaceId);
  if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value ?? "");
  cache.set(workspaceId, { destinations, loadedAt: now });
  return destinations;
}

/**
 * Whether this isolate knows the workspace exports traces: true or false from a fresh cache entry,
 * undefined when it does not know (no entry, or a stale one). Synchronous, for the request path.
 */
export function knownToTrace(workspaceId: string, now = Date.now()): boolean | undefined {
  const hit = cache.get(workspaceId);
  if (!hit || now - hit.loadedAt >= CACHE_TTL_MS) return undefined;
  return hit.destinations.some((d) => d.enabled);
}

/** One destination of a workspace (through the cache); null when it does not exist. */
export async function getDestination(env: Pick<Env, "DB" | "MASTER_KEY">, workspaceId: string, id: string): Promise<Destination | null> {
  return (await getDestinations(env, workspaceId)).find((d) => d.id === id) ?? null;
}

async function loadDestinations(env: Pick<Env, "DB" | "MASTER_KEY">, workspaceId: string): Promise<Destination[]> {
  const rows = await drizzle(env.DB).select().from(traceDestinations).where(eq(traceDestinations.workspaceId, workspaceId));
  const masterKey = masterKeyOf(env);
  return Promise.all(rows.map((row) => destinationOf(row, masterKey)));
}

async function destinationOf(row: TraceDestinationRow, masterKey: string | null): Promise<Destination> {
  const base = {
    workspaceId: row.workspaceId,
    id: row.id,
    name: row.name,
    enabled: row.enabled,
    filter: { samplingRate: row.samplingRate, apiKeyIds: parseJson(keyIdsSchema, row.apiKeyIds, null) },
    privacyMode: row.privacyMode,
  };
  const config = configOf(row);
  if (!config) return { ...base, target: null, problem: "the stored configuration is malformed" };
  let secret: unknown = null;
  if (row.secretCiphertext !== null && row.secretIv !== null) {
    const plaintext = masterKey ? await decryptSecret(masterKey, scope(row.workspaceId, row.id), { ciphertext: row.secretCiphertext, iv: row.secretIv }) : null;
    if (plaintext === null) {
      console.error(JSON.stringify({ level: "error", msg: "trace destination secret does not decrypt", workspaceId: row.workspaceId, destinationId: row.id, masterKey: masterKey !== null }));
      return { ...base, target: null, problem: "its secret does not decrypt (MASTER_KEY missing or changed): store the secret again" };
    }
    secret = parseJson(z.unknown(), plaintext, null);
  }
  const target = resolveTarget(config, secret);
  return typeof target === "string" ? { ...base, target: null, problem: target } : { ...base, target, problem: null };
}

/** Drop a workspace's cached destinations (after an admin change in this isolate). */
export function forgetDestinations(workspaceId: string): void {
  cache.delete(workspaceId);
}
