/**
 * The planner's residency rule: an `eu` workspace's plan holds only EU endpoints, whatever the
 * request asks, and says which models the rule alone left without an endpoint.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { modelsOutsideRegion } from "../../../src/residency/endpoint-filter";
import { routeAudit } from "../../../src/residency/audit";
import { planRoute } from "../../../src/routing/plan";
import { anyKey, catalogOf, chatRequest, modelOf, provider } from "../routing/fixtures";

const P = {
  azureEu: provider("azure-eu", { region: "eu" }),
  openaiEu: provider("openai-eu", { region: "eu" }),
  mistral: provider("mistral", { region: "eu" }),
  openai: provider("openai", { region: "us" }),
  openrouter: provider("openrouter", { region: "global" }),
  groq: provider("groq", { region: "us" }),
};
const SLUGS = Object.values(P).map((p) => p.slug);
const EU = new Set(["azure-eu", "openai-eu", "mistral"]);

const catalog = catalogOf(
  modelOf("openai/gpt", [{ provider: P.openai }, { provider: P.azureEu, promptPrice: 2_000_000 }, { provider: P.openaiEu }, { provider: P.openrouter, promptPrice: 500_000 }]),
  modelOf("mistral/small", [{ provider: P.mistral }]),
  modelOf("meta/llama", [{ provider: P.groq }, { provider: P.openrouter }]),
  modelOf("x/grok", [{ provider: P.openai }]),
);

describe("residency rule in the planner", () => {
  it("keeps only EU endpoints for an EU workspace and names the rule for the rest", () => {
    const plan = planRoute(catalog, ["openai/gpt"], chatRequest(), anyKey, { region: "eu" });
    expect(plan.candidates.map((c) => c.endpoint.providerSlug).sort()).toEqual(["azure-eu", "openai-eu"]);
    expect(plan.excluded.map((e) => [e.provider, e.constraint])).toEqual([
      ["openai", "region=eu"],
      ["openrouter", "region=eu"],
    ]);
    expect(plan.excluded[0]!.reason).toBe("endpoint region is us; the workspace is pinned to region eu");
  });

  it("changes nothing for a global workspace", () => {
    const plan = planRoute(catalog, ["openai/gpt"], chatRequest(), anyKey, { region: "global" });
    expect(plan.candidates).toHaveLength(4);
    expect(plan.excluded).toEqual([]);
  });

  it("cannot be loosened by any request preference, models list, variant or BYOK key (property)", () => {
    const slugs = fc.subarray(SLUGS);
    fc.assert(
      fc.property(
        fc.record({
          models: fc.subarray(["openai/gpt", "mistral/small", "meta/llama", "x/grok", "openai/gpt:nitro", "meta/llama:floor"], { minLength: 1 }),
          only: fc.option(slugs, { nil: undefined }),
          ignore: fc.option(slugs, { nil: undefined }),
          order: fc.option(slugs, { nil: undefined }),
          allowFallbacks: fc.option(fc.boolean(), { nil: undefined }),
          sort: fc.option(fc.constantFrom("price", "throughput", "latency"), { nil: undefined }),
          byok: slugs,
          workspaceOnly: fc.option(slugs, { nil: undefined }),
        }),
        ({ models, only, ignore, order, allowFallbacks, sort, byok, workspaceOnly }) => {
          const provider = { only, ignore, order, allow_fallbacks: allowFallbacks, sort };
          const plan = planRoute(catalog, models, chatRequest({ provider }), anyKey, {
            region: "eu",
            byok: new Map(byok.map((slug) => [slug, `own-${slug}`])),
            workspacePreferences: workspaceOnly ? { only: workspaceOnly } : null,
            random: () => 0.5,
          });
          for (const c of plan.candidates) {
            expect(c.endpoint.effectiveRegion).toBe("eu");
            expect(EU.has(c.endpoint.providerSlug)).toBe(true);
          }
          // Every non-EU endpoint of a requested model is excluded by the rule, not by another one.
          for (const e of plan.excluded) if (!EU.has(e.provider)) expect(e.constraint).toBe("region=eu");
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe("modelsOutsideRegion", () => {
  it("names the models the rule alone left without an endpoint", () => {
    const plan = planRoute(catalog, ["meta/llama", "x/grok"], chatRequest(), anyKey, { region: "eu" });
    expect(plan.candidates).toEqual([]);
    expect(modelsOutsideRegion(plan, "eu")).toEqual(["meta/llama", "x/grok"]);
  });

  it("leaves out models served, and models whose EU endpoints another rule removed", () => {
    const mixed = planRoute(catalog, ["x/grok", "mistral/small"], chatRequest(), anyKey, { region: "eu" });
    expect(modelsOutsideRegion(mixed, "eu")).toEqual(["x/grok"]);
    const ignored = planRoute(catalog, ["mistral/small", "x/grok"], chatRequest({ provider: { ignore: ["mistral"] } }), anyKey, { region: "eu" });
    expect(ignored.candidates).toEqual([]);
    expect(modelsOutsideRegion(ignored, "eu")).toEqual(["x/grok"]);
  });
});

describe("routeAudit", () => {
  it("keeps the candidates with their regions and every exclusion with its rule and reason", () => {
    const plan = planRoute(catalog, ["openai/gpt"], chatRequest({ provider: { ignore: ["azure-eu"] } }), anyKey, { region: "eu" });
    const audit = routeAudit(plan, "eu", "eu");
    expect(audit.excludedCount).toBe(3);
    expect(audit.route).toEqual({
      ingress: "eu",
      policy: "eu",
      candidates: [["openai/gpt:openai-eu", "eu"]],
      excluded: [
        ["openai/gpt", "openai", "region=eu", "endpoint region is us; the workspace is pinned to region eu"],
        ["openai/gpt", "azure-eu", "provider.ignore", "in provider.ignore"],
        ["openai/gpt", "openrouter", "region=eu", "endpoint region is global; the workspace is pinned to region eu"],
      ],
      truncated: 0,
    });
  });
});
