/**
 * @module api/admin/catalog
 * Editing the catalog: seed it from the committed prices, upsert providers, models and
 * endpoints. Every change drops this isolate's catalog cache.
 */
import { Hono } from "hono";
import type { AppEnv } from "../../context";
import { GatewayError } from "../../errors";
import {
  deleteEndpoint,
  loadCatalog,
  invalidateCatalog,
  seedCatalog,
  upsertEndpoint,
  upsertModel,
  upsertProvider,
  writeCatalog,
} from "../../catalog/store";
import { endpointId, endpointInputSchema, modelInputSchema, providerInputSchema } from "../../catalog/seed-schema";
import { readJsonBody, validate } from "../validate";

const providerBody = providerInputSchema.omit({ slug: true });
const modelBody = modelInputSchema.omit({ id: true });
const endpointBody = endpointInputSchema.omit({ modelId: true, providerSlug: true });

export const catalogAdmin = new Hono<AppEnv>()
  .post("/catalog/seed", async (c) => {
    const seed = seedCatalog();
    await writeCatalog(c.env.DB, seed);
    invalidateCatalog();
    return c.json({ data: { providers: seed.providers.length, models: seed.models.length, endpoints: seed.endpoints.length } });
  })
  .get("/providers", async (c) => {
    const catalog = await loadCatalog(c.env.DB);
    return c.json({ data: [...catalog.providers.values()] });
  })
  .put("/providers/:slug", async (c) => {
    const provider = validate(providerInputSchema, { ...validate(providerBody, await readJsonBody(c.req.raw)), slug: c.req.param("slug") });
    await upsertProvider(c.env.DB, provider);
    invalidateCatalog();
    return c.json({ data: provider });
  })
  .put("/models/:author/:slug", async (c) => {
    const model = validate(modelInputSchema, {
      ...validate(modelBody, await readJsonBody(c.req.raw)),
      id: `${c.req.param("author")}/${c.req.param("slug")}`,
    });
    await upsertModel(c.env.DB, model);
    invalidateCatalog();
    return c.json({ data: model });
  })
  .put("/models/:author/:slug/endpoints/:provider", async (c) => {
    const modelId = `${c.req.param("author")}/${c.req.param("slug")}`;
    const providerSlug = c.req.param("provider");
    const body = validate(endpointBody, await readJsonBody(c.req.raw));
    const catalog = await loadCatalog(c.env.DB);
    if (!catalog.models.has(modelId)) throw new GatewayError("not_found", `Model not found: ${modelId}`);
    if (!catalog.providers.has(providerSlug)) throw new GatewayError("not_found", `Provider not found: ${providerSlug}`);
    const id = await upsertEndpoint(c.env.DB, { ...body, modelId, providerSlug });
    invalidateCatalog();
    return c.json({ data: { id, modelId, providerSlug, ...body } });
  })
  .delete("/models/:author/:slug/endpoints/:provider", async (c) => {
    const id = endpointId(`${c.req.param("author")}/${c.req.param("slug")}`, c.req.param("provider"));
    if (!(await deleteEndpoint(c.env.DB, id))) throw new GatewayError("not_found", `Endpoint not found: ${id}`);
    invalidateCatalog();
    return c.json({ data: { id, deleted: true } });
  });
