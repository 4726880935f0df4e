/**
 * @module api/models
 * `GET /models` and `GET /models/:author/:slug/endpoints` in OpenRouter's shape: prices as USD per
 * token strings, converted exactly from the catalog's integer µ$ per million tokens.
 */
import { Hono } from "hono";
import { microsUsdString, perTokenUsdString } from "../billing/pricing";
import { getCatalog, type CatalogEndpoint, type CatalogModel } from "../catalog/store";
import type { AppEnv } from "../context";
import { GatewayError } from "../errors";

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

function enabledEndpoints(model: CatalogModel): CatalogEndpoint[] {
  return model.endpoints.filter((e) => e.enabled);
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

export const models = new Hono<AppEnv>()
  .get("/models", async (c) => {
    const catalog = await getCatalog(c.env.DB);
    const data = [];
    for (const model of catalog.models.values()) {
      const endpoints = enabledEndpoints(model);
      if (endpoints.length === 0) continue;
      const cheapest = endpoints.reduce((a, b) => (totalPrice(b) < totalPrice(a) ? b : a));
      data.push(modelJson(model, cheapest));
    }
    data.sort((a, b) => a.id.localeCompare(b.id));
    return c.json({ data });
  })
  .get("/models/:author/:slug/endpoints", async (c) => {
    const id = `${c.req.param("author")}/${c.req.param("slug")}`;
    const model = (await getCatalog(c.env.DB)).models.get(id);
    if (!model) throw new GatewayError("not_found", `Model not found: ${id}`);
    return c.json({
      data: {
        id: model.id,
        name: model.name,
        created: Math.floor(model.createdAt / 1000),
        description: model.description,
        architecture: architectureJson(model),
        endpoints: enabledEndpoints(model).map((e) => ({
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
          status: 0,
          uptime_last_30m: null,
          latency_last_30m: null,
          throughput_last_30m: null,
        })),
      },
    });
  });
