/**
 * @module routing/targets
 * Resolving an endpoint into something an adapter can call: base URL and credential come from the
 * environment (`<PREFIX>_API_KEY`, `<PREFIX>_BASE_URL`), so a deployment behind an egress proxy and
 * every test can point providers elsewhere. The environment's base URL wins over the provider
 * row's (the row holds the provider's public URL; the deployment may route it through a proxy).
 * A workspace's own key (BYOK) replaces the platform's credential; the base URL stays the same.
 */
import type { CatalogEndpoint } from "../catalog/store";
import type { UpstreamTarget } from "../providers/types";

export type EnvLookup = (name: string) => string | undefined;

/** Reads string variables from the Worker's env without widening its type. */
export function envLookup(env: Env): EnvLookup {
  // Read in place: a copy of env per request cost more than the lookups it served.
  return (name) => {
    const value: unknown = Reflect.get(env, name);
    return typeof value === "string" && value.length > 0 ? value : undefined;
  };
}

export type TargetResult = { ok: true; target: UpstreamTarget } | { ok: false; reason: string };

/** Resolve `endpoint` with the platform's credential, or with `byokKey` when the workspace has one. */
export function resolveTarget(endpoint: CatalogEndpoint, env: EnvLookup, byokKey?: string): TargetResult {
  const { provider } = endpoint;
  const apiKey = byokKey ?? env(`${provider.envPrefix}_API_KEY`);
  if (!apiKey) return { ok: false, reason: `no credential configured (${provider.envPrefix}_API_KEY)` };
  const baseUrl = env(`${provider.envPrefix}_BASE_URL`) ?? provider.baseUrl;
  if (!baseUrl) return { ok: false, reason: `no base URL configured (${provider.envPrefix}_BASE_URL)` };
  return {
    ok: true,
    target: {
      family: provider.family,
      baseUrl,
      apiKey,
      model: endpoint.upstreamModel,
      maxOutputTokens: endpoint.maxOutputTokens,
      options: provider.options,
    },
  };
}
