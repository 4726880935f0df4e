/**
 * @module traces/consumer
 * The Worker's `queue()` handler. A Worker has one queue handler for every queue it consumes, so
 * this dispatches on `batch.queue`: TRACES fans out (traces/fanout.ts), TRACE_DELIVERIES delivers
 * (traces/delivery.ts), TRACE_DLQ records dead letters in D1 for the admin API to list and replay.
 */
import { retryDelaySeconds } from "./backoff";
import { recordDeadLetters, type DeadLetterInput } from "./dead-letters";
import { deliverBatch } from "./delivery";
import { fanOut } from "./fanout";
import { deadLetterBodySchema, TRACE_QUEUES } from "./messages";

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

export async function queue(batch: MessageBatch<unknown>, env: Env, _ctx: ExecutionContext): Promise<void> {
  switch (batch.queue) {
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
