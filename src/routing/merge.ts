/**
 * @module routing/merge
 * A workspace's default provider preferences merged with the request's `provider` object. The
 * workspace is the operator's policy, so whatever restricts routing (allow-lists, deny-lists,
 * privacy, price caps) can only be tightened by a request, never loosened; what only orders
 * endpoints (`order`, `sort`, `allow_fallbacks`, `preferred_*`) is the request's choice when it
 * makes one, the workspace's otherwise.
 */
import type { ProviderPreferences } from "../schemas/openrouter";

type Price = NonNullable<ProviderPreferences["max_price"]>["prompt"];
type MaxPrice = NonNullable<ProviderPreferences["max_price"]>;

export interface MergedPreferences {
  /** The preferences routing applies; undefined when neither side sets any. */
  preferences: ProviderPreferences | undefined;
  /**
   * Why no endpoint at all may serve the request, when the two sides contradict each other
   * (an empty intersection of `only` lists). Worded for the client: it names both lists.
   */
  conflict: string | null;
}

const lowerSet = (list: readonly string[]) => new Set(list.map((s) => s.toLowerCase()));

/** Entries of `a` also in `b`, case-insensitively, keeping `a`'s spelling and order. */
function intersect(a: readonly string[], b: readonly string[]): string[] {
  const keep = lowerSet(b);
  return a.filter((s) => keep.has(s.toLowerCase()));
}

/** `a` then the entries of `b` not already in `a`, case-insensitively. */
function union(a: readonly string[], b: readonly string[]): string[] {
  const seen = lowerSet(a);
  const out = [...a];
  for (const s of b) {
    if (seen.has(s.toLowerCase())) continue;
    seen.add(s.toLowerCase());
    out.push(s);
  }
  return out;
}

function priceValue(price: Price): number {
  return typeof price === "number" ? price : Number(price);
}

/** The lower of two caps; a side without a cap does not limit. */
function lowerCap(a: Price, b: Price): Price {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return priceValue(b) < priceValue(a) ? b : a;
}

function mergeMaxPrice(workspace: MaxPrice | undefined, request: MaxPrice | undefined): MaxPrice | undefined {
  if (!workspace) return request;
  if (!request) return workspace;
  const merged: MaxPrice = { ...workspace, ...request };
  for (const field of ["prompt", "completion", "request", "image"] as const) {
    const cap = lowerCap(workspace[field], request[field]);
    if (cap !== undefined) merged[field] = cap;
  }
  return merged;
}

/** Both lists when both are set; either one alone otherwise. */
function bothOrEither<T>(workspace: T | undefined, request: T | undefined, both: (w: T, r: T) => T): T | undefined {
  if (workspace === undefined) return request;
  if (request === undefined) return workspace;
  return both(workspace, request);
}

/** Enforcement switches: on when either side turns it on, else the request's word, else the workspace's. */
function eitherOn<T>(workspace: T | undefined, request: T | undefined, on: T): T | undefined {
  if (workspace === on || request === on) return on;
  return request ?? workspace;
}

/**
 * Merge `workspace` defaults with the `request`'s own preferences (see the module comment for the
 * rules). Unknown fields pass through, the request's over the workspace's.
 */
export function mergePreferences(
  workspace: ProviderPreferences | null | undefined,
  request: ProviderPreferences | undefined,
): MergedPreferences {
  if (!workspace) return { preferences: request, conflict: null };
  if (!request) return { preferences: workspace, conflict: null };

  const merged: ProviderPreferences = { ...workspace, ...request };
  const assign = <K extends keyof ProviderPreferences>(key: K, value: ProviderPreferences[K] | undefined) => {
    if (value === undefined) delete merged[key];
    else merged[key] = value;
  };

  // Restrictions: the workspace caps the request.
  assign("only", bothOrEither(workspace.only, request.only, (w, r) => intersect(r, w)));
  assign("ignore", bothOrEither(workspace.ignore, request.ignore, union));
  assign("quantizations", bothOrEither(workspace.quantizations, request.quantizations, (w, r) => intersect(r, w)));
  assign("max_price", mergeMaxPrice(workspace.max_price, request.max_price));
  assign("data_collection", eitherOn(workspace.data_collection, request.data_collection, "deny"));
  assign("zdr", eitherOn(workspace.zdr, request.zdr, true));
  assign("require_parameters", eitherOn(workspace.require_parameters, request.require_parameters, true));
  // Ordering: the request's choice when it makes one.
  for (const key of ["order", "sort", "allow_fallbacks", "preferred_min_throughput", "preferred_max_latency"] as const) {
    assign(key, request[key] ?? workspace[key]);
  }

  let conflict: string | null = null;
  if (workspace.only && request.only && merged.only?.length === 0) {
    conflict = `the request's only [${request.only.join(", ")}] and the workspace's only [${workspace.only.join(", ")}] share no provider`;
  }
  return { preferences: merged, conflict };
}
