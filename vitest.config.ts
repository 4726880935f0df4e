import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

export default defineConfig(async () => ({
  plugins: [
    cloudflareTest({
      wrangler: { configPath: "./wrangler.toml" },
      miniflare: {
        // An empty D1 database besides wrangler.toml's DB and DB_EU, which the setup file migrates:
        // test/integration/generation-rows.test.ts migrates it step by step to test a migration on
        // rows stored before it.
        d1Databases: { MIGRATION_DB: "switchyard-migration-test" },
        bindings: {
          TEST_MIGRATIONS: await readD1Migrations("./migrations"),
          ADMIN_TOKEN: "test-admin-token",
          MASTER_KEY: "test-master-key-0123456789abcdef0123456789abcdef",
          // Keep-alives every 50 ms so tests see them without waiting seconds.
          STREAM_KEEPALIVE_SECONDS: "0.05",
          UPSTREAM_CONNECT_TIMEOUT_MS: "1000",
          UPSTREAM_FIRST_TOKEN_TIMEOUT_MS: "1000",
          // Local workerd has no Durable Object jurisdictions: EU workspaces use the plain namespaces
          // here (src/residency/jurisdiction.ts). The jurisdiction path itself is tested with doubles.
          RESIDENCY_LOCAL_FALLBACK: "1",
          // Requests to https://eu.gateway.test come in through the EU region (test/helpers.ts EU_ORIGIN).
          REGION_HOSTS: "eu.gateway.test=eu",
          // Every provider points at a fake host that msw answers in tests.
          OPENAI_API_KEY: "test-openai-key",
          OPENAI_BASE_URL: "https://openai.upstream.test/v1",
          OPENAI_EU_API_KEY: "test-openai_eu-key",
          OPENAI_EU_BASE_URL: "https://openai-eu.upstream.test/v1",
          AZURE_OPENAI_EU_API_KEY: "test-azure_openai_eu-key",
          AZURE_OPENAI_EU_BASE_URL: "https://azure-openai-eu.upstream.test",
          ANTHROPIC_API_KEY: "test-anthropic-key",
          ANTHROPIC_BASE_URL: "https://anthropic.upstream.test/v1",
          ANTHROPIC_VERTEX_EU_API_KEY: "test-anthropic_vertex_eu-key",
          ANTHROPIC_VERTEX_EU_BASE_URL: "https://anthropic-vertex-eu.upstream.test",
          GEMINI_API_KEY: "test-gemini-key",
          GEMINI_BASE_URL: "https://gemini.upstream.test/v1beta",
          GOOGLE_VERTEX_EU_API_KEY: "test-google_vertex_eu-key",
          GOOGLE_VERTEX_EU_BASE_URL: "https://google-vertex-eu.upstream.test/v1beta",
          MISTRAL_API_KEY: "test-mistral-key",
          MISTRAL_BASE_URL: "https://mistral.upstream.test/v1",
          GROQ_API_KEY: "test-groq-key",
          GROQ_BASE_URL: "https://groq.upstream.test/v1",
          TOGETHER_API_KEY: "test-together-key",
          TOGETHER_BASE_URL: "https://together.upstream.test/v1",
          DEEPSEEK_API_KEY: "test-deepseek-key",
          DEEPSEEK_BASE_URL: "https://deepseek.upstream.test/v1",
          XAI_API_KEY: "test-xai-key",
          XAI_BASE_URL: "https://xai.upstream.test/v1",
          OPENROUTER_API_KEY: "test-openrouter-key",
          OPENROUTER_BASE_URL: "https://openrouter.upstream.test/v1",
        },
      },
    }),
  ],
  test: {
    include: ["test/unit/**/*.test.ts", "test/integration/**/*.test.ts"],
    setupFiles: ["./test/apply-migrations.ts"],
  },
}));
