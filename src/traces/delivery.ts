/**
 * @module traces/delivery
 * Delivering traces to one destination (`deliverToDestination`, shared by both consumers and the
 * admin API's test send), and the TRACE_DELIVERIES consumer: the retry path. The TRACES consumer
 * delivers directly (traces/direct-delivery.ts) and enqueues here only the (trace, destination)
 * pairs that failed or that it could not try, one message each, so a failing destination is
 * retried on its own schedule without holding or repeating anyone else's traces.
 *
 * Messages of the same destination in a batch are delivered together (one OTLP request, one
 * Langfuse batch, one S3 object; webhooks one POST each), then each message is settled on its own
 * outcome: delivered → ack; worth retrying → `retry` with exponential backoff or the
 * destination's Retry-After (after the queue's max_retries it lands in TRACE_DLQ); permanent (a
 * 4xx, a secret that does not decrypt) → recorded as a dead letter at once and acked. Backoff
 * counts the attempt the TRACES consumer already made (`prior_attempts`). One D1 round trip per
 * batch records each destination's delivery health.
 */
import { retryDelaySeconds } from "./backoff";
import { traceForDelivery } from "./content";
import { recordDeadLetters, type DeadLetterInput } from "./dead-letters";
import { recordDeliveryState, DeliveryTallies } from "./delivery-state";
import { getDestination, type Destination } from "./destination-store";
import { deliverTo, type DeliveryOutcome } from "./destinations";
import { mapLimited } from "./destinations/http";
import { WEBHOOK_CONCURRENCY } from "./destinations/webhook";
import { attemptsOf, chunkBy, deliveryMessageSchema, jsonBytes, type DeliveryMessage } from "./messages";
import type { Trace } from "./schema";

export type DeliveryEnv = Pick<Env, "DB" | "MASTER_KEY"> &
  Partial<Pick<Env, "TRACE_CONTENT" | "TRACE_ARCHIVE">> & {
    /**
     * Where dead letters are recorded (they hold trace bodies): the D1 database of the pipeline's
     * region (`DB_EU` for the EU queues, residency/bindings); `DB` when unset.
     */
    DEAD_LETTER_DB?: D1Database;
  };

/** A destination's request carries at most this many traces and about this many bytes. */
const GROUP_MAX_TRACES = 50;
const GROUP_MAX_BYTES = 4 * 1024 * 1024;
/** Destinations delivered to at once within a batch (webhooks open up to 3 connections each; Workers allow 6 open). */
export const DESTINATION_CONCURRENCY = 2;

/**
 * The traces one round of requests to `destination` carries: a wave of a webhook's concurrent
 * POSTs, or one batched request (OTLP, Langfuse, S3). A consumer that stops after a failed round
 * spends at most one delivery timeout on a destination that is down.
 */
export function tracesPerRound(destination: Destination): number {
  return destination.target?.type === "webhook" ? WEBHOOK_CONCURRENCY : GROUP_MAX_TRACES;
}

/**
 * Outbound requests (subrequests) delivering `traces` to `destination` makes at most: a POST per
 * trace for a webhook, a request per group otherwise, plus an R2 read per trace whose content was
 * offloaded; none when the destination cannot deliver at all.
 */
export function requestsFor(destination: Destination, traces: readonly Trace[]): number {
  if (!destination.target) return 0;
  const reads = destination.privacyMode ? 0 : traces.filter((t) => t.content_ref).length;
  const sends = destination.target.type === "webhook" ? traces.length : Math.ceil(traces.length / GROUP_MAX_TRACES);
  return sends + reads;
}

/**
 * Deliver traces to one destination now: content filled in from R2 or stripped (privacy mode),
 * sent in requests of bounded size. One outcome per trace, in order. Used by the consumer and by
 * the admin API's test send.
 */
export async function deliverToDestination(env: DeliveryEnv, destination: Destination, traces: readonly Trace[]): Promise<DeliveryOutcome[]> {
  if (!destination.target) {
    const outcome: DeliveryOutcome = { ok: false, retryable: false, error: `destination cannot deliver: ${destination.problem ?? "unknown problem"}`, status: null, retryAfterSeconds: null };
    return traces.map(() => outcome);
  }
  const target = destination.target;
  const outcomes = new Array<DeliveryOutcome>(traces.length);
  const ready: Array<{ index: number; trace: Trace; bytes: number }> = [];
  await Promise.all(
    traces.map(async (trace, index) => {
      try {
        const view = await traceForDelivery(env.TRACE_CONTENT, trace, destination.privacyMode);
        ready.push({ index, trace: view, bytes: jsonBytes(view) });
      } catch (error) {
        outcomes[index] = { ok: false, retryable: true, error: `trace content could not be read from R2: ${String(error)}`, status: null, retryAfterSeconds: null };
      }
    }),
  );
  ready.sort((a, b) => a.index - b.index);
  for (const group of chunkBy(ready, (r) => r.bytes, GROUP_MAX_TRACES, GROUP_MAX_BYTES)) {
    const results = await deliverTo(target, group.map((r) => r.trace), env);
    group.forEach((r, i) => {
      outcomes[r.index] = results[i] ?? { ok: false, retryable: true, error: "no outcome reported", status: null, retryAfterSeconds: null };
    });
  }
  return outcomes;
}

interface Parsed {
  message: Message<unknown>;
  body: DeliveryMessage;
}

export async function deliverBatch(batch: MessageBatch<unknown>, env: DeliveryEnv): Promise<void> {
  const byDestination = new Map<string, Parsed[]>();
  for (const message of batch.messages) {
    const parsed = deliveryMessageSchema.safeParse(message.body);
    if (!parsed.success) {
      console.error(JSON.stringify({ level: "error", msg: "delivery message does not match the schema; dropped", messageId: message.id, issues: parsed.error.issues.slice(0, 5) }));
      message.ack();
      continue;
    }
    const key = `${parsed.data.trace.workspace_id}\u0000${parsed.data.destination_id}`;
    const list = byDestination.get(key) ?? [];
    list.push({ message, body: parsed.data });
    byDestination.set(key, list);
  }

  const tallies = new DeliveryTallies();
  const dead: Array<{ message: Message<unknown>; letter: DeadLetterInput }> = [];
  await mapLimited([...byDestination.values()], DESTINATION_CONCURRENCY, async (items) => {
    const first = items[0];
    if (!first) return;
    const workspaceId = first.body.trace.workspace_id;
    const destinationId = first.body.destination_id;
    let destination: Destination | null;
    try {
      destination = await getDestination(env, workspaceId, destinationId);
    } catch (error) {
      console.error(JSON.stringify({ level: "error", msg: "trace destination could not be loaded; retrying", workspaceId, destinationId, error: String(error) }));
      for (const { message } of items) message.retry({ delaySeconds: retryDelaySeconds(message.attempts) });
      return;
    }
    if (!destination || !destination.enabled) {
      // Deleted or disabled since the hand-over: the operator no longer wants these delivered.
      for (const { message } of items) message.ack();
      return;
    }
    const outcomes = await deliverToDestination(env, destination, items.map((i) => i.body.trace));
    const now = Date.now();
    items.forEach(({ message, body }, i) => {
      const outcome = outcomes[i] ?? { ok: false, retryable: true, error: "no outcome", status: null, retryAfterSeconds: null };
      if (outcome.ok) {
        tallies.success(workspaceId, destinationId, now);
        message.ack();
        return;
      }
      tallies.failure(workspaceId, destinationId, now, outcome.error);
      const attempts = attemptsOf(message, body);
      if (outcome.retryable) message.retry({ delaySeconds: retryDelaySeconds(attempts, outcome.retryAfterSeconds) });
      else dead.push({ message, letter: { id: message.id, body, attempts, error: outcome.error } });
    });
  });

  if (dead.length > 0) {
    try {
      await recordDeadLetters(env.DEAD_LETTER_DB ?? env.DB, dead.map((d) => d.letter));
      for (const d of dead) d.message.ack();
    } catch (error) {
      console.error(JSON.stringify({ level: "error", msg: "dead letters could not be recorded; retrying them", error: String(error) }));
      for (const d of dead) d.message.retry({ delaySeconds: retryDelaySeconds(d.message.attempts) });
    }
  }
  try {
    await recordDeliveryState(env.DB, tallies.all);
  } catch (error) {
    // Health numbers only: never worth redelivering traces that did arrive.
    console.error(JSON.stringify({ level: "error", msg: "trace delivery state could not be recorded", error: String(error) }));
  }
}
