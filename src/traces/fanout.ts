/**
 * @module traces/fanout
 * The TRACES consumer: one trace in, one delivery message per destination that wants it out, to
 * TRACE_DELIVERIES. Fanning out through a second queue is what makes destinations independent: each
 * (trace, destination) pair is retried, delayed and dead-lettered on its own, so a broken
 * destination neither blocks the others nor makes them receive a trace twice.
 *
 * A trace is acknowledged once all its delivery messages are enqueued. When a `sendBatch` fails the
 * traces it carried are retried whole; deliveries of those traces that another call already sent
 * may then be sent again (at-least-once, like the queue itself — receivers dedupe by generation id).
 */
import { retryDelaySeconds } from "./backoff";
import { getDestinations, type Destination } from "./destination-store";
import { chunkForSendBatch, jsonBytes, type DeliveryMessage } from "./messages";
import { wants } from "./sampling";
import { traceSchema, type Trace } from "./schema";

export type FanOutEnv = Pick<Env, "DB" | "MASTER_KEY" | "TRACE_DELIVERIES">;

interface Pending {
  message: Message<unknown>;
  trace: Trace;
  /** Delivery messages this trace fans out to. */
  deliveries: number;
  /** A `sendBatch` carrying one of them failed. */
  failed: boolean;
}

/** The destinations of a workspace that receive `trace`. */
export function destinationsFor(destinations: readonly Destination[], trace: Trace): Destination[] {
  return destinations.filter((d) => d.enabled && wants(d.filter, trace));
}

export async function fanOut(batch: MessageBatch<unknown>, env: FanOutEnv): Promise<void> {
  const byWorkspace = new Map<string, Pending[]>();
  for (const message of batch.messages) {
    const parsed = traceSchema.safeParse(message.body);
    if (!parsed.success) {
      // Never valid, never will be: retrying would only delay the dead-letter queue's noise.
      console.error(JSON.stringify({ level: "error", msg: "trace message does not match the schema; dropped", messageId: message.id, issues: parsed.error.issues.slice(0, 5) }));
      message.ack();
      continue;
    }
    const list = byWorkspace.get(parsed.data.workspace_id) ?? [];
    list.push({ message, trace: parsed.data, deliveries: 0, failed: false });
    byWorkspace.set(parsed.data.workspace_id, list);
  }

  const outgoing: Array<{ pending: Pending; body: DeliveryMessage; bytes: number }> = [];
  for (const [workspaceId, pendings] of byWorkspace) {
    let destinations: readonly Destination[];
    try {
      destinations = await getDestinations(env, workspaceId);
    } catch (error) {
      console.error(JSON.stringify({ level: "error", msg: "trace destinations could not be loaded; retrying", workspaceId, error: String(error) }));
      for (const p of pendings) p.message.retry({ delaySeconds: retryDelaySeconds(p.message.attempts) });
      continue;
    }
    for (const pending of pendings) {
      for (const destination of destinationsFor(destinations, pending.trace)) {
        const body: DeliveryMessage = { kind: "delivery", destination_id: destination.id, trace: pending.trace };
        outgoing.push({ pending, body, bytes: jsonBytes(body) });
        pending.deliveries++;
      }
      if (pending.deliveries === 0) pending.message.ack();
    }
  }

  for (const chunk of chunkForSendBatch(outgoing, (o) => o.bytes)) {
    try {
      await env.TRACE_DELIVERIES.sendBatch(chunk.map((o) => ({ body: o.body, contentType: "json" as const })));
    } catch (error) {
      console.error(JSON.stringify({ level: "error", msg: "trace deliveries could not be enqueued; retrying their traces", error: String(error), messages: chunk.length }));
      for (const o of chunk) o.pending.failed = true;
    }
  }

  const settled = new Set<Pending>(outgoing.map((o) => o.pending));
  for (const pending of settled) {
    if (pending.failed) pending.message.retry({ delaySeconds: retryDelaySeconds(pending.message.attempts) });
    else pending.message.ack();
  }
}
