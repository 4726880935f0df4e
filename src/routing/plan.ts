/**
 * @module routing/plan
 * From the requested model(s) to an ordered list of candidate endpoints, with the reason each
 * excluded endpoint was left out. Pure: no I/O, so every rule is a table-driven unit test.
 */
import type { Catalog, CatalogEndpoint, CatalogModel } from "../catalog/store";
import type { UpstreamTarget } from "../providers/types";
import type { ChatRequest } from "../schemas/openai";
import { preferenceFilter } from "./preferences";
import { resolveTarget, type EnvLookup } from "./targets";

export interface Candidate {
  model: CatalogModel;
  endpoint: CatalogEndpoint;
  target: UpstreamTarget;
  /** The target carries the workspace's own key (BYOK): charged the BYOK fee, not the cost. */
  byok: boolean;
}

/** Provider slug → the workspace's own API key for it (BYOK). */
export type ByokKeyMap = ReadonlyMap<string, string>;

const NO_BYOK: ByokKeyMap = new Map();

export interface Exclusion {
  model: string;
  provider: string;
  reason: string;
}

export interface Plan {
  candidates: Candidate[];
  excluded: Exclusion[];
  /** Requested model ids the catalog does not know. */
  unknownModels: string[];
}

/** Which capabilities the request needs from an endpoint. */
function requirements(req: ChatRequest): { tools: boolean; images: boolean } {
  const images = req.messages.some(
    (m) => Array.isArray(m.content) && m.content.some((part) => part.type === "image_url"),
  );
  return { tools: (req.tools?.length ?? 0) > 0, images };
}

function exclusionReason(
  endpoint: CatalogEndpoint,
  model: CatalogModel,
  needs: { tools: boolean; images: boolean },
): string | null {
  if (!endpoint.enabled) return "endpoint disabled";
  if (needs.tools && !endpoint.parameters.has("tools")) return "does not support tool use";
  if (needs.images && !model.inputModalities.includes("image")) return "does not accept image input";
  return null;
}

/** Cheapest first by the sum of prompt and completion prices; ties keep catalog order. */
function byPrice(a: Candidate, b: Candidate): number {
  return a.endpoint.promptPrice + a.endpoint.completionPrice - (b.endpoint.promptPrice + b.endpoint.completionPrice);
}

/**
 * Candidates for `modelIds` in order: each model's endpoints (those the workspace has its own key
 * for first, as OpenRouter tries BYOK endpoints first; then the request's `provider.order`; then
 * cheapest first), then the next model's, as OpenRouter's `models` fallback does. A provider with
 * a BYOK key is usable even where the platform has no credential for it.
 */
export function planRoute(catalog: Catalog, modelIds: string[], req: ChatRequest, env: EnvLookup, byok: ByokKeyMap = NO_BYOK): Plan {
  const needs = requirements(req);
  const preference = preferenceFilter(req);
  const order = req.provider?.order ?? [];
  const plan: Plan = { candidates: [], excluded: [], unknownModels: [] };
  const seen = new Set<string>();
  for (const modelId of modelIds) {
    if (seen.has(modelId)) continue;
    seen.add(modelId);
    const model = catalog.models.get(modelId);
    if (!model) {
      plan.unknownModels.push(modelId);
      continue;
    }
    const usable: Candidate[] = [];
    for (const endpoint of model.endpoints) {
      const exclude = (reason: string) => plan.excluded.push({ model: model.id, provider: endpoint.providerSlug, reason });
      const reason = exclusionReason(endpoint, model, needs) ?? preference?.(endpoint) ?? null;
      if (reason) {
        exclude(reason);
        continue;
      }
      const byokKey = byok.get(endpoint.providerSlug);
      const resolved = resolveTarget(endpoint, env, byokKey);
      if (!resolved.ok) {
        exclude(resolved.reason);
        continue;
      }
      usable.push({ model, endpoint, target: resolved.target, byok: byokKey !== undefined });
    }
    usable.sort((a, b) => {
      if (a.byok !== b.byok) return a.byok ? -1 : 1;
      const ia = order.indexOf(a.endpoint.providerSlug);
      const ib = order.indexOf(b.endpoint.providerSlug);
      if (ia !== ib) return (ia === -1 ? Infinity : ia) - (ib === -1 ? Infinity : ib);
      return byPrice(a, b);
    });
    plan.candidates.push(...usable);
  }
  return plan;
}

/** "does not support tool use: groq, together; endpoint disabled: mistral" */
export function describeExclusions(excluded: Exclusion[]): string {
  const byReason = new Map<string, Set<string>>();
  for (const e of excluded) byReason.set(e.reason, (byReason.get(e.reason) ?? new Set()).add(e.provider));
  return [...byReason].map(([reason, who]) => `${reason}: ${[...who].join(", ")}`).join("; ");
}
