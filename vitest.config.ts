import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

export default defineConfig(async () => ({
  plugins: [
    cloudflareTest({
      wrangler: { configPath: "./wrangler.toml" },
      miniflare: {
        bindings: {
          TEST_MIGRATIONS: await readD1Migrations("./migrations"),
          ADMIN_TOKEN: "test-admin-token",
          // Keep-alives every 50 ms so tests see them without waiting seconds.
          STREAM_KEEPALIVE_SECONDS: "0.05",
          UPSTREAM_CONNECT_TIMEOUT_MS: "1000",
          UPSTREAM_FIRST_TOKEN_TIMEOUT_MS: "1000",
        },
      },
    }),
  ],
  test: {
    include: ["test/unit/**/*.test.ts", "test/integration/**/*.test.ts"],
    setupFiles: ["./test/apply-migrations.ts"],
  },
}));
