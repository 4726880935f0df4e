import type { Provider } from "../../../src/db/schema";

/** A provider row as D1 returns it; the env prefix is derived from the slug. */
export function provider(slug: string, overrides: Partial<Provider> = {}): Provider {
  return {
    slug,
    name: slug,
    family: "openai",
    envPrefix: slug.toUpperCase().replaceAll("-", "_"),
    baseUrl: `https://api.${slug}.example/v1`,
    region: "global",
    retainsPrompts: false,
    trainsOnData: false,
    zeroRetention: false,
    options: {},
    createdAt: 0,
    ...overrides,
  };
}
