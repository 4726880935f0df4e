/**
 * How `tools/dev.mjs` wires catalog providers to the mock provider and writes the Worker's
 * variables. Pure functions: no gateway involved.
 */
import { describe, expect, it } from "vitest";
import { envFileLine, parseDotenv, wireProviders } from "../../tools/dev.mjs";

const providers = [
  { slug: "openai", family: "openai", envPrefix: "OPENAI", baseUrl: "https://api.openai.com/v1" },
  { slug: "azure-eu", family: "openai", envPrefix: "AZURE_OPENAI_EU", baseUrl: null, options: { deploymentInPath: true } },
  { slug: "anthropic", family: "anthropic", envPrefix: "ANTHROPIC", baseUrl: "https://api.anthropic.com/v1" },
  { slug: "vertex-anthropic", family: "anthropic", envPrefix: "ANTHROPIC_VERTEX_EU", baseUrl: null, options: { vertex: true } },
  { slug: "google-ai-studio", family: "gemini", envPrefix: "GEMINI", baseUrl: "https://generativelanguage.googleapis.com/v1beta" },
] as const;

describe("wireProviders", () => {
  it("points every provider without a key at the mock, under its own prefix and version path", () => {
    const { vars, wiring } = wireProviders([...providers], {}, "http://127.0.0.1:8790", false);

    expect(vars).toEqual({
      OPENAI_API_KEY: "mock-key",
      OPENAI_BASE_URL: "http://127.0.0.1:8790/openai/v1",
      AZURE_OPENAI_EU_API_KEY: "mock-key",
      AZURE_OPENAI_EU_BASE_URL: "http://127.0.0.1:8790/azure_openai_eu",
      ANTHROPIC_API_KEY: "mock-key",
      ANTHROPIC_BASE_URL: "http://127.0.0.1:8790/anthropic/v1",
      ANTHROPIC_VERTEX_EU_API_KEY: "mock-key",
      ANTHROPIC_VERTEX_EU_BASE_URL: "http://127.0.0.1:8790/anthropic_vertex_eu",
      GEMINI_API_KEY: "mock-key",
      GEMINI_BASE_URL: "http://127.0.0.1:8790/gemini/v1beta",
    });
    expect(wiring.every((w) => w.target === "mock")).toBe(true);
  });

  it("keeps a provider with a real key on its real URL, or on the base URL the developer set", () => {
    const known = { OPENAI_API_KEY: "sk-real", GEMINI_API_KEY: "g-real", GEMINI_BASE_URL: "https://proxy.example/v1beta" };
    const { vars, wiring } = wireProviders([...providers], known, "http://127.0.0.1:8790", false);

    expect(vars.OPENAI_API_KEY).toBe("sk-real");
    expect(vars.OPENAI_BASE_URL).toBeUndefined();
    expect(vars.GEMINI_BASE_URL).toBe("https://proxy.example/v1beta");
    expect(wiring.find((w) => w.slug === "openai")).toMatchObject({ target: "real", baseUrl: "https://api.openai.com/v1" });
    expect(vars.ANTHROPIC_API_KEY).toBe("mock-key");
  });

  it("ignores real keys when told to put everything on the mock", () => {
    const { vars } = wireProviders([...providers], { OPENAI_API_KEY: "sk-real", OPENAI_BASE_URL: "https://x" }, "http://m", true);

    expect(vars.OPENAI_API_KEY).toBe("mock-key");
    expect(vars.OPENAI_BASE_URL).toBe("http://m/openai/v1");
  });
});

describe("env files", () => {
  it("reads .dev.vars lines with comments, quotes and export", () => {
    expect(parseDotenv("# c\nA=1\nexport B = two # note\nC='x y'\nD=\"l1\\nl2\"\n\nbad line")).toEqual({
      A: "1",
      B: "two",
      C: "x y",
      D: "l1\nl2",
    });
  });

  it("writes values so that dotenv-expand leaves dollar signs alone", () => {
    expect(envFileLine("TOKEN", "a$HOME${B}c")).toBe("TOKEN='a\\$HOME\\${B}c'");
    expect(() => envFileLine("TOKEN", "it's")).toThrow(/quotes/);
  });
});
