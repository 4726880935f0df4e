/**
 * @module traces/dead-letters
 * Deliveries that will not be retried any more, kept in D1 so an operator can see them (the
 * backlog of each destination) and replay them once the destination is fixed. Rows come from the
 * TRACE_DLQ consumer (retries exhausted; a dead-lettered TRACES batch becomes one row per trace)
 * and from both consumers directly (a permanent failure such as a 4xx, which no retry would fix).
 * Replay re-sends each body to the queue it came from — deliveries one message each, traces
 * packed into batch messages like the producer's — and deletes the rows.
 */
import { and, count, desc, eq, inArray, lt, type SQL } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { traceDeadLetters } from "../db/schema";
import { chunkForSendBatch, deadLetterBodySchema, jsonBytes, packTraces, traceBatch, type DeadLetterBody, type DeliveryMessage } from "./messages";
import type { Trace } from "./schema";

export interface DeadLetterInput {
  /** The queue message id, so a redelivered dead letter is recorded once. */
  id: string;
  body: DeadLetterBody;
  attempts: number;
  /** Null: the destination's last recorded error is used. */
  error: string | null;
}

/** A dead letter as the admin API lists it: no body, which may hold content. */
export interface DeadLetterView {
  id: string;
  destinationId: string | null;
  generationId: string;
  error: string | null;
  attempts: number;
  createdAt: number;
}

function traceOf(body: DeadLetterBody) {
  return "kind" in body ? body.trace : body;
}

const INSERT = `INSERT OR IGNORE INTO trace_dead_letters (id, workspace_id, destination_id, generation_id, body, error, attempts)
VALUES (?1, ?2, ?3, ?4, ?5, coalesce(?6, (SELECT last_error FROM trace_delivery_state WHERE workspace_id = ?2 AND destination_id = ?3)), ?7)`;

/** Store dead letters (idempotent by message id), in one D1 round trip. */
export async function recordDeadLetters(db: D1Database, letters: readonly DeadLetterInput[]): Promise<void> {
  if (letters.length === 0) return;
  await db.batch(
    letters.map((l) => {
      const trace = traceOf(l.body);
      const destinationId = "kind" in l.body ? l.body.destination_id : null;
      return db.prepare(INSERT).bind(l.id, trace.workspace_id, destinationId, trace.generation_id, JSON.stringify(l.body), l.error?.slice(0, 1024) ?? null, l.attempts);
    }),
  );
}

export interface DeadLetterQuery {
  destinationId?: string | undefined;
  /** Only rows created before this epoch ms (paging, newest first). */
  before?: number | undefined;
  limit: number;
}

function whereOf(workspaceId: string, query: { destinationId?: string | undefined; ids?: readonly string[] | undefined }): SQL | undefined {
  return and(
    eq(traceDeadLetters.workspaceId, workspaceId),
    query.destinationId === undefined ? undefined : eq(traceDeadLetters.destinationId, query.destinationId),
    query.ids === undefined ? undefined : inArray(traceDeadLetters.id, [...query.ids]),
  );
}

export async function listDeadLetters(db: D1Database, workspaceId: string, query: DeadLetterQuery): Promise<DeadLetterView[]> {
  return drizzle(db)
    .select({
      id: traceDeadLetters.id,
      destinationId: traceDeadLetters.destinationId,
      generationId: traceDeadLetters.generationId,
      error: traceDeadLetters.error,
      attempts: traceDeadLetters.attempts,
      createdAt: traceDeadLetters.createdAt,
    })
    .from(traceDeadLetters)
    .where(and(whereOf(workspaceId, query), query.before === undefined ? undefined : lt(traceDeadLetters.createdAt, query.before)))
    .orderBy(desc(traceDeadLetters.createdAt), desc(traceDeadLetters.id))
    .limit(query.limit);
}

/** Destination id → number of dead letters (the key `null`: traces the TRACES consumer gave up on). */
export async function deadLetterCounts(db: D1Database, workspaceId: string): Promise<Map<string | null, number>> {
  const rows = await drizzle(db)
    .select({ destinationId: traceDeadLetters.destinationId, n: count() })
    .from(traceDeadLetters)
    .where(eq(traceDeadLetters.workspaceId, workspaceId))
    .groupBy(traceDeadLetters.destinationId);
  return new Map(rows.map((r) => [r.destinationId, r.n]));
}

/** Forget a deleted destination's dead letters: replaying them could deliver nowhere. */
export async function deleteDeadLettersOf(db: D1Database, workspaceId: string, destinationId: string): Promise<void> {
  await drizzle(db)
    .delete(traceDeadLetters)
    .where(and(eq(traceDeadLetters.workspaceId, workspaceId), eq(traceDeadLetters.destinationId, destinationId)));
}

export interface ReplayQuery {
  destinationId?: string | undefined;
  ids?: readonly string[] | undefined;
  limit: number;
}

export interface ReplayResult {
  replayed: number;
  /** Rows whose body no longer parses (written by an incompatible version); left in place. */
  unreadable: number;
  /** Dead letters matching the query still stored after this replay. */
  remaining: number;
}

/** D1 binds at most 100 parameters per statement: delete by id in slices below that. */
const DELETE_SLICE = 90;

/**
 * Re-send dead letters, oldest first, to the queue each came from (deliveries to
 * TRACE_DELIVERIES, traces to TRACES in batch messages) and delete the rows of each `sendBatch`
 * once it succeeded. A failed send throws; rows sent before it are already deleted, so a retry
 * does not send them twice.
 */
export async function replayDeadLetters(env: Pick<Env, "DB" | "TRACES" | "TRACE_DELIVERIES">, workspaceId: string, query: ReplayQuery): Promise<ReplayResult> {
  const db = drizzle(env.DB);
  const where = whereOf(workspaceId, query);
  const rows = await db
    .select({ id: traceDeadLetters.id, body: traceDeadLetters.body })
    .from(traceDeadLetters)
    .where(where)
    .orderBy(traceDeadLetters.createdAt, traceDeadLetters.id)
    .limit(query.limit);
  const deliveries: Array<{ ids: string[]; body: DeliveryMessage }> = [];
  const traces: Array<{ id: string; trace: Trace; bytes: number }> = [];
  let unreadable = 0;
  for (const row of rows) {
    const parsed = safeBody(row.body);
    if (!parsed) unreadable++;
    else if ("kind" in parsed) deliveries.push({ ids: [row.id], body: parsed });
    else traces.push({ id: row.id, trace: parsed, bytes: jsonBytes(parsed) });
  }
  const batches = packTraces(traces, (t) => t.bytes).map((items) => ({ ids: items.map((t) => t.id), body: traceBatch(items.map((t) => t.trace)) }));
  let replayed = 0;
  const outgoing = [
    [env.TRACE_DELIVERIES, deliveries],
    [env.TRACES, batches],
  ] as const;
  for (const [queue, items] of outgoing) {
    for (const chunk of chunkForSendBatch<{ ids: string[]; body: unknown }>(items, (item) => jsonBytes(item.body))) {
      await queue.sendBatch(chunk.map((item) => ({ body: item.body, contentType: "json" as const })));
      const ids = chunk.flatMap((item) => item.ids);
      for (let i = 0; i < ids.length; i += DELETE_SLICE) {
        await db.delete(traceDeadLetters).where(and(eq(traceDeadLetters.workspaceId, workspaceId), inArray(traceDeadLetters.id, ids.slice(i, i + DELETE_SLICE))));
      }
      replayed += ids.length;
    }
  }
  const [left] = await db.select({ n: count() }).from(traceDeadLetters).where(where);
  return { replayed, unreadable, remaining: left?.n ?? 0 };
}

function safeBody(text: string): DeadLetterBody | null {
  try {
    const parsed = deadLetterBodySchema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}
