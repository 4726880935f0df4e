/**
 * @module routing/plan
 * From the requested model(s) to an ordered list of candidate endpoints, with the reason each
 * excluded endpoint was left out and why each candidate sits where it does. Pure: no I/O, the
 * clock and randomness come in through options, so every rule is a table-driven unit test.
 *
 * Filters (hard): the workspace's region policy first (residency/endpoint-filter: an `eu`
 * workspace keeps only EU endpoints, and nothing in the request can loosen it), catalog status, the `:free` variant, capabilities (tools, images, output and
 * context length), the workspace's and the request's merged `provider` preferences
 * (routing/merge, routing/preferences), then a credential (routing/targets). Ordering (soft) is
 * routing/order.
 */
import { estimatePromptTokens } from "../billing/estimate";
import type { Catalog, CatalogEndpoint, CatalogModel } from "../catalog/store";
import type { UpstreamTarget } from "../providers/types";
import { requestedMaxTokens, type ChatRequest } from "../schemas/openai";
import type { ProviderPreferences } from "../schemas/openrouter";
import { residencyRejection } from "../residency/endpoint-filter";
import type { WorkspaceRegion } from "../residency/regions";
import type { EndpointHealth, HealthSnapshot } from "./health-types";
import { mergePreferences } from "./merge";
import { orderCandidates, type Cutoffs, type OrderOptions, type Rankable } from "./order";
import { preferenceFilter, type Rejection } from "./preferences";
import { resolveTarget, type EnvLookup } from "./targets";
import { resolveModel, variantSort, type SortBy, type Variant } from "./variants";

export { describeExclusions } from "./explain";

export interface Candidate extends Rankable {
  /** The catalog model (variant stripped): what the response names and the bill uses. */
  model: CatalogModel;
  endpoint: CatalogEndpoint;
  target: UpstreamTarget;
  /** The target carries the workspace's own key (BYOK): charged the BYOK fee, not the cost. */
  byok: boolean;
  /** The endpoint's health when the plan was made; undefined: no recent data. */
  health: EndpointHealth | undefined;
  /** Why it sits where it does: byok, order, unstable, preferred_*, sticky, sort, load balancing. */
  reasons: readonly string[];
}

/** Provider slug → the workspace's own API key for it (BYOK). */
export type ByokKeyMap = ReadonlyMap<string, string>;

const NO_BYOK: ByokKeyMap = new Map();

export interface Exclusion {
  model: string;
  provider: string;
  /** The rule that removed it, e.g. "max_price", "data_collection=deny": messages count by it. */
  constraint: string;
  reason: string;
}

export interface Plan {
  candidates: Candidate[];
  excluded: Exclusion[];
  /** Requested model ids the catalog does not know. */
  unknownModels: string[];
}

/** Health needs the time it is judged at; without a snapshot, time does not matter. */
type HealthOptions = { health?: undefined; now?: number } | { health: HealthSnapshot; now: number };

export type PlanOptions = HealthOptions & {
  /**
   * The workspace's region policy (residency): `eu` keeps only endpoints in the EU, before any
   * other rule. It comes from the workspace alone; the request has no say in it.
   */
  region?: WorkspaceRegion;
  /** The workspace's default `provider` preferences (merged with the request's, routing/merge). */
  workspacePreferences?: ProviderPreferences | null;
  /** The workspace's own keys: those endpoints go first and need no platform credential. */
  byok?: ByokKeyMap;
  /** Uniform [0, 1) for load balancing; without it the plan is deterministic (cheapest first). */
  random?: () => number;
  /** The conversation's last endpoint (routing/sticky); leads its model's stable endpoints. */
  stickyEndpointId?: string | null;
};

interface Needs {
  tools: boolean;
  images: boolean;
  /** The output cap asked for and the field that asked (for the message). */
  maxTokens: { value: number; field: "max_tokens" | "max_completion_tokens" } | undefined;
  promptTokens: number;
}

/** Which capabilities the request needs from an endpoint. */
function requirements(req: ChatRequest): Needs {
  const images = req.messages.some(
    (m) => Array.isArray(m.content) && m.content.some((part) => part.type === "image_url"),
  );
  const max = requestedMaxTokens(req);
  return {
    tools: (req.tools?.length ?? 0) > 0,
    images,
    maxTokens: max === undefined ? undefined : { value: max, field: req.max_completion_tokens != null ? "max_completion_tokens" : "max_tokens" },
    promptTokens: estimatePromptTokens(req),
  };
}

const rejection = (constraint: string, reason: string): Rejection => ({ constraint, reason });

function capabilityRejection(endpoint: CatalogEndpoint, model: CatalogModel, variant: Variant | null, needs: Needs): Rejection | null {
  if (!endpoint.enabled) return rejection("status=disabled", "endpoint disabled");
  if (variant === "free" && blendedCost(endpoint) > 0) return rejection(":free", "not free (the :free variant asks for free endpoints)");
  if (needs.tools && !endpoint.parameters.has("tools")) return rejection("tool use", "does not support tool use");
  if (needs.images && !model.inputModalities.includes("image")) return rejection("image input", "does not accept image input");
  const max = needs.maxTokens;
  if (max && endpoint.maxOutputTokens !== null && max.value > endpoint.maxOutputTokens) {
    return rejection("max_tokens", `${max.field} ${max.value} exceeds the endpoint's ${endpoint.maxOutputTokens} output tokens`);
  }
  // The prompt is an estimate (about four characters a token), so only a clear overflow excludes.
  if (needs.promptTokens + (max?.value ?? 0) > endpoint.contextLength) {
    const asked = max ? ` + ${max.field} ${max.value}` : "";
    return rejection("context length", `~${needs.promptTokens} prompt tokens${asked} exceed the endpoint's ${endpoint.contextLength}-token context`);
  }
  return null;
}

function blendedCost(endpoint: CatalogEndpoint): number {
  return endpoint.promptPrice + endpoint.completionPrice + endpoint.requestPrice;
}

type Sort = { by: SortBy; partition: "model" | "none" };

function sortOf(sort: ProviderPreferences["sort"]): Sort | undefined {
  if (sort === undefined) return undefined;
  return typeof sort === "string" ? { by: sort, partition: "model" } : { by: sort.by, partition: sort.partition ?? "model" };
}

function cutoffs(value: ProviderPreferences["preferred_min_throughput"]): Cutoffs | undefined {
  if (value === undefined) return undefined;
  if (typeof value === "number") return { p50: value };
  const out: Cutoffs = {};
  for (const p of ["p50", "p75", "p90", "p99"] as const) if (value[p] !== undefined) out[p] = value[p];
  return out;
}

/**
 * Candidates for `modelIds` in the order they should be tried. With `sort.partition: "none"`
 * every model's endpoints are ordered together; otherwise each model's endpoints are ordered on
 * their own and the models keep the request's fallback order, as OpenRouter's `models` does. A
 * model's variant (`:nitro`, `:floor`) sets its sort unless the request's own `provider.sort`
 * does; a workspace default sort yields to both. A provider with a BYOK key is usable even where
 * the platform has no credential for it.
 */
export function planRoute(catalog: Catalog, modelIds: string[], req: ChatRequest, env: EnvLookup, options: PlanOptions = {}): Plan {
  const byok = options.byok ?? NO_BYOK;
  const needs = requirements(req);
  const { preferences, conflict } = mergePreferences(options.workspacePreferences, req.provider);
  const preference = preferenceFilter(req, preferences);
  const requestSort = sortOf(req.provider?.sort);
  const mergedSort = sortOf(preferences?.sort);
  const orderOptions: Omit<OrderOptions, "sort"> = {
    order: preferences?.order ?? [],
    minThroughput: cutoffs(preferences?.preferred_min_throughput),
    maxLatencySeconds: cutoffs(preferences?.preferred_max_latency),
    now: options.now ?? 0,
    random: options.random,
    stickyEndpointId: options.stickyEndpointId,
  };
  const plan: Plan = { candidates: [], excluded: [], unknownModels: [] };
  const together: Candidate[] = [];
  const seen = new Set<string>();
  for (const requested of modelIds) {
    const resolved = resolveModel(catalog, requested);
    if (!resolved) {
      if (!plan.unknownModels.includes(requested)) plan.unknownModels.push(requested);
      continue;
    }
    const { model, variant } = resolved;
    if (seen.has(model.id)) continue;
    seen.add(model.id);
    const usable: Candidate[] = [];
    for (const endpoint of model.endpoints) {
      const exclude = (r: Rejection) => plan.excluded.push({ model: model.id, provider: endpoint.providerSlug, constraint: r.constraint, reason: r.reason });
      const rejected =
        (options.region ? residencyRejection(options.region, endpoint) : null) ??
        capabilityRejection(endpoint, model, variant, needs) ??
        (conflict ? rejection(`provider.only (${conflict})`, `provider.only allows no provider: ${conflict}`) : null) ??
        preference?.(endpoint) ??
        null;
      if (rejected) {
        exclude(rejected);
        continue;
      }
      const byokKey = byok.get(endpoint.providerSlug);
      const target = resolveTarget(endpoint, env, byokKey);
      if (!target.ok) {
        // The reason names the variable to set, so it is its own constraint.
        exclude(rejection(target.reason, target.reason));
        continue;
      }
      usable.push({
        model,
        endpoint,
        target: target.target,
        byok: byokKey !== undefined,
        health: options.health?.get(endpoint.id),
        reasons: variant ? [`variant :${variant}`] : [],
      });
    }
    if (mergedSort?.partition === "none") {
      together.push(...usable);
      continue;
    }
    const sort = requestSort?.by ?? variantSort(variant) ?? mergedSort?.by;
    plan.candidates.push(...orderCandidates(usable, { ...orderOptions, sort }));
  }
  if (mergedSort?.partition === "none") plan.candidates.push(...orderCandidates(together, { ...orderOptions, sort: mergedSort.by }));
  return plan;
}
