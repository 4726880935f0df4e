import type { D1Migration } from "cloudflare:test";

declare global {
  namespace Cloudflare {
    interface Env {
      TEST_MIGRATIONS: D1Migration[];
      /** An empty D1 database for migration tests (vitest.config.ts); nothing migrates it. */
      MIGRATION_DB: D1Database;
    }
  }
}
