/**
 * @module index
 * Wiring only: the Worker's handlers.
 */
import { app } from "./app";
import { queue } from "./traces/consumer";

export default {
  fetch: app.fetch,
  queue,
} satisfies ExportedHandler<Env>;

export { Ledger } from "./billing/ledger";
export { LedgerShard } from "./billing/ledger-shard";
export { Health } from "./routing/health";
