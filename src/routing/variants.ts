/**
 * @module routing/variants
 * OpenRouter's model variants: `author/slug:nitro` (fastest first), `:floor` (cheapest first) and
 * `:free` (free endpoints only). A variant is a routing hint, not a model: the catalog model is
 * looked up without it and the response names the catalog model. A suffix this module does not
 * know stays part of the id, so `author/slug:turbo` is simply an unknown model (404), never a
 * silent fallback to `author/slug`.
 */
import type { Catalog, CatalogModel } from "../catalog/store";

export type Variant = "nitro" | "floor" | "free";
export type SortBy = "price" | "throughput" | "latency";

const VARIANTS: ReadonlySet<string> = new Set<Variant>(["nitro", "floor", "free"]);

function isVariant(s: string): s is Variant {
  return VARIANTS.has(s);
}

/** The sort a variant asks for; `:free` filters instead of ordering. */
export function variantSort(variant: Variant | null): SortBy | undefined {
  if (variant === "nitro") return "throughput";
  if (variant === "floor") return "price";
  return undefined;
}

export interface ResolvedModel {
  /** The id as the client wrote it. */
  requested: string;
  model: CatalogModel;
  variant: Variant | null;
}

/**
 * The catalog model a requested id names, or null. An exact catalog id wins, so a catalog that
 * lists `author/slug:free` as a model of its own keeps it; otherwise a known variant suffix is
 * stripped. Only the last `:suffix` counts (model slugs themselves never contain a colon).
 */
export function resolveModel(catalog: Catalog, requested: string): ResolvedModel | null {
  const exact = catalog.models.get(requested);
  if (exact) return { requested, model: exact, variant: null };
  const colon = requested.lastIndexOf(":");
  if (colon <= 0) return null;
  const suffix = requested.slice(colon + 1);
  if (!isVariant(suffix)) return null;
  const model = catalog.models.get(requested.slice(0, colon));
  return model ? { requested, model, variant: suffix } : null;
}
