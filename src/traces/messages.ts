/**
 * @module traces/messages
 * The three trace queues and what their messages carry. The TRACES queue carries a batch of
 * traces (`{ v: 1, traces: [...] }`, filled by the producer's window, traces/batcher.ts) — or, from
 * before batching, a bare `Trace`, which the consumer still reads. The TRACE_DELIVERIES queue
 * carries one trace for one destination, so each (trace, destination) pair the TRACES consumer
 * could not deliver at once is retried and dead-lettered on its own; the TRACE_DLQ receives
 * delivery messages (and TRACES messages the consumer gave up on) after their last retry.
 */
import { z } from "zod";
import { traceSchema, type Trace } from "./schema";

/** Queue names as in wrangler.toml: the consumer dispatches on `batch.queue`. */
export const TRACE_QUEUES = {
  traces: "switchyard-traces",
  deliveries: "switchyard-trace-deliveries",
  deadLetters: "switchyard-trace-dlq",
} as const;

/**
 * The same pipeline for workspaces with region `eu`, created in the EU jurisdiction: an EU trace
 * enters, is delivered and retried, and dead-letters only through these (residency/bindings).
 */
export const EU_TRACE_QUEUES = {
  traces: "switchyard-traces-eu",
  deliveries: "switchyard-trace-deliveries-eu",
  deadLetters: "switchyard-trace-dlq-eu",
} as const;

/**
 * A queue message may hold 128 KB. A trace above this is stripped of its content, which goes to
 * R2. The margin (28 KB) covers the batch or delivery envelope added around the trace (a trace
 * this large travels alone in its batch) and the queue's own framing.
 */
export const MAX_TRACE_MESSAGE_BYTES = 100 * 1024;

/** `sendBatch` takes at most 100 messages and 256 KB; the byte budget keeps a margin for framing. */
export const SEND_BATCH_MAX_MESSAGES = 100;
export const SEND_BATCH_MAX_BYTES = 240 * 1024;

/**
 * Queues bills every message per started 64 KB (written, read, deleted: 3 operations each), so a
 * batch is filled up to this and no further: past it, the same bytes cost the same in two
 * messages, and smaller messages spread better over consumers. A trace larger than this (up to
 * MAX_TRACE_MESSAGE_BYTES) travels alone.
 */
export const TRACE_BATCH_TARGET_BYTES = 64 * 1024;
/** Traces per batch message at most: bounds what one message asks of the consumer. */
export const MAX_TRACES_PER_MESSAGE = 100;
export const TRACE_BATCH_VERSION = 1;

/**
 * A TRACES message: several traces of one isolate's window. The traces are checked one by one
 * (`traceSchema`), so one unreadable trace costs only itself.
 */
export const traceBatchSchema = z.object({ v: z.literal(TRACE_BATCH_VERSION), traces: z.array(z.unknown()) });
export interface TraceBatch {
  v: typeof TRACE_BATCH_VERSION;
  traces: Trace[];
}

export function traceBatch(traces: Trace[]): TraceBatch {
  return { v: TRACE_BATCH_VERSION, traces };
}

/** The JSON of `{"v":1,"traces":[]}`: what a batch adds around its traces, besides a comma between each two. */
const BATCH_FRAME_BYTES = 19;

/** Split items (traces, or things carrying one) into batches within TRACE_BATCH_TARGET_BYTES and MAX_TRACES_PER_MESSAGE, in order. */
export function packTraces<T>(items: readonly T[], bytesOf: (item: T) => number): T[][] {
  return chunkBy(items, (item) => bytesOf(item) + 1, MAX_TRACES_PER_MESSAGE, TRACE_BATCH_TARGET_BYTES - BATCH_FRAME_BYTES);
}

/** What a TRACES message holds: its readable traces, and the problems of those that are not. */
export interface TracesRead {
  traces: Trace[];
  unreadable: z.core.$ZodIssue[][];
}

/**
 * The traces of a TRACES message body: a batch, or a bare trace enqueued before batching (or
 * replayed by an older version). Null when the body is neither.
 */
export function readTraces(body: unknown): TracesRead | null {
  const batch = traceBatchSchema.safeParse(body);
  const candidates = batch.success ? batch.data.traces : [body];
  const read: TracesRead = { traces: [], unreadable: [] };
  for (const candidate of candidates) {
    const trace = traceSchema.safeParse(candidate);
    if (trace.success) read.traces.push(trace.data);
    else read.unreadable.push(trace.error.issues.slice(0, 5));
  }
  return !batch.success && read.traces.length === 0 ? null : read;
}

export const deliveryMessageSchema = z.object({
  kind: z.literal("delivery"),
  destination_id: z.string().min(1).max(64),
  trace: traceSchema,
  /**
   * Attempts made before this message existed: 1 when the TRACES consumer tried the destination
   * and handed the failure over, so backoff and the dead letter count it. Absent in messages
   * enqueued before direct delivery (and in old dead letters): 0.
   */
  prior_attempts: z.number().int().nonnegative().max(100).optional(),
});
export type DeliveryMessage = z.infer<typeof deliveryMessageSchema>;

/** Attempts of a delivery so far: the queue's count plus those made before it was enqueued. */
export function attemptsOf(message: Pick<Message<unknown>, "attempts">, body: DeliveryMessage): number {
  return message.attempts + (body.prior_attempts ?? 0);
}

/**
 * What is stored (and replayed) as a dead letter: a delivery, or a trace the TRACES consumer gave
 * up on (retries exhausted before it could be delivered or handed over).
 */
export const deadLetterBodySchema = z.union([deliveryMessageSchema, traceSchema]);
export type DeadLetterBody = z.infer<typeof deadLetterBodySchema>;

/** UTF-8 bytes of the JSON a queue stores for `body` (messages are sent with contentType "json"). */
export function jsonBytes(body: unknown): number {
  return utf8Length(JSON.stringify(body));
}

/**
 * The exact JSON size of `traceBatch(traces)` from the traces' own sizes (jsonBytes of each), so
 * a batch is never serialized just to be measured.
 */
export function traceBatchBytes(traceBytes: readonly number[]): number {
  let bytes = BATCH_FRAME_BYTES + Math.max(0, traceBytes.length - 1);
  for (const b of traceBytes) bytes += b;
  return bytes;
}

/**
 * UTF-8 length of a string without encoding it (no buffer per measurement). JSON.stringify
 * escapes lone surrogates, so every surrogate in its output is half of a 4-byte pair.
 */
export function utf8Length(text: string): number {
  let bytes = text.length;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) continue;
    if (code < 0x800) bytes += 1;
    else if (code >= 0xd800 && code <= 0xdfff) bytes += 1; // each half of a pair: 2 units → 4 bytes
    else bytes += 2;
  }
  return bytes;
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
