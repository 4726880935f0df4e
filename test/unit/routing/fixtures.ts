import type { Catalog, CatalogEndpoint, CatalogModel } from "../../../src/catalog/store";
import type { Endpoint, Model, Provider } from "../../../src/db/schema";
import type { EndpointHealth, Percentiles } from "../../../src/routing/health-types";
import type { Plan } from "../../../src/routing/plan";
import type { EnvLookup } from "../../../src/routing/targets";
import { chatRequestSchema, type ChatRequest } from "../../../src/schemas/openai";

/** A provider row as D1 returns it; the env prefix is derived from the slug. */
export function provider(slug: string, overrides: Partial<Provider> = {}): Provider {
  return {
    slug,
    name: slug,
    family: "openai",
    envPrefix: slug.toUpperCase().replaceAll("-", "_"),
    baseUrl: `https://api.${slug}.example/v1`,
    region: "global",
    retainsPrompts: false,
    trainsOnData: false,
    zeroRetention: false,
    options: {},
    createdAt: 0,
    ...overrides,
  };
}

/** One endpoint of a model: the provider slug plus whatever the test cares about. */
export type EndpointSpec = Partial<Endpoint> & { provider: Provider | string; parameters?: string[] };

export function endpointOf(modelId: string, spec: EndpointSpec): CatalogEndpoint {
  const { provider: p, parameters, ...row } = spec;
  const prov = typeof p === "string" ? provider(p) : p;
  return {
    id: `${modelId}:${prov.slug}`,
    modelId,
    providerSlug: prov.slug,
    upstreamModel: `${modelId}@${prov.slug}`,
    promptPrice: 1_000_000,
    completionPrice: 1_000_000,
    cacheReadPrice: null,
    cacheWritePrice: null,
    requestPrice: 0,
    contextLength: 131_072,
    maxOutputTokens: 8192,
    quantization: "unknown",
    supportedParameters: [],
    region: null,
    enabled: true,
    createdAt: 0,
    ...row,
    provider: prov,
    effectiveRegion: prov.region,
    parameters: new Set(parameters ?? ["max_tokens", "temperature", "tools", "tool_choice"]),
  };
}

export function modelOf(id: string, specs: EndpointSpec[], overrides: Partial<Model> = {}): CatalogModel {
  return {
    id,
    name: id,
    description: "",
    contextLength: 131_072,
    inputModalities: ["text"],
    outputModalities: ["text"],
    supportedParameters: [],
    tokenizer: "Other",
    createdAt: 0,
    ...overrides,
    endpoints: specs.map((spec) => endpointOf(id, spec)),
  };
}

export function catalogOf(...models: CatalogModel[]): Catalog {
  return {
    models: new Map(models.map((m) => [m.id, m])),
    providers: new Map(models.flatMap((m) => m.endpoints.map((e) => [e.provider.slug, e.provider] as const))),
  };
}

/** Every provider has a credential; base URLs come from the provider rows. */
export const anyKey: EnvLookup = (name) => (name.endsWith("_API_KEY") ? `key-for-${name}` : undefined);

export function chatRequest(body: Record<string, unknown> = {}): ChatRequest {
  return chatRequestSchema.parse({ messages: [{ role: "user", content: "Hi" }], ...body });
}

/** USD per million tokens → µ$ per million tokens, for readable price tables. */
export const usd = (dollars: number) => Math.round(dollars * 1_000_000);

const flat = (n: number): Percentiles => ({ p50: n, p75: n, p90: n, p99: n });

/** A healthy endpoint's health with no measurements; override what the test needs. */
export function healthOf(overrides: Partial<EndpointHealth> & { tps?: number | Percentiles; latency?: number | Percentiles } = {}): EndpointHealth {
  const { tps, latency, ...rest } = overrides;
  return {
    lastOutageAt: null,
    breaker: "closed",
    openUntil: null,
    retryAfterUntil: null,
    uptime: null,
    latencyMs: latency === undefined ? null : typeof latency === "number" ? flat(latency) : latency,
    throughputTps: tps === undefined ? null : typeof tps === "number" ? flat(tps) : tps,
    ...rest,
  };
}

/** mulberry32: a tiny seeded PRNG, so load-balancing tests are reproducible. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The plan's candidates as provider slugs, in the order they will be tried. */
export const providersOf = (plan: Plan) => plan.candidates.map((c) => c.endpoint.providerSlug);

/** The plan's candidates as "model@provider". */
export const routeOf = (plan: Plan) => plan.candidates.map((c) => `${c.model.id}@${c.endpoint.providerSlug}`);

/** Table rows as [name, row], so test titles show the whole name. */
export function named<T extends { name: string }>(rows: T[]): [string, T][] {
  return rows.map((row) => [row.name, row]);
}
