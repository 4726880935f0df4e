/**
 * @module traces/messages
 * The three trace queues and what their messages carry. The TRACES queue carries a `Trace`; the
 * TRACE_DELIVERIES queue carries one trace for one destination, so each (trace, destination) pair
 * is retried and dead-lettered on its own; the TRACE_DLQ receives delivery messages (and traces
 * the fan-out gave up on) after their last retry.
 */
import { z } from "zod";
import { traceSchema } from "./schema";

/** Queue names as in wrangler.toml: the consumer dispatches on `batch.queue`. */
export const TRACE_QUEUES = {
  traces: "switchyard-traces",
  deliveries: "switchyard-trace-deliveries",
  deadLetters: "switchyard-trace-dlq",
} as const;

/**
 * The same pipeline for workspaces with region `eu`, created in the EU jurisdiction: an EU trace
 * enters, fans out and dead-letters only through these (residency/bindings).
 */
export const EU_TRACE_QUEUES = {
  traces: "switchyard-traces-eu",
  deliveries: "switchyard-trace-deliveries-eu",
  deadLetters: "switchyard-trace-dlq-eu",
} as const;

/**
 * A queue message may hold 128 KB. A trace message above this is stripped of its content, which
 * goes to R2. The margin (28 KB) covers the delivery envelope added around the trace and the
 * queue's own framing.
 */
export const MAX_TRACE_MESSAGE_BYTES = 100 * 1024;

/** `sendBatch` takes at most 100 messages and 256 KB; the byte budget keeps a margin for framing. */
export const SEND_BATCH_MAX_MESSAGES = 100;
export const SEND_BATCH_MAX_BYTES = 240 * 1024;

export const deliveryMessageSchema = z.object({
  kind: z.literal("delivery"),
  destination_id: z.string().min(1).max(64),
  trace: traceSchema,
});
export type DeliveryMessage = z.infer<typeof deliveryMessageSchema>;

/** What reaches the dead-letter queue: a delivery, or a trace whose fan-out never succeeded. */
export const deadLetterBodySchema = z.union([deliveryMessageSchema, traceSchema]);
export type DeadLetterBody = z.infer<typeof deadLetterBodySchema>;

/** UTF-8 bytes of the JSON a queue stores for `body` (messages are sent with contentType "json"). */
export function jsonBytes(body: unknown): number {
  return new TextEncoder().encode(JSON.stringify(body)).byteLength;
}

/**
 * Split items into runs of at most `maxItems` and about `maxBytes`, keeping their order (an item
 * larger than `maxBytes` travels alone).
 */
export function chunkBy<T>(items: readonly T[], bytesOf: (item: T) => number, maxItems: number, maxBytes: number): T[][] {
  const chunks: T[][] = [];
  let current: T[] = [];
  let bytes = 0;
  for (const item of items) {
    const size = bytesOf(item);
    if (current.length > 0 && (current.length >= maxItems || bytes + size > maxBytes)) {
      chunks.push(current);
      current = [];
      bytes = 0;
    }
    current.push(item);
    bytes += size;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

/**
 * Split messages into `sendBatch` calls within both limits, keeping their order (so the
 * deliveries of one trace stay together and a failed call retries as few traces as possible).
 */
export function chunkForSendBatch<T>(items: readonly T[], bytesOf: (item: T) => number): T[][] {
  return chunkBy(items, bytesOf, SEND_BATCH_MAX_MESSAGES, SEND_BATCH_MAX_BYTES);
}
