import { describe, expect, it } from "vitest";
import { planRoute } from "../../../src/routing/plan";
import { resolveModel, variantSort } from "../../../src/routing/variants";
import { anyKey, catalogOf, chatRequest, healthOf, modelOf, mulberry32, named, providersOf, routeOf, usd } from "./fixtures";

const LLAMA = "meta-llama/llama-3.3-70b-instruct";
const QWEN = "qwen/qwen3-32b";

// groq: fast and mid-priced; together: slow and dear; deepinfra: cheapest, no throughput data.
const llama = modelOf(LLAMA, [
  { provider: "together", promptPrice: usd(0.88), completionPrice: usd(0.88) },
  { provider: "groq", promptPrice: usd(0.59), completionPrice: usd(0.79) },
  { provider: "deepinfra", promptPrice: usd(0.23), completionPrice: usd(0.4) },
]);
const qwen = modelOf(QWEN, [
  { provider: "groq", promptPrice: usd(0.29), completionPrice: usd(0.59) },
  { provider: "chutes", promptPrice: 0, completionPrice: 0 },
  { provider: "deepinfra", promptPrice: usd(0.1), completionPrice: usd(0.3) },
]);
const freeListed = modelOf(`${QWEN}:free`, [{ provider: "openrouter", promptPrice: 0, completionPrice: 0 }]);
const catalog = catalogOf(llama, qwen);

const health = new Map([
  [`${LLAMA}:groq`, healthOf({ tps: 300, latency: 200 })],
  [`${LLAMA}:together`, healthOf({ tps: 80, latency: 900 })],
]);
const options = { health, now: 1_000_000, random: mulberry32(7) };

describe("resolveModel", () => {
  it.each(named([
    { name: "a plain id", id: LLAMA, model: LLAMA, variant: null },
    { name: ":nitro is stripped", id: `${LLAMA}:nitro`, model: LLAMA, variant: "nitro" },
    { name: ":floor is stripped", id: `${LLAMA}:floor`, model: LLAMA, variant: "floor" },
    { name: ":free is stripped when the catalog has no :free model", id: `${QWEN}:free`, model: QWEN, variant: "free" },
    { name: "an unknown variant stays part of the id: not found", id: `${LLAMA}:turbo`, model: null, variant: null },
    { name: "a variant of an unknown model: not found", id: "acme/nothing:nitro", model: null, variant: null },
    { name: "a bare variant: not found", id: ":nitro", model: null, variant: null },
    { name: "a variant is case-sensitive", id: `${LLAMA}:NITRO`, model: null, variant: null },
  ]))("%s", (_name, { id, model, variant }) => {
    const resolved = resolveModel(catalog, id);
    expect(resolved ? { model: resolved.model.id, variant: resolved.variant } : { model: null, variant: null }).toEqual({ model, variant });
  });

  it("prefers a catalog model whose id carries the suffix itself", () => {
    const resolved = resolveModel(catalogOf(qwen, freeListed), `${QWEN}:free`);
    expect(resolved).toMatchObject({ model: { id: `${QWEN}:free` }, variant: null });
  });

  it.each([
    ["nitro", "throughput"],
    ["floor", "price"],
    ["free", undefined],
    [null, undefined],
  ] as const)("variant %s sorts by %s", (variant, sort) => {
    expect(variantSort(variant)).toBe(sort);
  });
});

describe("planRoute with model variants", () => {
  it(":nitro sorts by throughput (measured first, then the rest cheapest first)", () => {
    const plan = planRoute(catalog, [`${LLAMA}:nitro`], chatRequest(), anyKey, options);
    expect(providersOf(plan)).toEqual(["groq", "together", "deepinfra"]);
    expect(plan.candidates[0]!.reasons).toEqual(["variant :nitro", "sort=throughput: p50 300 tok/s"]);
  });

  it(":floor sorts by price, whatever the random draw", () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const plan = planRoute(catalog, [`${LLAMA}:floor`], chatRequest(), anyKey, { ...options, random: mulberry32(seed) });
      expect(providersOf(plan)).toEqual(["deepinfra", "groq", "together"]);
    }
  });

  it("the request's own sort wins over the variant's", () => {
    const plan = planRoute(catalog, [`${LLAMA}:nitro`], chatRequest({ provider: { sort: "latency" } }), anyKey, options);
    expect(providersOf(plan)).toEqual(["groq", "together", "deepinfra"]);
    const floor = planRoute(catalog, [`${LLAMA}:floor`], chatRequest({ provider: { sort: "throughput" } }), anyKey, options);
    expect(providersOf(floor)).toEqual(["groq", "together", "deepinfra"]);
  });

  it("the variant wins over the workspace's default sort", () => {
    const plan = planRoute(catalog, [`${LLAMA}:nitro`], chatRequest(), anyKey, { ...options, workspacePreferences: { sort: "price" } });
    expect(providersOf(plan)).toEqual(["groq", "together", "deepinfra"]);
  });

  it(":free keeps only free endpoints and says why the others went", () => {
    const plan = planRoute(catalog, [`${QWEN}:free`], chatRequest(), anyKey, options);
    expect(providersOf(plan)).toEqual(["chutes"]);
    expect(plan.excluded.map((e) => [e.provider, e.constraint])).toEqual([
      ["groq", ":free"],
      ["deepinfra", ":free"],
    ]);
  });

  it("names the catalog model, without the variant, on every candidate", () => {
    const plan = planRoute(catalog, [`${LLAMA}:nitro`], chatRequest(), anyKey, options);
    expect(new Set(plan.candidates.map((c) => c.model.id))).toEqual(new Set([LLAMA]));
  });

  it("applies each entry's variant to that entry of models only", () => {
    const plan = planRoute(catalog, [`${QWEN}:free`, `${LLAMA}:floor`], chatRequest(), anyKey, options);
    expect(routeOf(plan)).toEqual([`${QWEN}@chutes`, `${LLAMA}@deepinfra`, `${LLAMA}@groq`, `${LLAMA}@together`]);
  });

  it("reports an unknown variant as an unknown model, as written", () => {
    const plan = planRoute(catalog, [`${LLAMA}:turbo`, `${LLAMA}:nitro`], chatRequest(), anyKey, options);
    expect(plan.unknownModels).toEqual([`${LLAMA}:turbo`]);
    expect(plan.candidates).toHaveLength(3);
  });

  it("plans a model once when it is named with and without a variant (the first wins)", () => {
    const plan = planRoute(catalog, [`${LLAMA}:floor`, LLAMA], chatRequest(), anyKey, options);
    expect(providersOf(plan)).toEqual(["deepinfra", "groq", "together"]);
  });
});
