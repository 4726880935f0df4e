/**
 * @module traces/consumer
 * The Worker's `queue()` handler. A Worker has one queue handler for every queue it consumes, so
 * this dispatches on `batch.queue`: TRACES fans out (traces/fanout.ts), TRACE_DELIVERIES delivers
 * (traces/delivery.ts), TRACE_DLQ records dead letters in D1 for the admin API to list and replay.
 *
 * The EU queues (EU_TRACE_QUEUES) run the same steps on the EU pipeline (residency/bindings): the
 * fan-out writes to TRACE_DELIVERIES_EU, deliveries read content from TRACE_CONTENT_EU, and dead
 * letters are recorded in DB_EU. When the EU pipeline is not fully bound the batch is retried —
 * it stays in the EU queue (and ends in the EU dead-letter queue) — and is never sent through a
 * non-EU queue, bucket or database.
 */
import { retryDelaySeconds } from "./backoff";
import { recordDeadLetters, type DeadLetterInput } from "./dead-letters";
import { deliverBatch } from "./delivery";
import { fanOut } from "./fanout";
import { deadLetterBodySchema, EU_TRACE_QUEUES, TRACE_QUEUES } from "./messages";
import { tracePipeline, type TracePipeline } from "../residency/bindings";

/** Store what reached the dead-letter queue; ack once stored (a D1 failure retries the batch). */
export async function recordDeadLetterBatch(batch: MessageBatch<unknown>, env: Pick<Env, "DB">): Promise<void> {
  const letters: Array<{ message: Message<unknown>; letter: DeadLetterInput }> = [];
  for (const message of batch.messages) {
    const parsed = deadLetterBodySchema.safeParse(message.body);
    if (!parsed.success) {
      console.error(JSON.stringify({ level: "error", msg: "dead letter does not match any trace message; dropped", messageId: message.id }));
      message.ack();
      continue;
    }
    // The error is the destination's last recorded one (recordDeadLetters looks it up).
    letters.push({ message, letter: { id: message.id, body: parsed.data, attempts: message.attempts, error: null } });
  }
  try {
    await recordDeadLetters(env.DB, letters.map((l) => l.letter));
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
      return onEuPipeline(batch, env, (eu) => fanOut(batch, { DB: env.DB, MASTER_KEY: env.MASTER_KEY, TRACE_DELIVERIES: eu.deliveries }));
    case EU_TRACE_QUEUES.deliveries:
      return onEuPipeline(batch, env, (eu) =>
        deliverBatch(batch, { DB: env.DB, MASTER_KEY: env.MASTER_KEY, TRACE_CONTENT: eu.content, TRACE_ARCHIVE: eu.archive, DEAD_LETTER_DB: eu.deadLetterDb }),
      );
    case EU_TRACE_QUEUES.deadLetters:
      return onEuPipeline(batch, env, (eu) => recordDeadLetterBatch(batch, { DB: eu.deadLetterDb }));
    case TRACE_QUEUES.traces:
      return fanOut(batch, env);
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
