/**
 * @module index
 * Wiring only: the Worker's handlers.
 */
import { app } from "./app";

export default {
  fetch: app.fetch,
} satisfies ExportedHandler<Env>;

export { Ledger } from "./billing/ledger";
export { LedgerShard } from "./billing/ledger-shard";
