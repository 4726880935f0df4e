// @ts-check
/**
 * @module bench/cost
 * Dollars per million requests from the meter of a run: billable units per request × list price
 * (bench/cloudflare-prices.mjs), included allowances left out.
 */
import { DO_BILLED_GB, PRICES } from "./cloudflare-prices.mjs";

/**
 * @typedef {import("./scenarios.mjs").Meter} Meter
 * @typedef {keyof typeof PRICES} PriceKey
 * @typedef {{ key: PriceKey, item: string, unitsPerRequest: number, usdPerMillionRequests: number, note: string }} CostLine
 */

/**
 * @param {Meter} meter
 * @param {number} cpuMicrosPerRequest  The gateway workerd's CPU per request in the matching
 *   floor-versus-gateway scenario (the metered run's own CPU is not used: its meters cost CPU).
 * @returns {{ lines: CostLine[], totalUsdPerMillion: number, lowTrafficUsdPerMillion: number }}
 *   `lowTrafficUsdPerMillion`: the same requests if each trace were alone in its 50 ms window and
 *   in its consumer batch (an isolate seeing less than one request per window): 3 queue
 *   operations and one consumer invocation per trace instead of the shares this run measured.
 */
export function costPerMillionRequests(meter, cpuMicrosPerRequest) {
  const n = meter.workerInvocations;
  /** @type {Array<[PriceKey, number, string]>} */
  const units = [
    ["workerRequests", 1 + meter.queueInvocations / n, `1 + ${meter.queueInvocations} queue consumer invocations (trace batches) over ${n} requests`],
    ["workerCpuMs", cpuMicrosPerRequest / 1000, "whole workerd process (Worker, Durable Objects, local D1): an upper bound"],
    ["doRequests", (meter.doRequests + meter.doAlarms) / n, `${meter.doRequests} RPC calls + ${meter.doAlarms} alarms`],
    ["doDurationGbS", ((meter.doCallMs / 1000) * DO_BILLED_GB) / n, "estimate: Σ wall time callers waited on calls × 128 MB (ignores sharing between concurrent calls)"],
    ["doRowsRead", meter.doRowsRead / n, ""],
    ["doRowsWritten", meter.doRowsWritten / n, `includes ${meter.doSetAlarms} setAlarm calls`],
    ["d1RowsRead", meter.d1RowsRead / n, `${meter.d1Queries} statements in ${meter.d1Calls} calls`],
    ["d1RowsWritten", meter.d1RowsWritten / n, ""],
    [
      "queueOperations",
      meter.queueOperations / n,
      `traces to one webhook, batched per 50 ms window: ${meter.queueWrites} writes, ${meter.queueReads} reads, ${meter.queueDeletes} deletes (${(n / Math.max(1, meter.queueWrites)).toFixed(1)} traces per message at this load)`,
    ],
    ["r2ClassA", meter.r2ClassA / n, "trace content over 100 KiB only"],
    ["r2ClassB", meter.r2ClassB / n, "trace content over 100 KiB only"],
  ];
  const lines = units.map(([key, perRequest, note]) => ({
    key,
    item: PRICES[key].item,
    unitsPerRequest: perRequest,
    usdPerMillionRequests: perRequest * PRICES[key].usdPerMillion,
    note,
  }));
  const totalUsdPerMillion = lines.reduce((sum, line) => sum + line.usdPerMillionRequests, 0);
  const shared = (/** @type {PriceKey} */ key) => lines.find((line) => line.key === key)?.usdPerMillionRequests ?? 0;
  const consumerShare = (meter.queueInvocations / n) * PRICES.workerRequests.usdPerMillion;
  const lowTrafficUsdPerMillion =
    totalUsdPerMillion - shared("queueOperations") - consumerShare + 3 * PRICES.queueOperations.usdPerMillion + PRICES.workerRequests.usdPerMillion;
  return { lines, totalUsdPerMillion, lowTrafficUsdPerMillion };
}
