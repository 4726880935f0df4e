import { describe, expect, it } from "vitest";
import type { CatalogEndpoint } from "../../../src/catalog/store";
import type { Provider } from "../../../src/db/schema";
import { provider } from "./fixtures";
import { preferenceFilter } from "../../../src/routing/preferences";
import { chatRequestSchema } from "../../../src/schemas/openai";

function endpoint(p: Provider, overrides: Partial<CatalogEndpoint> = {}): CatalogEndpoint {
  return {
    id: `${p.slug}:m/x`,
    modelId: "m/x",
    providerSlug: p.slug,
    upstreamModel: "x",
    promptPrice: 1_000_000,
    completionPrice: 2_000_000,
    cacheReadPrice: null,
    cacheWritePrice: null,
    requestPrice: 0,
    contextLength: 128_000,
    maxOutputTokens: 8192,
    quantization: "fp8",
    supportedParameters: [],
    region: null,
    enabled: true,
    createdAt: 0,
    provider: p,
    effectiveRegion: p.region,
    parameters: new Set(["max_tokens", "temperature", "tools", "tool_choice"]),
    ...overrides,
  };
}

const open = provider("open");
const trains = provider("trains", { trainsOnData: true });
const retains = provider("retains", { retainsPrompts: true });
const zdr = provider("zdr", { zeroRetention: true });

function reason(request: Record<string, unknown>, e: CatalogEndpoint): string | null {
  const req = chatRequestSchema.parse({ model: "m/x", messages: [{ role: "user", content: "hi" }], ...request });
  const filter = preferenceFilter(req);
  return filter?.(e)?.reason ?? null;
}

describe("provider preference filters", () => {
  it("does nothing without a provider object", () => {
    expect(preferenceFilter(chatRequestSchema.parse({ model: "m/x", messages: [{ role: "user", content: "hi" }] }))).toBeNull();
  });

  it.each([
    { name: "only keeps listed providers, case-insensitively", provider: { only: ["OPEN"] }, e: endpoint(open), expected: null },
    { name: "only drops others", provider: { only: ["zdr"] }, e: endpoint(open), expected: "not in provider.only" },
    { name: "ignore drops listed providers", provider: { ignore: ["open"] }, e: endpoint(open), expected: "in provider.ignore" },
    { name: "order alone keeps others as fallbacks", provider: { order: ["zdr"] }, e: endpoint(open), expected: null },
    {
      name: "order with allow_fallbacks false drops others",
      provider: { order: ["zdr"], allow_fallbacks: false },
      e: endpoint(open),
      expected: "not in provider.order (allow_fallbacks: false)",
    },
    { name: "data_collection deny drops providers that train", provider: { data_collection: "deny" }, e: endpoint(trains), expected: "data_collection=deny (provider retains or trains on prompts)" },
    { name: "data_collection deny drops providers that retain", provider: { data_collection: "deny" }, e: endpoint(retains), expected: "data_collection=deny (provider retains or trains on prompts)" },
    { name: "data_collection deny keeps the others", provider: { data_collection: "deny" }, e: endpoint(open), expected: null },
    { name: "data_collection allow keeps everyone", provider: { data_collection: "allow" }, e: endpoint(trains), expected: null },
    { name: "zdr drops providers without zero retention", provider: { zdr: true }, e: endpoint(open), expected: "zdr (provider is not zero data retention)" },
    { name: "zdr keeps zero-retention providers", provider: { zdr: true }, e: endpoint(zdr), expected: null },
    { name: "quantizations keeps a listed one", provider: { quantizations: ["fp8", "bf16"] }, e: endpoint(open), expected: null },
    { name: "quantizations drops others", provider: { quantizations: ["bf16"] }, e: endpoint(open), expected: "quantization fp8 not in provider.quantizations" },
    { name: "max_price.prompt as a number, at the cap", provider: { max_price: { prompt: 1 } }, e: endpoint(open), expected: null },
    { name: "max_price.prompt as a string, under the price", provider: { max_price: { prompt: "0.99" } }, e: endpoint(open), expected: "max_price.prompt" },
    { name: "max_price.completion", provider: { max_price: { completion: "1.5" } }, e: endpoint(open), expected: "max_price.completion" },
    { name: "max_price.request against a per-request price", provider: { max_price: { request: "0.001" } }, e: endpoint(open, { requestPrice: 2000 }), expected: "max_price.request" },
  ])("$name", ({ provider: prefs, e, expected }) => {
    expect(reason({ provider: prefs }, e)).toBe(expected);
  });

  it("require_parameters drops endpoints that lack a parameter the request uses, naming it", () => {
    expect(reason({ provider: { require_parameters: true }, seed: 7, temperature: 0.2 }, endpoint(open))).toBe(
      "require_parameters (does not support seed)",
    );
    expect(reason({ provider: { require_parameters: true }, temperature: 0.2 }, endpoint(open))).toBeNull();
    // Without require_parameters, unsupported parameters do not filter.
    expect(reason({ provider: {}, seed: 7 }, endpoint(open))).toBeNull();
  });
});
