/**
 * @module traces/consumer
 * The Worker's `queue()` handler. A Worker has one queue handler for every queue it consumes, so
 * this dispatches on `batch.queue`: TRACES delivers directly and hands failures over
 * (traces/direct-delivery.ts), TRACE_DELIVERIES retries them (traces/delivery.ts), TRACE_DLQ
 * records dead letters in D1 for the admin API to list and replay.
 *
 * The EU queues (EU_TRACE_QUEUES) run the same steps on the EU pipeline (residency/bindings): the
 * TRACES consumer reads content from TRACE_CONTENT_EU, archives to TRACE_ARCHIVE_EU, hands
 * failures to TRACE_DELIVERIES_EU and records dead letters in DB_EU, and so do the others. When
 * the EU pipeline is not fully bound the batch is retried — it stays in the EU queue (and ends in
 * the EU dead-letter queue) — and is never sent through a non-EU queue, bucket or database.
 */
import { retryDelaySeconds } from "./backoff";
import { recordDeadLetters, type DeadLetterInput } from "./dead-letters";
import { deliverBatch } from "./delivery";
import { deliverTraces } from "./direct-delivery";
import { attemptsOf, deliveryMessageSchema, EU_TRACE_QUEUES, readTraces, TRACE_QUEUES } from "./messages";
import { tracePipeline, type TracePipeline } from "../residency/bindings";

/**
 * The dead letters a DLQ message stands for: a delivery (one), or a TRACES message — a batch, one
 * per readable trace, or a bare trace from before batching. Null when it is none of these.
 */
function lettersOf(message: Message<unknown>): DeadLetterInput[] | null {
  // The error is the destination's last recorded one (recordDeadLetters looks it up).
  const delivery = deliveryMessageSchema.safeParse(message.body);
  if (delivery.success) return [{ id: message.id, body: delivery.data, attempts: attemptsOf(message, delivery.data), error: null }];
  const read = readTraces(message.body);
  if (!read || read.traces.length === 0) return null;
  if (read.unreadable.length > 0) {
    console.error(JSON.stringify({ level: "error", msg: "dead-lettered traces do not match the schema; dropped", messageId: message.id, dropped: read.unreadable.length }));
  }
  const [only] = read.traces;
  if (only && read.traces.length === 1 && read.unreadable.length === 0) return [{ id: message.id, body: only, attempts: message.attempts, error: null }];
  // One row per trace, keyed by the message so a redelivered dead letter is recorded once.
  return read.traces.map((trace) => ({ id: `${message.id}:${trace.generation_id}`, body: trace, attempts: message.attempts, error: null }));
}

/** Store what reached the dead-letter queue; ack once stored (a D1 failure retries the batch). */
export async function recordDeadLetterBatch(batch: MessageBatch<unknown>, env: Pick<Env, "DB">): Promise<void> {
  const letters: Array<{ message: Message<unknown>; letters: DeadLetterInput[] }> = [];
  for (const message of batch.messages) {
    const parsed = lettersOf(message);
    if (!parsed) {
      console.error(JSON.stringify({ level: "error", msg: "dead letter does not match any trace message; dropped", messageId: message.id }));
      message.ack();
      continue;
    }
    letters.push({ message, letters: parsed });
  }
  try {
    await recordDeadLetters(
      env.DB,
      letters.flatMap((l) => l.letters),
    );
    for (const { message } of letters) message.ack();
  } catch (error) {
    console.error(JSON.stringify({ level: "error", msg: "dead letters could not be recorded; retrying", error: String(error) }));
    for (const { message } of letters) message.retry({ delaySeconds: retryDelaySeconds(message.attempts) });
  }
}

/** Run `consume` on the EU pipeline, or retry the whole batch where it is when it is not bound. */
async function onEuPipeline(batch: MessageBatch<unknown>, env: Env, consume: (pipeline: TracePipeline) => Promise<void>): Promise<void> {
  const pipeline = tracePipeline(env, "eu");
  if (!pipeline.ok) {
    console.error(JSON.stringify({ level: "error", msg: "EU trace pipeline not bound; retrying the batch in its EU queue", queue: batch.queue, problem: pipeline.problem }));
    batch.retryAll();
    return;
  }
  await consume(pipeline.value);
}

export async function queue(batch: MessageBatch<unknown>, env: Env, _ctx: ExecutionContext): Promise<void> {
  switch (batch.queue) {
    case EU_TRACE_QUEUES.traces:
      return onEuPipeline(batch, env, (eu) =>
        deliverTraces(batch, { DB: env.DB, MASTER_KEY: env.MASTER_KEY, TRACE_CONTENT: eu.content, TRACE_ARCHIVE: eu.archive, DEAD_LETTER_DB: eu.deadLetterDb, TRACE_DELIVERIES: eu.deliveries }),
      );
    case EU_TRACE_QUEUES.deliveries:
      return onEuPipeline(batch, env, (eu) =>
        deliverBatch(batch, { DB: env.DB, MASTER_KEY: env.MASTER_KEY, TRACE_CONTENT: eu.content, TRACE_ARCHIVE: eu.archive, DEAD_LETTER_DB: eu.deadLetterDb }),
      );
    case EU_TRACE_QUEUES.deadLetters:
      return onEuPipeline(batch, env, (eu) => recordDeadLetterBatch(batch, { DB: eu.deadLetterDb }));
    case TRACE_QUEUES.traces:
      return deliverTraces(batch, env);
    case TRACE_QUEUES.deliveries:
      return deliverBatch(batch, env);
    case TRACE_QUEUES.deadLetters:
      return recordDeadLetterBatch(batch, env);
    default:
      // A queue bound in wrangler.toml without a handler here: a deployment mistake. Retrying keeps
      // the messages (and sends them to a dead-letter queue if one is configured) instead of losing them.
      console.error(JSON.stringify({ level: "error", msg: "no consumer for queue", queue: batch.queue }));
      batch.retryAll();
  }
}
