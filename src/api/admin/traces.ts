/**
 * @module api/admin/traces
 * A workspace's trace destinations and their dead letters. Destinations are created or replaced
 * with PUT (secret fields encrypted under `MASTER_KEY`, never returned: only their last 4
 * characters), listed with their delivery health, tested with a synchronous send of a test trace,
 * and deleted. Dead letters — deliveries that exhausted their retries or failed permanently — are
 * listed and replayed into the delivery queue once the destination is fixed.
 *
 * Destinations are configuration (`DB`); dead letters hold trace bodies and live with the
 * workspace's region's pipeline (residency/bindings): an `eu` workspace's in `DB_EU`, replayed
 * into the EU queues, and its test sends use the EU buckets.
 */
import { Hono } from "hono";
import { z } from "zod";
import { requireWorkspace } from "../../auth/key-store";
import { masterKeyOf } from "../../auth/secrets";
import type { AppEnv } from "../../context";
import { GatewayError } from "../../errors";
import { deadLetterCounts, deleteDeadLettersOf, listDeadLetters, replayDeadLetters, type DeadLetterView } from "../../traces/dead-letters";
import { deliverToDestination } from "../../traces/delivery";
import { deliveryStates, type DeliveryState } from "../../traces/delivery-state";
import { destinationInputSchema } from "../../traces/destination-config";
import { deleteDestination, getDestination, getDestinationRecord, listDestinationRecords, putDestination, type DestinationRecord } from "../../traces/destination-store";
import { testTrace } from "../../traces/test-trace";
import { orRefuse, tracePipeline, type TracePipeline } from "../../residency/bindings";
import { policyOf } from "../../residency/policy";
import type { Workspace } from "../../db/schema";
import { readJsonBody, validate } from "../validate";

/** The trace pipeline of the workspace's region (503 when it is not bound). */
function pipelineOf(env: Env, workspace: Workspace): TracePipeline {
  const { region } = policyOf(workspace);
  return orRefuse(region, tracePipeline(env, region));
}

const destinationId = z.string().regex(/^[a-zA-Z0-9_-]{1,64}$/, "1–64 letters, digits, '_' or '-'");

const deadLetterQuery = z.object({
  destination_id: destinationId.optional(),
  limit: z.coerce.number().int().min(1).max(500).default(100),
  /** Epoch milliseconds: only dead letters older than this (the last `created_at` of the previous page). */
  before: z.coerce.number().int().positive().optional(),
});

const replayBody = z.strictObject({
  destination_id: destinationId.optional(),
  /** Replay exactly these dead letters (ids from the listing). */
  ids: z.array(z.string().min(1).max(128)).min(1).max(90).optional(),
  limit: z.number().int().min(1).max(500).default(100),
});

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

function destinationJson(record: DestinationRecord, state: DeliveryState | undefined, deadLetters: number) {
  const { type: _type, ...config } = record.config;
  return {
    id: record.id,
    type: record.type,
    name: record.name,
    enabled: record.enabled,
    sampling_rate: record.samplingRate,
    api_key_ids: record.apiKeyIds,
    privacy_mode: record.privacyMode,
    config,
    secret: Object.fromEntries(Object.entries(record.secretHint).map(([field, last4]) => [field, `…${last4}`])),
    delivery: {
      delivered: state?.delivered ?? 0,
      failed_attempts: state?.failed ?? 0,
      last_success_at: iso(state?.lastSuccessAt ?? null),
      last_error_at: iso(state?.lastErrorAt ?? null),
      last_error: state?.lastError ?? null,
      dead_letters: deadLetters,
    },
    created_at: iso(record.createdAt),
    updated_at: iso(record.updatedAt),
  };
}

function deadLetterJson(view: DeadLetterView) {
  return {
    id: view.id,
    destination_id: view.destinationId,
    generation_id: view.generationId,
    error: view.error,
    attempts: view.attempts,
    created_at: iso(view.createdAt),
  };
}

/** A JSON body that may be left out entirely (then `{}`). */
async function optionalJsonBody(request: Request): Promise<unknown> {
  const length = request.headers.get("content-length");
  if (length === "0" || request.body === null) return {};
  const text = await request.clone().text();
  return text.trim() === "" ? {} : readJsonBody(request);
}

export const tracesAdmin = new Hono<AppEnv>()
  .get("/workspaces/:id/destinations", async (c) => {
    const workspace = await requireWorkspace(c.env.DB, c.req.param("id"));
    const [records, states, dead] = await Promise.all([
      listDestinationRecords(c.env.DB, workspace.id),
      deliveryStates(c.env.DB, workspace.id),
      deadLetterCounts(pipelineOf(c.env, workspace).deadLetterDb, workspace.id),
    ]);
    return c.json({ data: records.map((r) => destinationJson(r, states.get(r.id), dead.get(r.id) ?? 0)) });
  })
  .get("/workspaces/:id/destinations/:destId", async (c) => {
    const workspace = await requireWorkspace(c.env.DB, c.req.param("id"));
    const id = validate(destinationId, c.req.param("destId"));
    const [record, states, dead] = await Promise.all([
      getDestinationRecord(c.env.DB, workspace.id, id),
      deliveryStates(c.env.DB, workspace.id),
      deadLetterCounts(pipelineOf(c.env, workspace).deadLetterDb, workspace.id),
    ]);
    if (!record) throw new GatewayError("not_found", `Destination not found: ${id}`);
    return c.json({ data: destinationJson(record, states.get(id), dead.get(id) ?? 0) });
  })
  .put("/workspaces/:id/destinations/:destId", async (c) => {
    const workspace = await requireWorkspace(c.env.DB, c.req.param("id"));
    const id = validate(destinationId, c.req.param("destId"));
    const input = validate(destinationInputSchema, await readJsonBody(c.req.raw));
    const result = await putDestination(c.env.DB, masterKeyOf(c.env), workspace.id, id, input);
    if (!result.ok) throw new GatewayError(result.code, result.message);
    const [states, dead] = await Promise.all([deliveryStates(c.env.DB, workspace.id), deadLetterCounts(pipelineOf(c.env, workspace).deadLetterDb, workspace.id)]);
    return c.json({ data: destinationJson(result.record, states.get(id), dead.get(id) ?? 0) }, result.created ? 201 : 200);
  })
  .delete("/workspaces/:id/destinations/:destId", async (c) => {
    const workspace = await requireWorkspace(c.env.DB, c.req.param("id"));
    const id = validate(destinationId, c.req.param("destId"));
    if (!(await deleteDestination(c.env.DB, workspace.id, id))) throw new GatewayError("not_found", `Destination not found: ${id}`);
    await deleteDeadLettersOf(pipelineOf(c.env, workspace).deadLetterDb, workspace.id, id);
    return c.json({ data: { id, deleted: true } });
  })
  .post("/workspaces/:id/destinations/:destId/test", async (c) => {
    const workspace = await requireWorkspace(c.env.DB, c.req.param("id"));
    const id = validate(destinationId, c.req.param("destId"));
    const destination = await getDestination(c.env, workspace.id, id);
    if (!destination) throw new GatewayError("not_found", `Destination not found: ${id}`);
    const trace = testTrace(workspace.id);
    const started = Date.now();
    const pipeline = pipelineOf(c.env, workspace);
    const [outcome] = await deliverToDestination({ DB: c.env.DB, MASTER_KEY: c.env.MASTER_KEY, TRACE_CONTENT: pipeline.content, TRACE_ARCHIVE: pipeline.archive }, destination, [trace]);
    const ms = Date.now() - started;
    const result = outcome ?? { ok: false as const, retryable: false, error: "no outcome", status: null, retryAfterSeconds: null };
    return c.json({
      data: {
        destination_id: id,
        generation_id: trace.generation_id,
        delivered: result.ok,
        status: result.status,
        ms,
        ...(result.ok ? {} : { error: result.error, retryable: result.retryable }),
      },
    });
  })
  .get("/workspaces/:id/dead-letters", async (c) => {
    const workspace = await requireWorkspace(c.env.DB, c.req.param("id"));
    const query = validate(deadLetterQuery, c.req.query());
    const rows = await listDeadLetters(pipelineOf(c.env, workspace).deadLetterDb, workspace.id, { destinationId: query.destination_id, before: query.before, limit: query.limit });
    return c.json({ data: rows.map(deadLetterJson) });
  })
  .post("/workspaces/:id/dead-letters/replay", async (c) => {
    const workspace = await requireWorkspace(c.env.DB, c.req.param("id"));
    const body = validate(replayBody, await optionalJsonBody(c.req.raw));
    const pipeline = pipelineOf(c.env, workspace);
    const queues = { DB: pipeline.deadLetterDb, TRACES: pipeline.traces, TRACE_DELIVERIES: pipeline.deliveries };
    const result = await replayDeadLetters(queues, workspace.id, { destinationId: body.destination_id, ids: body.ids, limit: body.limit });
    return c.json({ data: result });
  });
