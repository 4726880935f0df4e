import { describe, expect, it } from "vitest";
import type { Catalog, CatalogEndpoint, CatalogModel } from "../../../src/catalog/store";
import type { Endpoint, Model, Provider } from "../../../src/db/schema";
import { provider } from "./fixtures";
import { describeExclusions, planRoute, type Exclusion, type Plan } from "../../../src/routing/plan";
import { resolveTarget, type EnvLookup } from "../../../src/routing/targets";
import { chatRequestSchema, type ChatRequest } from "../../../src/schemas/openai";

const PROVIDERS = {
  openai: provider("openai", { baseUrl: "https://api.openai.com/v1" }),
  azureEu: provider("azure-eu", {
    baseUrl: null,
    envPrefix: "AZURE_OPENAI_EU",
    region: "eu",
    options: { auth: "api-key", deploymentInPath: true, apiVersion: "2024-10-21" },
  }),
  groq: provider("groq", { baseUrl: "https://api.groq.com/openai/v1" }),
  together: provider("together", { baseUrl: "https://api.together.xyz/v1" }),
  mistral: provider("mistral", { baseUrl: "https://api.mistral.ai/v1", region: "eu" }),
  deepinfra: provider("deepinfra", { baseUrl: "https://api.deepinfra.com/v1/openai" }),
};

type EndpointSpec = {
  provider: Provider;
  /** µ$ per million tokens. */
  prompt: number;
  completion: number;
  parameters?: string[];
  enabled?: boolean;
};

function endpoint(modelId: string, spec: EndpointSpec): CatalogEndpoint {
  const row: Endpoint = {
    id: `${modelId}:${spec.provider.slug}`,
    modelId,
    providerSlug: spec.provider.slug,
    upstreamModel: `${modelId.split("/")[1] ?? modelId}@${spec.provider.slug}`,
    promptPrice: spec.prompt,
    completionPrice: spec.completion,
    cacheReadPrice: null,
    cacheWritePrice: null,
    requestPrice: 0,
    contextLength: 131072,
    maxOutputTokens: 8192,
    quantization: "unknown",
    supportedParameters: spec.parameters ?? [],
    region: null,
    enabled: spec.enabled ?? true,
    createdAt: 0,
  };
  return {
    ...row,
    provider: spec.provider,
    effectiveRegion: spec.provider.region,
    parameters: new Set(spec.parameters ?? ["max_tokens", "temperature", "tools", "tool_choice"]),
  };
}

function model(id: string, specs: EndpointSpec[], overrides: Partial<Model> = {}): CatalogModel {
  return {
    id,
    name: id,
    description: "",
    contextLength: 131072,
    inputModalities: ["text"],
    outputModalities: ["text"],
    supportedParameters: [],
    tokenizer: "Other",
    createdAt: 0,
    ...overrides,
    endpoints: specs.map((spec) => endpoint(id, spec)),
  };
}

function catalogOf(...models: CatalogModel[]): Catalog {
  return {
    models: new Map(models.map((m) => [m.id, m])),
    providers: new Map(models.flatMap((m) => m.endpoints.map((e) => [e.provider.slug, e.provider] as const))),
  };
}

/** Every provider above has a key unless a test says otherwise. */
const ALL_KEYS: Record<string, string> = {
  OPENAI_API_KEY: "sk-openai",
  AZURE_OPENAI_EU_API_KEY: "azure-key",
  AZURE_OPENAI_EU_BASE_URL: "https://switchyard-eu.openai.azure.com",
  GROQ_API_KEY: "gsk-groq",
  TOGETHER_API_KEY: "tgp-together",
  MISTRAL_API_KEY: "mistral-key",
  DEEPINFRA_API_KEY: "deepinfra-key",
};

function envOf(vars: Readonly<Record<string, string | undefined>> = ALL_KEYS): EnvLookup {
  return (name) => vars[name];
}

function without(...names: string[]): EnvLookup {
  return envOf(Object.fromEntries(Object.entries(ALL_KEYS).filter(([name]) => !names.includes(name))));
}

function chat(body: Record<string, unknown> = {}): ChatRequest {
  return chatRequestSchema.parse({ messages: [{ role: "user", content: "Hi" }], ...body });
}

const WITH_TOOLS = {
  tools: [{ type: "function", function: { name: "get_weather", parameters: { type: "object", properties: {} } } }],
};

const WITH_IMAGE = {
  messages: [
    {
      role: "user",
      content: [
        { type: "text", text: "What is in this picture?" },
        { type: "image_url", image_url: { url: "https://upload.example.org/cat.jpg" } },
      ],
    },
  ],
};

/** Table rows as [name, row], so test titles show the whole name instead of a truncated preview. */
function named<T extends { name: string }>(rows: T[]): [string, T][] {
  return rows.map((row) => [row.name, row]);
}

/** The plan's candidates as "model@provider", the order clients will be tried in. */
function route(plan: Plan): string[] {
  return plan.candidates.map((c) => `${c.model.id}@${c.endpoint.providerSlug}`);
}

const LLAMA = "meta-llama/llama-3.3-70b-instruct";
const MISTRAL_SMALL = "mistralai/mistral-small-3.2";
const GPT = "openai/gpt-4o-mini";

const llama = model(LLAMA, [
  { provider: PROVIDERS.together, prompt: 880_000, completion: 880_000 },
  { provider: PROVIDERS.groq, prompt: 590_000, completion: 790_000, parameters: ["max_tokens", "temperature"] },
  { provider: PROVIDERS.deepinfra, prompt: 230_000, completion: 400_000 },
]);
const mistralSmall = model(MISTRAL_SMALL, [
  { provider: PROVIDERS.mistral, prompt: 100_000, completion: 300_000 },
  { provider: PROVIDERS.deepinfra, prompt: 50_000, completion: 100_000, enabled: false },
]);
const gpt = model(
  GPT,
  [
    { provider: PROVIDERS.openai, prompt: 150_000, completion: 600_000 },
    { provider: PROVIDERS.azureEu, prompt: 165_000, completion: 660_000 },
  ],
  { inputModalities: ["text", "image"] },
);
const catalog = catalogOf(llama, mistralSmall, gpt);

describe("planRoute", () => {
  it("orders a model's endpoints cheapest first by prompt plus completion price", () => {
    const plan = planRoute(catalog, [LLAMA], chat(), envOf());
    expect(route(plan)).toEqual([`${LLAMA}@deepinfra`, `${LLAMA}@groq`, `${LLAMA}@together`]);
    expect(plan.excluded).toEqual([]);
    expect(plan.unknownModels).toEqual([]);
  });

  it.each(named([
    {
      name: "ties keep catalog order",
      specs: [
        { slug: "together", prompt: 300, completion: 700 },
        { slug: "groq", prompt: 500, completion: 500 },
        { slug: "deepinfra", prompt: 100, completion: 100 },
        { slug: "mistral", prompt: 600, completion: 400 },
      ],
      expected: ["deepinfra", "together", "groq", "mistral"],
    },
    {
      name: "ties keep catalog order when the catalog is reversed",
      specs: [
        { slug: "mistral", prompt: 600, completion: 400 },
        { slug: "groq", prompt: 500, completion: 500 },
        { slug: "together", prompt: 300, completion: 700 },
      ],
      expected: ["mistral", "groq", "together"],
    },
    {
      name: "the sum decides, not the prompt price alone",
      specs: [
        { slug: "groq", prompt: 100, completion: 5_000 },
        { slug: "together", prompt: 1_000, completion: 1_000 },
      ],
      expected: ["together", "groq"],
    },
    {
      name: "free endpoints come first",
      specs: [
        { slug: "together", prompt: 1, completion: 0 },
        { slug: "groq", prompt: 0, completion: 0 },
      ],
      expected: ["groq", "together"],
    },
  ]))("sorts by price: %s", (_name, { specs, expected }) => {
    const bySlug = new Map(Object.values(PROVIDERS).map((p) => [p.slug, p]));
    const m = model("acme/model", specs.map(({ slug, prompt, completion }) => ({ provider: bySlug.get(slug) ?? provider(slug), prompt, completion })));
    expect(planRoute(catalogOf(m), ["acme/model"], chat(), envOf()).candidates.map((c) => c.endpoint.providerSlug)).toEqual(expected);
  });

  it.each([
    { order: ["together"], expected: ["together", "deepinfra", "groq"] },
    { order: ["together", "groq"], expected: ["together", "groq", "deepinfra"] },
    { order: ["groq", "together"], expected: ["groq", "together", "deepinfra"] },
    { order: ["openai", "together"], expected: ["together", "deepinfra", "groq"] },
    { order: [], expected: ["deepinfra", "groq", "together"] },
  ])("puts provider.order $order first, in that order, then the rest cheapest first", ({ order, expected }) => {
    const plan = planRoute(catalog, [LLAMA], chat({ provider: { order } }), envOf());
    expect(plan.candidates.map((c) => c.endpoint.providerSlug)).toEqual(expected);
  });

  it("tries the next model of a models list only after every endpoint of the first", () => {
    const plan = planRoute(catalog, [MISTRAL_SMALL, LLAMA, GPT], chat(), envOf());
    expect(route(plan)).toEqual([
      `${MISTRAL_SMALL}@mistral`,
      `${LLAMA}@deepinfra`,
      `${LLAMA}@groq`,
      `${LLAMA}@together`,
      `${GPT}@openai`,
      `${GPT}@azure-eu`,
    ]);
  });

  it("applies provider.order within each model, never moving a later model ahead", () => {
    const plan = planRoute(catalog, [GPT, LLAMA], chat({ provider: { order: ["together", "azure-eu"] } }), envOf());
    expect(route(plan)).toEqual([`${GPT}@azure-eu`, `${GPT}@openai`, `${LLAMA}@together`, `${LLAMA}@deepinfra`, `${LLAMA}@groq`]);
  });

  it("ignores a model listed twice", () => {
    const plan = planRoute(catalog, [MISTRAL_SMALL, LLAMA, MISTRAL_SMALL, "acme/missing", "acme/missing"], chat(), envOf());
    expect(route(plan)).toEqual([`${MISTRAL_SMALL}@mistral`, `${LLAMA}@deepinfra`, `${LLAMA}@groq`, `${LLAMA}@together`]);
    expect(plan.excluded).toEqual([{ model: MISTRAL_SMALL, provider: "deepinfra", constraint: "status=disabled", reason: "endpoint disabled" }]);
    expect(plan.unknownModels).toEqual(["acme/missing"]);
  });

  it("reports unknown models in request order and still plans the known ones", () => {
    const plan = planRoute(catalog, ["acme/nope", MISTRAL_SMALL, "openai/gpt-7"], chat(), envOf());
    expect(plan.unknownModels).toEqual(["acme/nope", "openai/gpt-7"]);
    expect(route(plan)).toEqual([`${MISTRAL_SMALL}@mistral`]);
  });

  it("returns an empty plan for an empty catalog", () => {
    expect(planRoute(catalogOf(), [GPT], chat(), envOf())).toEqual({ candidates: [], excluded: [], unknownModels: [GPT] });
  });

  describe("exclusions", () => {
    it.each(named([
      {
        name: "excludes an endpoint whose provider has no key, naming the variable",
        models: [LLAMA],
        request: {},
        env: without("GROQ_API_KEY"),
        excluded: [{ model: LLAMA, provider: "groq", constraint: "no credential configured (GROQ_API_KEY)", reason: "no credential configured (GROQ_API_KEY)" }],
        kept: [`${LLAMA}@deepinfra`, `${LLAMA}@together`],
      },
      {
        name: "excludes an endpoint with neither an environment nor a catalog base URL, naming the variable",
        models: [GPT],
        request: {},
        env: without("AZURE_OPENAI_EU_BASE_URL"),
        excluded: [{ model: GPT, provider: "azure-eu", constraint: "no base URL configured (AZURE_OPENAI_EU_BASE_URL)", reason: "no base URL configured (AZURE_OPENAI_EU_BASE_URL)" }],
        kept: [`${GPT}@openai`],
      },
      {
        name: "excludes a disabled endpoint",
        models: [MISTRAL_SMALL],
        request: {},
        env: envOf(),
        excluded: [{ model: MISTRAL_SMALL, provider: "deepinfra", constraint: "status=disabled", reason: "endpoint disabled" }],
        kept: [`${MISTRAL_SMALL}@mistral`],
      },
      {
        name: "reports a disabled endpoint as disabled even when its key is missing too",
        models: [MISTRAL_SMALL],
        request: {},
        env: without("DEEPINFRA_API_KEY"),
        excluded: [{ model: MISTRAL_SMALL, provider: "deepinfra", constraint: "status=disabled", reason: "endpoint disabled" }],
        kept: [`${MISTRAL_SMALL}@mistral`],
      },
      {
        name: "excludes an endpoint without tool support when the request has tools",
        models: [LLAMA],
        request: WITH_TOOLS,
        env: envOf(),
        excluded: [{ model: LLAMA, provider: "groq", constraint: "tool use", reason: "does not support tool use" }],
        kept: [`${LLAMA}@deepinfra`, `${LLAMA}@together`],
      },
      {
        name: "requires no tool support when the tool list is empty",
        models: [LLAMA],
        request: { tools: [] },
        env: envOf(),
        excluded: [],
        kept: [`${LLAMA}@deepinfra`, `${LLAMA}@groq`, `${LLAMA}@together`],
      },
      {
        name: "reports missing tool support before a missing key",
        models: [LLAMA],
        request: WITH_TOOLS,
        env: without("GROQ_API_KEY"),
        excluded: [{ model: LLAMA, provider: "groq", constraint: "tool use", reason: "does not support tool use" }],
        kept: [`${LLAMA}@deepinfra`, `${LLAMA}@together`],
      },
      {
        name: "excludes every endpoint of a text-only model when the request has an image",
        models: [LLAMA, GPT],
        request: WITH_IMAGE,
        env: envOf(),
        excluded: [
          { model: LLAMA, provider: "together", constraint: "image input", reason: "does not accept image input" },
          { model: LLAMA, provider: "groq", constraint: "image input", reason: "does not accept image input" },
          { model: LLAMA, provider: "deepinfra", constraint: "image input", reason: "does not accept image input" },
        ],
        kept: [`${GPT}@openai`, `${GPT}@azure-eu`],
      },
      {
        name: "keeps a multimodal model when the image is in an earlier turn",
        models: [GPT],
        request: { messages: [...WITH_IMAGE.messages, { role: "assistant", content: "A cat." }, { role: "user", content: "Thanks" }] },
        env: envOf(),
        excluded: [],
        kept: [`${GPT}@openai`, `${GPT}@azure-eu`],
      },
    ]))("%s", (_name, { models, request, env, excluded, kept }) => {
      const plan = planRoute(catalog, models, chat(request), env);
      expect(plan.excluded).toEqual(excluded);
      expect(route(plan)).toEqual(kept);
    });

    it("excludes image input from a text-only model even when the image is in an earlier turn", () => {
      const request = chat({ messages: [...WITH_IMAGE.messages, { role: "assistant", content: "A cat." }, { role: "user", content: "Thanks" }] });
      const plan = planRoute(catalog, [MISTRAL_SMALL], request, envOf());
      expect(plan.excluded).toEqual([
        { model: MISTRAL_SMALL, provider: "mistral", constraint: "image input", reason: "does not accept image input" },
        { model: MISTRAL_SMALL, provider: "deepinfra", constraint: "status=disabled", reason: "endpoint disabled" },
      ]);
      expect(plan.candidates).toEqual([]);
    });

    it("reads tool support from the endpoint's own parameters", () => {
      const onlyGroqHasTools = model(LLAMA, [
        { provider: PROVIDERS.together, prompt: 1, completion: 1, parameters: ["max_tokens"] },
        { provider: PROVIDERS.groq, prompt: 2, completion: 2, parameters: ["max_tokens", "tools", "tool_choice"] },
      ]);
      const plan = planRoute(catalogOf(onlyGroqHasTools), [LLAMA], chat(WITH_TOOLS), envOf());
      expect(route(plan)).toEqual([`${LLAMA}@groq`]);
      expect(plan.excluded).toEqual([{ model: LLAMA, provider: "together", constraint: "tool use", reason: "does not support tool use" }]);
    });
  });

  describe("targets", () => {
    it("gives each candidate a target resolved from its provider row and the environment", () => {
      const plan = planRoute(catalog, [GPT], chat(), envOf());
      expect(plan.candidates.map((c) => c.target)).toEqual([
        {
          family: "openai",
          baseUrl: "https://api.openai.com/v1",
          apiKey: "sk-openai",
          model: "gpt-4o-mini@openai",
          maxOutputTokens: 8192,
          options: {},
        },
        {
          family: "openai",
          baseUrl: "https://switchyard-eu.openai.azure.com",
          apiKey: "azure-key",
          model: "gpt-4o-mini@azure-eu",
          maxOutputTokens: 8192,
          options: { auth: "api-key", deploymentInPath: true, apiVersion: "2024-10-21" },
        },
      ]);
    });
  });
});

describe("resolveTarget", () => {
  const groqEndpoint = endpoint(LLAMA, { provider: PROVIDERS.groq, prompt: 1, completion: 1 });

  it.each(named([
    {
      name: "the environment's base URL wins over the row's",
      env: { GROQ_API_KEY: "gsk-1", GROQ_BASE_URL: "https://groq.egress-proxy.internal/openai/v1" },
      expected: { ok: true, baseUrl: "https://groq.egress-proxy.internal/openai/v1" },
    },
    {
      name: "the row's base URL is used when the environment has none",
      env: { GROQ_API_KEY: "gsk-1" },
      expected: { ok: true, baseUrl: "https://api.groq.com/openai/v1" },
    },
    {
      name: "a missing key is refused with the variable's name",
      env: { GROQ_BASE_URL: "https://groq.egress-proxy.internal/openai/v1" },
      expected: { ok: false, reason: "no credential configured (GROQ_API_KEY)" },
    },
  ]))("%s", (_name, { env, expected }) => {
    const result = resolveTarget(groqEndpoint, envOf(env));
    expect(result.ok ? { ok: true, baseUrl: result.target.baseUrl } : result).toEqual(expected);
  });

  it("refuses an endpoint whose row has no base URL and whose environment has none", () => {
    const azure = endpoint(GPT, { provider: PROVIDERS.azureEu, prompt: 1, completion: 1 });
    expect(resolveTarget(azure, envOf({ AZURE_OPENAI_EU_API_KEY: "azure-key" }))).toEqual({
      ok: false,
      reason: "no base URL configured (AZURE_OPENAI_EU_BASE_URL)",
    });
  });

  it("uses the endpoint's upstream model, output cap and provider options", () => {
    const result = resolveTarget(groqEndpoint, envOf({ GROQ_API_KEY: "gsk-1" }));
    expect(result).toEqual({
      ok: true,
      target: {
        family: "openai",
        baseUrl: "https://api.groq.com/openai/v1",
        apiKey: "gsk-1",
        model: "llama-3.3-70b-instruct@groq",
        maxOutputTokens: 8192,
        options: {},
      },
    });
  });
});

describe("describeExclusions", () => {
  const exclusion = (provider: string, constraint: string, reason = constraint): Exclusion => ({ model: LLAMA, provider, constraint, reason });

  it.each(named([
    { name: "nothing excluded", excluded: [], expected: "" },
    { name: "one exclusion", excluded: [exclusion("groq", "status=disabled", "endpoint disabled")], expected: "status=disabled removed 1 endpoint (groq)" },
    {
      name: "endpoints counted per constraint, providers named, constraints in first-seen order",
      excluded: [
        exclusion("groq", "tool use", "does not support tool use"),
        exclusion("mistral", "status=disabled", "endpoint disabled"),
        exclusion("together", "tool use", "does not support tool use"),
      ],
      expected: "tool use removed 2 endpoints (groq, together); status=disabled removed 1 endpoint (mistral)",
    },
    {
      name: "different reasons under one constraint are counted together",
      excluded: [
        exclusion("groq", "max_price", "max_price.prompt"),
        exclusion("together", "max_price", "max_price.completion"),
        exclusion("deepinfra", "max_price", "max_price.request"),
        exclusion("deepseek", "data_collection=deny", "data_collection=deny (provider retains or trains on prompts)"),
        exclusion("mistral", "data_collection=deny", "data_collection=deny (provider retains or trains on prompts)"),
      ],
      expected: "max_price removed 3 endpoints (groq, together, deepinfra); data_collection=deny removed 2 endpoints (deepseek, mistral)",
    },
    {
      name: "a provider excluded for the same constraint under two models: two endpoints, named once",
      excluded: [exclusion("groq", "status=disabled"), { model: "other/model", provider: "groq", constraint: "status=disabled", reason: "endpoint disabled" }],
      expected: "status=disabled removed 2 endpoints (groq)",
    },
  ]))("describes %s", (_name, { excluded, expected }) => {
    expect(describeExclusions(excluded)).toBe(expected);
  });

  it("describes a real plan's exclusions", () => {
    const plan = planRoute(catalog, [LLAMA, MISTRAL_SMALL], chat(WITH_TOOLS), without("TOGETHER_API_KEY"));
    expect(describeExclusions(plan.excluded)).toBe(
      "no credential configured (TOGETHER_API_KEY) removed 1 endpoint (together); tool use removed 1 endpoint (groq); status=disabled removed 1 endpoint (deepinfra)",
    );
  });
});

describe("planRoute with the workspace's own keys (BYOK)", () => {
  const keys = (entries: Record<string, string>) => new Map(Object.entries(entries));

  it("tries BYOK endpoints first, keeping price order within each group", () => {
    const plan = planRoute(catalog, [LLAMA], chat(), envOf(), { byok: keys({ together: "tgp-own", groq: "gsk-own" }) });
    expect(plan.candidates.map((c) => [c.endpoint.providerSlug, c.byok, c.target.apiKey])).toEqual([
      ["groq", true, "gsk-own"],
      ["together", true, "tgp-own"],
      ["deepinfra", false, "deepinfra-key"],
    ]);
  });

  it("puts a BYOK endpoint ahead of provider.order, then applies the order to the rest", () => {
    const plan = planRoute(catalog, [LLAMA], chat({ provider: { order: ["groq"] } }), envOf(), { byok: keys({ together: "tgp-own" }) });
    expect(plan.candidates.map((c) => c.endpoint.providerSlug)).toEqual(["together", "groq", "deepinfra"]);
  });

  it("never moves a later model's BYOK endpoint ahead of an earlier model", () => {
    const plan = planRoute(catalog, [GPT, LLAMA], chat(), envOf(), { byok: keys({ together: "tgp-own" }) });
    expect(route(plan)).toEqual([`${GPT}@openai`, `${GPT}@azure-eu`, `${LLAMA}@together`, `${LLAMA}@deepinfra`, `${LLAMA}@groq`]);
  });

  it("routes to a provider the platform has no credential for when the workspace has a key", () => {
    const plan = planRoute(catalog, [MISTRAL_SMALL], chat(), without("MISTRAL_API_KEY"), { byok: keys({ mistral: "mistral-own" }) });
    expect(plan.candidates.map((c) => [c.endpoint.providerSlug, c.byok, c.target.apiKey])).toEqual([["mistral", true, "mistral-own"]]);
  });

  it("marks platform-keyed candidates byok: false without a BYOK map", () => {
    expect(planRoute(catalog, [GPT], chat(), envOf()).candidates.map((c) => c.byok)).toEqual([false, false]);
  });

  it("still needs a base URL for a BYOK endpoint", () => {
    const plan = planRoute(catalog, [GPT], chat(), without("AZURE_OPENAI_EU_BASE_URL"), { byok: keys({ "azure-eu": "azure-own" }) });
    expect(route(plan)).toEqual([`${GPT}@openai`]);
    expect(plan.excluded).toEqual([{ model: GPT, provider: "azure-eu", constraint: "no base URL configured (AZURE_OPENAI_EU_BASE_URL)", reason: "no base URL configured (AZURE_OPENAI_EU_BASE_URL)" }]);
  });
});
