// @ts-check
/**
 * @module bench/cloudflare-prices
 * Cloudflare's list prices (Workers Paid, USD) for what the gateway is billed on, per unit, with
 * where each was read. Usage above the included monthly allowances is what these prices apply
 * to; the benchmark ignores the allowances (and the $5 monthly minimum), so its dollars per
 * million requests are the marginal cost at scale.
 *
 * Read on 2026-11-26 from the cloudflare-docs repository sources of the pages below (the
 * Durable Objects, D1 and Queues tables are shared partials: src/content/partials/durable-objects/
 * durable-objects-pricing.mdx, src/content/partials/workers/d1-pricing.mdx, …/queues_pricing.mdx).
 */

export const PRICES_READ_ON = "2026-11-26";

export const PRICE_SOURCES = [
  "https://developers.cloudflare.com/workers/platform/pricing/",
  "https://developers.cloudflare.com/durable-objects/platform/pricing/",
  "https://developers.cloudflare.com/d1/platform/pricing/",
  "https://developers.cloudflare.com/queues/platform/pricing/",
  "https://developers.cloudflare.com/r2/pricing/",
];

/**
 * @typedef {object} Price
 * @property {string} item
 * @property {number} usdPerMillion  Per million units.
 * @property {string} unit
 * @property {string} included  The monthly allowance this benchmark leaves out.
 */

/** @satisfies {Record<string, Price>} */
export const PRICES = {
  workerRequests: { item: "Workers requests", usdPerMillion: 0.3, unit: "request", included: "10 M / month" },
  workerCpuMs: { item: "Workers CPU time", usdPerMillion: 0.02, unit: "CPU ms", included: "30 M CPU ms / month" },
  doRequests: { item: "Durable Objects requests (RPC calls, alarms)", usdPerMillion: 0.15, unit: "request", included: "1 M / month" },
  doDurationGbS: { item: "Durable Objects duration", usdPerMillion: 12.5, unit: "GB-s (128 MB per active object)", included: "400,000 GB-s / month" },
  doRowsRead: { item: "Durable Objects SQLite rows read", usdPerMillion: 0.001, unit: "row", included: "25 B / month" },
  doRowsWritten: { item: "Durable Objects SQLite rows written (each setAlarm is one)", usdPerMillion: 1.0, unit: "row", included: "50 M / month" },
  d1RowsRead: { item: "D1 rows read", usdPerMillion: 0.001, unit: "row", included: "25 B / month" },
  d1RowsWritten: { item: "D1 rows written", usdPerMillion: 1.0, unit: "row", included: "50 M / month" },
  queueOperations: { item: "Queues operations (a message ≈ 3: write, read, delete)", usdPerMillion: 0.4, unit: "operation per 64 KB", included: "1 M / month" },
  r2ClassA: { item: "R2 Class A operations", usdPerMillion: 4.5, unit: "operation", included: "1 M / month" },
  r2ClassB: { item: "R2 Class B operations", usdPerMillion: 0.36, unit: "operation", included: "10 M / month" },
};

/** Durable Objects are billed for 128 MB while active, whatever they use. */
export const DO_BILLED_GB = 0.128;
