/**
 * @module catalog/store
 * Writing the catalog to D1 (seed and admin edits) and reading it whole into an isolate cache.
 * The catalog is small (hundreds of rows) and read on every request, so the hot path reads it
 * from memory; a miss costs one D1 batch of three queries.
 */
import { eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { endpoints, models, providers, type Endpoint, type Model, type Provider, type Region } from "../db/schema";
import {
  catalogSeedSchema,
  endpointId,
  type CatalogSeed,
  type EndpointInput,
  type ModelInput,
  type ProviderInput,
} from "./seed-schema";
import seedJson from "./seed.json";

export interface CatalogEndpoint extends Endpoint {
  provider: Provider;
  /** The endpoint's region, or its provider's. */
  effectiveRegion: Region;
  /** The endpoint's parameters, or the model's. */
  parameters: ReadonlySet<string>;
}

export interface CatalogModel extends Model {
  endpoints: CatalogEndpoint[];
}

export interface Catalog {
  models: Map<string, CatalogModel>;
  providers: Map<string, Provider>;
}

const CACHE_TTL_MS = 60_000;
let cached: { catalog: Catalog; loadedAt: number } | undefined;

/** The catalog, from the isolate cache when it is fresh. */
export async function getCatalog(db: D1Database, now = Date.now()): Promise<Catalog> {
  if (cached && now - cached.loadedAt < CACHE_TTL_MS) return cached.catalog;
  const catalog = await loadCatalog(db);
  cached = { catalog, loadedAt: now };
  return catalog;
}

/** Forget the cached catalog (after an admin edit in this isolate). Others expire within the TTL. */
export function invalidateCatalog(): void {
  cached = undefined;
}

/** The catalog straight from D1, bypassing the cache (admin reads). */
export async function loadCatalog(db: D1Database): Promise<Catalog> {
  const orm = drizzle(db);
  const [providerRows, modelRows, endpointRows] = await orm.batch([
    orm.select().from(providers),
    orm.select().from(models),
    orm.select().from(endpoints),
  ]);
  const providerMap = new Map(providerRows.map((p) => [p.slug, p]));
  const modelMap = new Map<string, CatalogModel>(modelRows.map((m) => [m.id, { ...m, endpoints: [] }]));
  for (const row of endpointRows) {
    const model = modelMap.get(row.modelId);
    const provider = providerMap.get(row.providerSlug);
    if (!model || !provider) continue;
    model.endpoints.push({
      ...row,
      provider,
      effectiveRegion: row.region ?? provider.region,
      parameters: new Set(row.supportedParameters.length ? row.supportedParameters : model.supportedParameters),
    });
  }
  return { models: modelMap, providers: providerMap };
}

function endpointRow(e: EndpointInput) {
  return { id: endpointId(e.modelId, e.providerSlug), ...e };
}

export async function upsertProvider(db: D1Database, p: ProviderInput): Promise<void> {
  await drizzle(db).insert(providers).values(p).onConflictDoUpdate({ target: providers.slug, set: p });
}

export async function upsertModel(db: D1Database, m: ModelInput): Promise<void> {
  await drizzle(db).insert(models).values(m).onConflictDoUpdate({ target: models.id, set: m });
}

export async function upsertEndpoint(db: D1Database, e: EndpointInput): Promise<string> {
  const row = endpointRow(e);
  await drizzle(db).insert(endpoints).values(row).onConflictDoUpdate({ target: endpoints.id, set: row });
  return row.id;
}

export async function deleteEndpoint(db: D1Database, id: string): Promise<boolean> {
  const deleted = await drizzle(db).delete(endpoints).where(eq(endpoints.id, id)).returning({ id: endpoints.id });
  return deleted.length > 0;
}

/** The committed seed, validated (prices converted to µ$). */
export function seedCatalog(): CatalogSeed {
  return catalogSeedSchema.parse(seedJson);
}

/** Upsert a whole catalog in one D1 batch (atomic). */
export async function writeCatalog(db: D1Database, catalog: CatalogSeed): Promise<void> {
  const orm = drizzle(db);
  const statements = [
    ...catalog.providers.map((p) => orm.insert(providers).values(p).onConflictDoUpdate({ target: providers.slug, set: p })),
    ...catalog.models.map((m) => orm.insert(models).values(m).onConflictDoUpdate({ target: models.id, set: m })),
    ...catalog.endpoints.map((e) => {
      const row = endpointRow(e);
      return orm.insert(endpoints).values(row).onConflictDoUpdate({ target: endpoints.id, set: row });
    }),
  ];
  const [first, ...rest] = statements;
  if (first) await orm.batch([first, ...rest]);
}
