/**
 * @module providers/headers
 * Extra request headers from a provider row. Names are lower-cased so an adapter's own headers
 * (auth, versions) replace them instead of being sent twice; `x-switchyard-*` headers configure
 * the gateway itself and never leave it.
 */
import type { ProviderOptions } from "./types";

export function catalogHeaders(options: ProviderOptions): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(options.headers ?? {})) {
    const lower = name.toLowerCase();
    if (!lower.startsWith("x-switchyard-")) out[lower] = value;
  }
  return out;
}

/** A gateway-only setting from the row's headers, e.g. `x-switchyard-dialect`. */
export function gatewaySetting(options: ProviderOptions, name: string): string | undefined {
  for (const [key, value] of Object.entries(options.headers ?? {})) if (key.toLowerCase() === name) return value;
  return undefined;
}
