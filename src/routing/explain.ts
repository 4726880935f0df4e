/**
 * @module routing/explain
 * Plans in words: JSON-ready data saying where each candidate sits and why, what was excluded
 * and why, and the one-line summary a client reads when nothing is left — counted per
 * constraint and naming the providers, so "why did my request fail?" has an answer in the error.
 */
import type { Exclusion, Plan } from "./plan";

export interface ExplainedCandidate {
  model: string;
  provider: string;
  endpoint: string;
  /** 1 = tried first. */
  position: number;
  reasons: string[];
}

export interface ExplainedPlan {
  candidates: ExplainedCandidate[];
  excluded: Array<{ model: string; provider: string; constraint: string; reason: string }>;
  unknown_models: string[];
}

/** The plan as plain data (safe to log or return): no credentials, no catalog rows. */
export function explainPlan(plan: Plan): ExplainedPlan {
  return {
    candidates: plan.candidates.map((c, i) => ({
      model: c.model.id,
      provider: c.endpoint.providerSlug,
      endpoint: c.endpoint.id,
      position: i + 1,
      reasons: [...c.reasons],
    })),
    excluded: plan.excluded.map(({ model, provider, constraint, reason }) => ({ model, provider, constraint, reason })),
    unknown_models: [...plan.unknownModels],
  };
}

/**
 * "max_price removed 3 endpoints (groq, together, deepinfra); data_collection=deny removed 1
 * endpoint (deepseek)": constraints in first-seen order, endpoints counted, providers named once.
 */
export function describeExclusions(excluded: readonly Exclusion[]): string {
  const byConstraint = new Map<string, { count: number; providers: Set<string> }>();
  for (const e of excluded) {
    const entry = byConstraint.get(e.constraint) ?? { count: 0, providers: new Set<string>() };
    entry.count++;
    entry.providers.add(e.provider);
    byConstraint.set(e.constraint, entry);
  }
  return [...byConstraint]
    .map(([constraint, { count, providers }]) => `${constraint} removed ${count} endpoint${count === 1 ? "" : "s"} (${[...providers].join(", ")})`)
    .join("; ");
}

/** True when tool use alone emptied the plan: OpenRouter answers that case with a 404. */
export function onlyToolsExcluded(excluded: readonly Exclusion[]): boolean {
  return excluded.length > 0 && excluded.every((e) => e.constraint === "tool use");
}
