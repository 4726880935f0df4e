import { describe, expect, it } from "vitest";
import { mergePreferences } from "../../../src/routing/merge";
import { describeExclusions } from "../../../src/routing/explain";
import { planRoute } from "../../../src/routing/plan";
import type { ProviderPreferences } from "../../../src/schemas/openrouter";
import { anyKey, catalogOf, chatRequest, modelOf, named, provider, providersOf } from "./fixtures";

type Row = {
  name: string;
  workspace: ProviderPreferences | null | undefined;
  request: ProviderPreferences | undefined;
  expected: ProviderPreferences | undefined;
};

describe("mergePreferences", () => {
  it.each(named<Row>([
    { name: "neither side sets anything", workspace: null, request: undefined, expected: undefined },
    { name: "only the workspace sets preferences", workspace: { ignore: ["groq"] }, request: undefined, expected: { ignore: ["groq"] } },
    { name: "only the request sets preferences", workspace: undefined, request: { only: ["groq"] }, expected: { only: ["groq"] } },

    // only: the workspace's list caps the request's.
    { name: "only: intersection when both set, in the request's order and spelling", workspace: { only: ["together", "GROQ", "openai"] }, request: { only: ["groq", "mistral", "openai"] }, expected: { only: ["groq", "openai"] } },
    { name: "only: the workspace's when only it sets one", workspace: { only: ["groq"] }, request: { ignore: ["x"] }, expected: { only: ["groq"], ignore: ["x"] } },
    { name: "only: the request's when only it sets one", workspace: { ignore: ["x"] }, request: { only: ["groq"] }, expected: { only: ["groq"], ignore: ["x"] } },
    { name: "only: an empty intersection allows nothing", workspace: { only: ["groq"] }, request: { only: ["together"] }, expected: { only: [] } },

    // ignore: union.
    { name: "ignore: union without duplicates, case-insensitively", workspace: { ignore: ["groq", "deepseek"] }, request: { ignore: ["DeepSeek", "together"] }, expected: { ignore: ["groq", "deepseek", "together"] } },
    { name: "ignore: the workspace's alone", workspace: { ignore: ["groq"] }, request: { order: ["a"] }, expected: { ignore: ["groq"], order: ["a"] } },

    // Enforcement switches only turn on.
    { name: "data_collection: the workspace's deny beats the request's allow", workspace: { data_collection: "deny" }, request: { data_collection: "allow" }, expected: { data_collection: "deny" } },
    { name: "data_collection: the request's deny beats the workspace's allow", workspace: { data_collection: "allow" }, request: { data_collection: "deny" }, expected: { data_collection: "deny" } },
    { name: "data_collection: allow stays allow", workspace: { data_collection: "allow" }, request: { zdr: false }, expected: { data_collection: "allow", zdr: false } },
    { name: "zdr: the workspace's true beats the request's false", workspace: { zdr: true }, request: { zdr: false }, expected: { zdr: true } },
    { name: "zdr: the request's true beats the workspace's false", workspace: { zdr: false }, request: { zdr: true }, expected: { zdr: true } },
    { name: "zdr: false from both stays false", workspace: { zdr: false }, request: { zdr: false }, expected: { zdr: false } },
    { name: "require_parameters: true from the workspace", workspace: { require_parameters: true }, request: { require_parameters: false }, expected: { require_parameters: true } },
    { name: "require_parameters: true from the request", workspace: { require_parameters: false }, request: { require_parameters: true }, expected: { require_parameters: true } },

    // max_price: the lower cap per field.
    {
      name: "max_price: the lower cap per field, strings and numbers compared as numbers",
      workspace: { max_price: { prompt: "1", completion: 2, request: "0.5" } },
      request: { max_price: { prompt: 0.5, completion: "3", image: 1 } },
      expected: { max_price: { prompt: 0.5, completion: 2, request: "0.5", image: 1 } },
    },
    { name: "max_price: the workspace's cap alone", workspace: { max_price: { prompt: 1 } }, request: { sort: "price" }, expected: { max_price: { prompt: 1 }, sort: "price" } },
    { name: "max_price: a request cannot raise the workspace's cap", workspace: { max_price: { prompt: "0.10" } }, request: { max_price: { prompt: "10" } }, expected: { max_price: { prompt: "0.10" } } },

    // quantizations: intersection.
    { name: "quantizations: intersection when both set", workspace: { quantizations: ["fp8", "bf16"] }, request: { quantizations: ["int4", "FP8"] }, expected: { quantizations: ["FP8"] } },
    { name: "quantizations: the workspace's alone", workspace: { quantizations: ["fp8"] }, request: { zdr: true }, expected: { quantizations: ["fp8"], zdr: true } },

    // Ordering fields: the request's when set, else the workspace's.
    { name: "order: the request's wins", workspace: { order: ["groq"] }, request: { order: ["together"] }, expected: { order: ["together"] } },
    { name: "order: the workspace's when the request has none", workspace: { order: ["groq"] }, request: { zdr: true }, expected: { order: ["groq"], zdr: true } },
    { name: "sort: the request's wins", workspace: { sort: "price" }, request: { sort: { by: "latency", partition: "none" } }, expected: { sort: { by: "latency", partition: "none" } } },
    { name: "sort: the workspace's when the request has none", workspace: { sort: "throughput" }, request: { order: ["a"] }, expected: { sort: "throughput", order: ["a"] } },
    { name: "allow_fallbacks: the request's false wins", workspace: { allow_fallbacks: true }, request: { allow_fallbacks: false }, expected: { allow_fallbacks: false } },
    { name: "allow_fallbacks: the request's true wins too (it only orders)", workspace: { allow_fallbacks: false }, request: { allow_fallbacks: true }, expected: { allow_fallbacks: true } },
    { name: "allow_fallbacks: the workspace's when the request has none", workspace: { allow_fallbacks: false, order: ["groq"] }, request: {}, expected: { allow_fallbacks: false, order: ["groq"] } },
    { name: "preferred_min_throughput: the request's wins", workspace: { preferred_min_throughput: 50 }, request: { preferred_min_throughput: { p90: 20 } }, expected: { preferred_min_throughput: { p90: 20 } } },
    { name: "preferred_max_latency: the workspace's when the request has none", workspace: { preferred_max_latency: 2 }, request: {}, expected: { preferred_max_latency: 2 } },

    { name: "unknown fields pass through, the request's over the workspace's", workspace: { enforce_distillable_text: true, x: 1 }, request: { x: 2 }, expected: { enforce_distillable_text: true, x: 2 } },
  ]))("%s", (_name, { workspace, request, expected }) => {
    expect(mergePreferences(workspace, request).preferences).toEqual(expected);
  });

  it("says which lists clash when the workspace's and the request's only share no provider", () => {
    const merged = mergePreferences({ only: ["groq", "together"] }, { only: ["openai"] });
    expect(merged.conflict).toBe("the request's only [openai] and the workspace's only [groq, together] share no provider");
  });

  it("reports no conflict when the intersection is not empty, or only one side sets only", () => {
    expect(mergePreferences({ only: ["groq"] }, { only: ["groq"] }).conflict).toBeNull();
    expect(mergePreferences({ only: [] }, undefined).conflict).toBeNull();
    expect(mergePreferences(undefined, { only: [] }).conflict).toBeNull();
  });

  it("never mutates its inputs", () => {
    const workspace: ProviderPreferences = { only: ["groq", "together"], ignore: ["a"], max_price: { prompt: 1 } };
    const request: ProviderPreferences = { only: ["groq"], ignore: ["b"], max_price: { prompt: 2 } };
    const before = JSON.stringify([workspace, request]);
    mergePreferences(workspace, request);
    expect(JSON.stringify([workspace, request])).toBe(before);
  });
});

describe("planRoute with workspace preferences", () => {
  const M = "acme/model";
  const catalog = catalogOf(
    modelOf(M, [
      { provider: "groq", promptPrice: 100, completionPrice: 100 },
      { provider: "together", promptPrice: 200, completionPrice: 200 },
      { provider: provider("deepseek", { trainsOnData: true }), promptPrice: 50, completionPrice: 50 },
    ]),
  );

  it("applies the workspace's ignore even when the request sets its own", () => {
    const plan = planRoute(catalog, [M], chatRequest({ provider: { ignore: ["together"] } }), anyKey, { workspacePreferences: { ignore: ["groq"] } });
    expect(providersOf(plan)).toEqual(["deepseek"]);
    expect(plan.excluded.map((e) => [e.provider, e.constraint])).toEqual([
      ["groq", "provider.ignore"],
      ["together", "provider.ignore"],
    ]);
  });

  it("lets the workspace's only cap a request that sets none", () => {
    const plan = planRoute(catalog, [M], chatRequest(), anyKey, { workspacePreferences: { only: ["together"] } });
    expect(providersOf(plan)).toEqual(["together"]);
  });

  it("keeps the workspace's data_collection=deny when the request says allow", () => {
    const plan = planRoute(catalog, [M], chatRequest({ provider: { data_collection: "allow" } }), anyKey, { workspacePreferences: { data_collection: "deny" } });
    expect(providersOf(plan)).toEqual(["groq", "together"]);
    expect(plan.excluded).toEqual([
      { model: M, provider: "deepseek", constraint: "data_collection=deny", reason: "data_collection=deny (provider retains or trains on prompts)" },
    ]);
  });

  it("excludes every endpoint with a message naming both lists when the only lists share nothing", () => {
    const plan = planRoute(catalog, [M], chatRequest({ provider: { only: ["openai"] } }), anyKey, { workspacePreferences: { only: ["groq"] } });
    expect(plan.candidates).toEqual([]);
    expect(new Set(plan.excluded.map((e) => e.reason))).toEqual(
      new Set(["provider.only allows no provider: the request's only [openai] and the workspace's only [groq] share no provider"]),
    );
    expect(describeExclusions(plan.excluded)).toBe(
      "provider.only (the request's only [openai] and the workspace's only [groq] share no provider) removed 3 endpoints (groq, together, deepseek)",
    );
    expect(plan.excluded).toHaveLength(3);
  });

  it("uses the workspace's sort when the request has none, and the request's when it has one", () => {
    const fast = { workspacePreferences: { sort: "price" as const } };
    expect(providersOf(planRoute(catalog, [M], chatRequest(), anyKey, { ...fast, random: () => 0.999 }))).toEqual(["deepseek", "groq", "together"]);
    expect(providersOf(planRoute(catalog, [M], chatRequest({ provider: { order: ["together"] } }), anyKey, fast))[0]).toBe("together");
  });
});
