/**
 * `GET /models` and `GET /models/:author/:slug/endpoints` in OpenRouter's shape, checked against
 * the committed seed: prices are USD per token as exact decimal strings.
 */
import { beforeAll, describe, expect, it } from "vitest";
import seedJson from "../../src/catalog/seed.json";
import { call, expectError, provision, type RouterPricing } from "../helpers";

interface SeedProvider {
  slug: string;
  name: string;
  region?: string;
}
interface SeedModel {
  id: string;
  name: string;
  description?: string;
  contextLength: number;
  inputModalities?: string[];
  outputModalities?: string[];
  supportedParameters?: string[];
  tokenizer?: string;
}
interface SeedEndpoint {
  modelId: string;
  providerSlug: string;
  promptPrice: string;
  completionPrice: string;
  cacheReadPrice?: string | null;
  cacheWritePrice?: string | null;
  requestPrice?: string;
  contextLength: number;
  maxOutputTokens?: number | null;
  quantization?: string;
  region?: string | null;
  enabled?: boolean;
}
const seed: { providers: SeedProvider[]; models: SeedModel[]; endpoints: SeedEndpoint[] } = seedJson;

interface RouterModel {
  id: string;
  canonical_slug: string;
  name: string;
  created: number;
  description: string;
  context_length: number;
  architecture: { modality: string; input_modalities: string[]; output_modalities: string[]; tokenizer: string };
  pricing: RouterPricing;
  top_provider: { context_length: number; max_completion_tokens: number | null; is_moderated: boolean };
  supported_parameters: string[];
}
interface RouterEndpoint {
  name: string;
  provider_name: string;
  tag: string;
  context_length: number;
  max_completion_tokens: number | null;
  pricing: RouterPricing;
  quantization: string;
  region: string;
  supported_parameters: string[];
}
interface RouterModelEndpoints {
  data: { id: string; name: string; endpoints: RouterEndpoint[] };
}

/** A decimal string scaled by 10^-places, written without trailing zeros ("0.15", 6 → "0.00000015"). */
function shiftLeft(decimal: string, places: number): string {
  const [whole = "0", fraction = ""] = decimal.split(".");
  const digits = BigInt(whole + fraction);
  if (digits === 0n) return "0";
  const scale = fraction.length + places;
  const padded = digits.toString().padStart(scale + 1, "0");
  const head = padded.slice(0, padded.length - scale);
  const tail = padded.slice(padded.length - scale).replace(/0+$/, "");
  return tail ? `${head}.${tail}` : head;
}

/** The seed's USD per million tokens as OpenRouter's USD per token. */
const perToken = (usdPerMillion: string) => shiftLeft(usdPerMillion, 6);
/** Seed prices compared exactly, as integers of 10^-9 USD. */
function nanos(usd: string): bigint {
  const [whole = "0", fraction = ""] = usd.split(".");
  return BigInt(whole + fraction.padEnd(9, "0"));
}

function expectedPricing(e: SeedEndpoint): RouterPricing {
  return {
    prompt: perToken(e.promptPrice),
    completion: perToken(e.completionPrice),
    request: shiftLeft(e.requestPrice ?? "0", 0),
    image: "0",
    input_cache_read: perToken(e.cacheReadPrice ?? e.promptPrice),
    input_cache_write: perToken(e.cacheWritePrice ?? e.promptPrice),
  };
}

const enabledEndpoints = (modelId: string) => seed.endpoints.filter((e) => e.modelId === modelId && e.enabled !== false);

/** Cheapest by prompt + completion price; the first in seed order wins a tie. */
function cheapest(endpoints: SeedEndpoint[]): SeedEndpoint {
  const total = (e: SeedEndpoint) => nanos(e.promptPrice) + nanos(e.completionPrice);
  return endpoints.reduce((a, b) => (total(b) < total(a) ? b : a));
}

let before = 0;
let after = 0;
beforeAll(async () => {
  before = Math.floor(Date.now() / 1000);
  await provision("ws-models");
  after = Math.ceil(Date.now() / 1000);
});

async function listModels(path: string): Promise<RouterModel[]> {
  const res = await call(path);
  expect(res.status).toBe(200);
  return ((await res.json()) as { data: RouterModel[] }).data;
}

describe("GET /models", () => {
  it("lists every seeded model with an enabled endpoint, without a key", async () => {
    const data = await listModels("/api/v1/models");
    const expected = seed.models.filter((m) => enabledEndpoints(m.id).length > 0).map((m) => m.id);
    expect(data.map((m) => m.id).sort()).toEqual([...expected].sort());
  });

  it("describes each model in OpenRouter's fields, priced from its cheapest endpoint", async () => {
    const data = await listModels("/api/v1/models");
    for (const model of seed.models) {
      const endpoints = enabledEndpoints(model.id);
      if (endpoints.length === 0) continue;
      const top = cheapest(endpoints);
      const listed = data.find((m) => m.id === model.id);
      const inputs = model.inputModalities ?? ["text"];
      const outputs = model.outputModalities ?? ["text"];
      expect(listed, model.id).toEqual({
        id: model.id,
        canonical_slug: model.id,
        name: model.name,
        created: listed?.created,
        description: model.description ?? "",
        context_length: model.contextLength,
        architecture: {
          modality: `${inputs.join("+")}->${outputs.join("+")}`,
          input_modalities: inputs,
          output_modalities: outputs,
          tokenizer: model.tokenizer ?? "Other",
        },
        pricing: expectedPricing(top),
        top_provider: { context_length: top.contextLength, max_completion_tokens: top.maxOutputTokens ?? null, is_moderated: false },
        supported_parameters: model.supportedParameters ?? [],
      });
      // `created` is the catalog row's creation, in whole seconds.
      expect(Number.isInteger(listed?.created)).toBe(true);
      expect(listed?.created).toBeGreaterThanOrEqual(before - 1);
      expect(listed?.created).toBeLessThanOrEqual(after);
    }
  });

  it("prints prices exactly, as USD per token strings", async () => {
    const data = await listModels("/api/v1/models");
    const price = (id: string) => data.find((m) => m.id === id)?.pricing;
    expect(price("openai/gpt-4o-mini")).toEqual({
      prompt: "0.00000015",
      completion: "0.0000006",
      request: "0",
      image: "0",
      input_cache_read: "0.000000075",
      input_cache_write: "0.00000015",
    });
    // Groq (0.59 + 0.79) is cheaper than Together (0.88 + 0.88).
    expect(price("meta-llama/llama-3.3-70b-instruct")).toEqual({
      prompt: "0.00000059",
      completion: "0.00000079",
      request: "0",
      image: "0",
      input_cache_read: "0.00000059",
      input_cache_write: "0.00000059",
    });
    expect(price("anthropic/claude-sonnet-4.5")).toEqual({
      prompt: "0.000003",
      completion: "0.000015",
      request: "0",
      image: "0",
      input_cache_read: "0.0000003",
      input_cache_write: "0.00000375",
    });
  });

  it("serves the same list under /v1 for OpenAI clients", async () => {
    const [router, openai] = await Promise.all([call("/api/v1/models"), call("/v1/models")]);
    expect(openai.status).toBe(200);
    expect(await openai.json()).toEqual(await router.json());
  });
});

describe("GET /models/:author/:slug/endpoints", () => {
  it("lists the four endpoints of openai/gpt-4o-mini with region, quantization and exact prices", async () => {
    const res = await call("/api/v1/models/openai/gpt-4o-mini/endpoints");
    expect(res.status).toBe(200);
    const { data } = (await res.json()) as RouterModelEndpoints;
    expect(data.id).toBe("openai/gpt-4o-mini");
    expect(data.name).toBe("OpenAI: GPT-4o-mini");
    const params = seed.models.find((m) => m.id === "openai/gpt-4o-mini")?.supportedParameters;
    const row = (tag: string, provider: string, region: string, prompt: string, completion: string, cacheRead: string) => ({
      name: `${provider} | openai/gpt-4o-mini`,
      provider_name: provider,
      tag,
      context_length: 128000,
      max_completion_tokens: 16384,
      pricing: { prompt, completion, request: "0", image: "0", input_cache_read: cacheRead, input_cache_write: prompt },
      quantization: "unknown",
      region,
      supported_parameters: params,
    });
    expect(
      data.endpoints.map((e) => ({
        name: e.name,
        provider_name: e.provider_name,
        tag: e.tag,
        context_length: e.context_length,
        max_completion_tokens: e.max_completion_tokens,
        pricing: e.pricing,
        quantization: e.quantization,
        region: e.region,
        supported_parameters: e.supported_parameters,
      })),
    ).toEqual([
      row("openai", "OpenAI", "us", "0.00000015", "0.0000006", "0.000000075"),
      row("openai-eu", "OpenAI (EU data residency)", "eu", "0.000000165", "0.00000066", "0.0000000825"),
      row("azure-eu", "Azure OpenAI (EU Data Zone)", "eu", "0.000000165", "0.00000066", "0.0000000825"),
      row("openrouter", "OpenRouter", "global", "0.00000015", "0.0000006", "0.000000075"),
    ]);
  });

  it("shows each endpoint's own quantization and output cap", async () => {
    const res = await call("/v1/models/meta-llama/llama-3.3-70b-instruct/endpoints");
    expect(res.status).toBe(200);
    const { data } = (await res.json()) as RouterModelEndpoints;
    expect(data.endpoints.map((e) => [e.provider_name, e.quantization, e.max_completion_tokens, e.pricing.prompt, e.pricing.completion])).toEqual([
      ["Groq", "unknown", 32768, "0.00000059", "0.00000079"],
      ["Together", "fp8", null, "0.00000088", "0.00000088"],
    ]);
  });

  it("lists every seeded model's enabled endpoints with the seed's prices", async () => {
    for (const model of seed.models) {
      const res = await call(`/api/v1/models/${model.id}/endpoints`);
      expect(res.status, model.id).toBe(200);
      const { data } = (await res.json()) as RouterModelEndpoints;
      const providerName = (slug: string) => seed.providers.find((p) => p.slug === slug)?.name;
      expect(
        data.endpoints.map((e) => [e.provider_name, e.pricing]),
        model.id,
      ).toEqual(enabledEndpoints(model.id).map((e) => [providerName(e.providerSlug), expectedPricing(e)]));
    }
  });

  it("answers 404 in the error shape for an unknown model", async () => {
    const error = await expectError(await call("/api/v1/models/nobody/no-such-model/endpoints"), 404);
    expect(error.message).toBe("Model not found: nobody/no-such-model");
  });
});
