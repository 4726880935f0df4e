/**
 * @module api/models
 * `GET /models` and `GET /models/:author/:slug/endpoints` in OpenRouter's shape: prices as USD per
 * token strings, converted exactly from the catalog's integer µ$ per million tokens; endpoint
 * uptime, latency and throughput over the last 30 minutes from the region's Health object.
 *
 * The listing is public, but on an EU hostname, or with the key of an `eu` workspace
 * (`Authorization` is optional here), it shows only what an EU-pinned workspace can use: EU
 * endpoints, and the models that have one.
 */
import type { Context } from "hono";
import { Hono } from "hono";
import { optionalApiKey } from "../auth/middleware";
import { microsUsdString, perTokenUsdString } from "../billing/pricing";
import { getCatalog, type CatalogEndpoint, type CatalogModel } from "../catalog/store";
import type { AppEnv } from "../context";
import { GatewayError } from "../errors";
import type { EndpointHealth } from "../routing/health-types";
import { residentHealth } from "../residency/bindings";
import { policyOf } from "../residency/policy";
import { endpointAllowed, type WorkspaceRegion } from "../residency/regions";

function pricingJson(e: CatalogEndpoint) {
  return {
    prompt: perTokenUsdString(e.promptPrice),
    completion: perTokenUsdString(e.completionPrice),
    request: microsUsdString(e.requestPrice),
    image: "0",
    input_cache_read: perTokenUsdString(e.cacheReadPrice ?? e.promptPrice),
    input_cache_write: perTokenUsdString(e.cacheWritePrice ?? e.promptPrice),
  };
}

function enabledEndpoints(model: CatalogModel, region: WorkspaceRegion): CatalogEndpoint[] {
  return model.endpoints.filter((e) => e.enabled && endpointAllowed(region, e.effectiveRegion));
}

/** `eu` on an EU hostname or for an `eu` workspace's key; `global` otherwise (no key, or an unusable one). */
async function listingRegion(c: Context<AppEnv>): Promise<WorkspaceRegion> {
  if (c.get("ingress") === "eu") return "eu";
  const auth = await optionalApiKey(c.env.DB, c.req.header("authorization"));
  return auth ? policyOf(auth.workspace).region : "global";
}

function architectureJson(model: CatalogModel) {
  return {
    modality: `${model.inputModalities.join("+")}->${model.outputModalities.join("+")}`,
    input_modalities: model.inputModalities,
    output_modalities: model.outputModalities,
    tokenizer: model.tokenizer,
  };
}

function modelJson(model: CatalogModel, cheapest: CatalogEndpoint) {
  return {
    id: model.id,
    canonical_slug: model.id,
    name: model.name,
    created: Math.floor(model.createdAt / 1000),
    description: model.description,
    context_length: model.contextLength,
    architecture: architectureJson(model),
    pricing: pricingJson(cheapest),
    top_provider: {
      context_length: cheapest.contextLength,
      max_completion_tokens: cheapest.maxOutputTokens,
      is_moderated: false,
    },
    supported_parameters: model.supportedParameters,
  };
}

const totalPrice = (e: CatalogEndpoint) => e.promptPrice + e.completionPrice;

/**
 * The region's endpoint health, fresh from its Health object: a listing may afford one call, and
 * it should not show an isolate's stale view. Without it the fields are null, as for no data.
 */
async function healthById(env: Env, region: WorkspaceRegion): Promise<Map<string, EndpointHealth>> {
  const namespace = residentHealth(env, region);
  if (!namespace.ok) {
    console.error(JSON.stringify({ level: "warn", msg: "health unavailable in region", region, problem: namespace.problem }));
    return new Map();
  }
  try {
    const snapshot = await namespace.value.getByName(region).snapshot();
    return new Map(snapshot.endpoints.map((e) => [e.endpointId, e.health]));
  } catch (error) {
    console.error(JSON.stringify({ level: "warn", msg: "health snapshot unavailable", error: String(error) }));
    return new Map();
  }
}

/** OpenRouter's status: 0 up; negative when the endpoint is failing (breaker open: -2, half-open: -1). */
function statusOf(health: EndpointHealth | undefined): number {
  if (!health || health.breaker === "closed") return 0;
  return health.breaker === "open" ? -2 : -1;
}

const rounded = (p: { p50: number; p75: number; p90: number; p99: number } | null) =>
  p ? { p50: Math.round(p.p50 * 10) / 10, p75: Math.round(p.p75 * 10) / 10, p90: Math.round(p.p90 * 10) / 10, p99: Math.round(p.p99 * 10) / 10 } : null;

export const models = new Hono<AppEnv>()
  .get("/models", async (c) => {
    const [catalog, region] = await Promise.all([getCatalog(c.env.DB), listingRegion(c)]);
    const data = [];
    for (const model of catalog.models.values()) {
      const endpoints = enabledEndpoints(model, region);
      if (endpoints.length === 0) continue;
      const cheapest = endpoints.reduce((a, b) => (totalPrice(b) < totalPrice(a) ? b : a));
      data.push(modelJson(model, cheapest));
    }
    data.sort((a, b) => a.id.localeCompare(b.id));
    return c.json({ data });
  })
  .get("/models/:author/:slug/endpoints", async (c) => {
    const id = `${c.req.param("author")}/${c.req.param("slug")}`;
    const [catalog, region] = await Promise.all([getCatalog(c.env.DB), listingRegion(c)]);
    const model = catalog.models.get(id);
    if (!model) throw new GatewayError("not_found", `Model not found: ${id}`);
    const endpoints = enabledEndpoints(model, region);
    if (region !== "global" && endpoints.length === 0) {
      throw new GatewayError("not_found", `Model ${id} has no endpoint in region ${region}`, { metadata: { reason: "region_restricted", region } });
    }
    const health = await healthById(c.env, region);
    return c.json({
      data: {
        id: model.id,
        name: model.name,
        created: Math.floor(model.createdAt / 1000),
        description: model.description,
        architecture: architectureJson(model),
        endpoints: endpoints.map((e) => ({
          name: `${e.provider.name} | ${model.id}`,
          provider_name: e.provider.name,
          tag: e.providerSlug,
          model_name: model.name,
          context_length: e.contextLength,
          max_completion_tokens: e.maxOutputTokens,
          max_prompt_tokens: null,
          pricing: pricingJson(e),
          quantization: e.quantization,
          supported_parameters: [...e.parameters],
          region: e.effectiveRegion,
          status: statusOf(health.get(e.id)),
          uptime_last_30m: health.get(e.id)?.uptime ?? null,
          // Milliseconds to the first token, and output tokens per second.
          latency_last_30m: rounded(health.get(e.id)?.latencyMs ?? null),
          throughput_last_30m: rounded(health.get(e.id)?.throughputTps ?? null),
        })),
      },
    });
  });
