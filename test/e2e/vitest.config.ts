/**
 * End-to-end tests: `tools/dev.mjs` (wrangler dev + the mock provider) driven by real clients
 * from Node. Plain Node environment, not the Workers plugin. Files run one after another because
 * they share the mock's fault rules and hit counters.
 */
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/e2e/**/*.e2e.test.ts"],
    environment: "node",
    globalSetup: ["./test/e2e/global-setup.ts"],
    fileParallelism: false,
    testTimeout: 15_000,
    hookTimeout: 15_000,
  },
});
