import { describe, expect, it } from "vitest";
import { describeExclusions, explainPlan, onlyToolsExcluded } from "../../../src/routing/explain";
import { planRoute } from "../../../src/routing/plan";
import { anyKey, catalogOf, chatRequest, healthOf, modelOf, provider, usd } from "./fixtures";

const NOW = 1_800_000_000_000;
const M = "acme/model";
const catalog = catalogOf(
  modelOf(M, [
    { provider: "a", promptPrice: usd(1), completionPrice: 0 },
    { provider: "b", promptPrice: usd(3), completionPrice: 0 },
    { provider: "c", promptPrice: usd(2), completionPrice: 0 },
    { provider: "own", promptPrice: usd(9), completionPrice: 0 },
    { provider: "flaky", promptPrice: usd(1), completionPrice: 0 },
    { provider: provider("trainer", { trainsOnData: true }), promptPrice: usd(1), completionPrice: 0 },
    { provider: "dear", promptPrice: usd(50), completionPrice: 0 },
    { provider: "off", enabled: false },
  ]),
);

describe("explainPlan", () => {
  it("says for each candidate where it is and why, and for each excluded endpoint why not", () => {
    const plan = planRoute(
      catalog,
      [M, "acme/missing"],
      chatRequest({ provider: { data_collection: "deny", max_price: { prompt: 10 } } }),
      anyKey,
      {
        byok: new Map([["own", "own-key"]]),
        health: new Map([[`${M}:flaky`, healthOf({ lastOutageAt: NOW - 12_000 })]]),
        now: NOW,
        random: () => 0,
      },
    );
    expect(explainPlan(plan)).toEqual({
      candidates: [
        { model: M, provider: "own", endpoint: `${M}:own`, position: 1, reasons: ["byok: the workspace's own key is tried first"] },
        { model: M, provider: "a", endpoint: `${M}:a`, position: 2, reasons: ["load balanced: 73.5% chance to lead (weight 1/price², $1/M)"] },
        { model: M, provider: "b", endpoint: `${M}:b`, position: 3, reasons: ["load balanced: 8.2% chance to lead (weight 1/price², $3/M)"] },
        { model: M, provider: "c", endpoint: `${M}:c`, position: 4, reasons: ["load balanced: 18.4% chance to lead (weight 1/price², $2/M)"] },
        { model: M, provider: "flaky", endpoint: `${M}:flaky`, position: 5, reasons: ["unstable: outage 12 s ago", "after every stable endpoint"] },
      ],
      excluded: [
        { model: M, provider: "trainer", constraint: "data_collection=deny", reason: "data_collection=deny (provider retains or trains on prompts)" },
        { model: M, provider: "dear", constraint: "max_price", reason: "max_price.prompt" },
        { model: M, provider: "off", constraint: "status=disabled", reason: "endpoint disabled" },
      ],
      unknown_models: ["acme/missing"],
    });
  });

  it("names provider.order slots and price order when the order turns load balancing off", () => {
    const plan = planRoute(catalog, [M], chatRequest({ provider: { only: ["a", "b", "c"], order: ["b"] } }), anyKey);
    expect(explainPlan(plan).candidates.map((c) => [c.provider, c.reasons])).toEqual([
      ["b", ["provider.order #1"]],
      ["a", ["not in provider.order: after the listed providers", "price order (provider.order turns load balancing off): $1/M"]],
      ["c", ["not in provider.order: after the listed providers", "price order (provider.order turns load balancing off): $2/M"]],
    ]);
  });

  it("returns plain JSON data (no credentials, no catalog rows)", () => {
    const explained = explainPlan(planRoute(catalog, [M], chatRequest(), anyKey, { random: () => 0.5 }));
    expect(JSON.parse(JSON.stringify(explained))).toEqual(explained);
    expect(JSON.stringify(explained)).not.toContain("key-for-");
  });
});

describe("no-candidate messages", () => {
  it("counts per constraint and names the providers", () => {
    const plan = planRoute(catalog, [M], chatRequest({ provider: { data_collection: "deny", max_price: { prompt: 0.5 } } }), anyKey);
    expect(plan.candidates).toEqual([]);
    expect(describeExclusions(plan.excluded)).toBe(
      "max_price removed 6 endpoints (a, b, c, own, flaky, dear); data_collection=deny removed 1 endpoint (trainer); status=disabled removed 1 endpoint (off)",
    );
  });

  it("spots a plan emptied by tool use alone", () => {
    const noTools = catalogOf(modelOf(M, [{ provider: "a", parameters: ["max_tokens"] }, { provider: "b", parameters: [] }]));
    const tools = [{ type: "function", function: { name: "f" } }];
    expect(onlyToolsExcluded(planRoute(noTools, [M], chatRequest({ tools }), anyKey).excluded)).toBe(true);
    expect(onlyToolsExcluded(planRoute(catalog, [M], chatRequest({ provider: { only: ["x"] } }), anyKey).excluded)).toBe(false);
    expect(onlyToolsExcluded([])).toBe(false);
  });
});
