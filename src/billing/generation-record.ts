/**
 * @module billing/generation-record
 * The generation record: one D1 row per served request (what `GET /generation` and the residency
 * report read), in the D1 database of the workspace's region (`DB_EU` for an `eu` workspace,
 * residency/bindings), with the route decision (residency/audit): region of ingress, endpoints
 * considered and excluded, the endpoint used and its region.
 *
 * Records are written in windows (window-batcher.ts): what an isolate's requests finish within
 * GENERATION_WINDOW_MS goes in one D1 `batch`. D1 bills rows, not queries, so this saves no money;
 * it saves D1's time. A database runs one query at a time, so a query per request would make the
 * one D1 database every workspace writes to the ceiling on the gateway's request rate; and in
 * local workerd each query costs about 1 ms of CPU (bench/results.md, Calibration), more than the
 * rest of the request path. The cost: a record is readable up to one window later.
 */
import { WindowBatcher } from "../window-batcher";
import type { Charge, Outcome, SettlementContext } from "./settlement";

/**
 * How long a window's first record waits for company: a few requests' worth in a busy isolate,
 * and short next to how soon anyone asks `GET /generation` (OpenRouter's own records lag).
 */
export const GENERATION_WINDOW_MS = 50;
/**
 * Records per D1 batch. Each statement counts against the invocation's D1 queries, 50 on the
 * Workers free plan (1,000 paid), and the request that sends the window may have run its own.
 */
export const GENERATION_WINDOW_MAX_RECORDS = 25;
/** Bound on a window's size in bytes of route JSON and text, far below a D1 call's payload. */
const GENERATION_WINDOW_MAX_BYTES = 512 * 1024;
/** As for traces: a D1 batch takes milliseconds, so only a torn-down request stalls this long. */
const GENERATION_STALL_MS = 10_000;

/**
 * The generation record's columns in insert order (src/db/schema.ts `generations`; `created_at`
 * takes its SQL default). One hand-written statement instead of drizzle's insert builder: this
 * runs once per request, and building the query cost more CPU than sending it. A repeat of the
 * same record (a stalled window re-sent) is ignored.
 */
const INSERT_GENERATION = `INSERT INTO generations (id, workspace_id, key_id, request_id, model, provider_name, endpoint_id,
  upstream_model, streamed, cancelled, is_byok, finish_reason, native_finish_reason, tokens_prompt, tokens_completion,
  tokens_cached, tokens_cache_write, tokens_reasoning, cost_micros, upstream_cost_micros, latency_ms, ttft_ms,
  generation_time_ms, attempts, ingress_region, endpoint_region, excluded_count, route)
  VALUES (${Array.from({ length: 28 }, () => "?").join(", ")})
  ON CONFLICT DO NOTHING`;

type Value = string | number | null;

/** One record's values, in INSERT_GENERATION's column order. */
type Row = Value[];

/**
 * Write the record of a served request. Resolves once the D1 batch carrying it has settled
 * (written, or failed and logged); never rejects. Hand the promise to the request's `waitUntil`.
 */
export function recordGeneration(ctx: SettlementContext, outcome: Outcome, charge: Charge, batcher: WindowBatcher<D1Database, Row> = generationBatcher): Promise<void> {
  const row = generationRow(ctx, outcome, charge);
  const route = row[row.length - 1];
  return batcher.add(ctx.db, row, 512 + (typeof route === "string" ? route.length : 0));
}

export function generationRow(ctx: SettlementContext, outcome: Outcome, charge: Charge): Row {
  const { usage, candidate } = outcome;
  return [
    outcome.generationId,
    ctx.auth.workspace.id,
    ctx.auth.key.id,
    outcome.requestId,
    candidate.model.id,
    candidate.endpoint.provider.name,
    candidate.endpoint.id,
    candidate.endpoint.upstreamModel,
    outcome.streamed ? 1 : 0,
    outcome.cancelled ? 1 : 0,
    charge.byok ? 1 : 0,
    outcome.finishReason,
    outcome.nativeFinishReason,
    usage.promptTokens,
    usage.completionTokens,
    usage.cachedTokens,
    usage.cacheWriteTokens,
    usage.reasoningTokens,
    charge.chargedMicros,
    charge.upstreamMicros,
    outcome.endedAt - outcome.startedAt,
    outcome.firstTokenAt === null ? null : outcome.firstTokenAt - outcome.startedAt,
    outcome.firstTokenAt === null ? null : outcome.endedAt - outcome.firstTokenAt,
    outcome.attempts,
    ctx.route.ingressRegion,
    candidate.endpoint.effectiveRegion,
    ctx.route.excludedCount,
    JSON.stringify(ctx.route.route),
  ];
}

/**
 * Insert a window's records in one D1 batch. A batch is one transaction, so a record D1 refuses
 * would take the window's others with it: when the batch fails, each record is tried alone, and
 * only those that fail again are lost (logged with their ids).
 */
export async function insertGenerations(db: D1Database, rows: Row[]): Promise<void> {
  const statement = db.prepare(INSERT_GENERATION);
  try {
    await db.batch(rows.map((row) => statement.bind(...row)));
    return;
  } catch (error) {
    if (rows.length === 1) return logLost(rows, error);
  }
  await Promise.all(rows.map((row) => statement.bind(...row).run().then(() => undefined, (error: unknown) => logLost([row], error))));
}

function logLost(rows: Row[], error: unknown): void {
  console.error(
    JSON.stringify({
      level: "error",
      msg: "generation records could not be written",
      generationIds: rows.map((r) => r[0]),
      workspaceIds: [...new Set(rows.map((r) => r[1]))],
      error: error instanceof Error ? error.message : String(error),
    }),
  );
}

/** The isolate's batcher: one window per D1 binding (DB, DB_EU). */
export const generationBatcher = new WindowBatcher<D1Database, Row>(
  "generation record",
  insertGenerations,
  { windowMs: GENERATION_WINDOW_MS, maxItems: GENERATION_WINDOW_MAX_RECORDS, maxWeight: GENERATION_WINDOW_MAX_BYTES, stallMs: GENERATION_STALL_MS },
  (row) => ({ generationId: row[0] }),
);
