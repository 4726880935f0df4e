/**
 * @module traces/direct-delivery
 * The TRACES consumer. Each message is a batch of traces (or a bare trace enqueued before
 * batching), and this delivers them at once to every destination of their workspace that wants
 * them: in the happy path a trace costs its share of one TRACES message (3 queue operations per
 * message, shared by the traces of a producer window), not one more message per destination.
 * Only what does not go through now is handed to TRACE_DELIVERIES, one message per
 * (trace, destination), for the retry path of traces/delivery.ts (backoff, Retry-After, TRACE_DLQ):
 *
 * - a retryable failure (5xx, 408/425/429, timeout, no answer) is handed over with the first
 *   backoff delay or the destination's Retry-After and `prior_attempts: 1`; the destination's
 *   remaining traces in this batch are handed over untried with the same delay, so a destination
 *   that is down costs one round (one delivery timeout) per batch and holds nobody else's traces;
 * - work past the invocation's budget (DIRECT_DELIVERY_LIMITS: outbound requests, time) is handed
 *   over untried, without delay;
 * - a permanent failure (4xx, a secret that does not decrypt) is recorded as a dead letter at
 *   once, as the retry path would (and handed over instead if D1 cannot record it).
 *
 * A message is settled whole. When its workspace's destinations cannot be loaded it is retried
 * before anything of it is delivered. Once delivery began it is acked, unless handing its failures
 * over failed: then it is retried whole, and destinations that already received its traces
 * receive them again (at-least-once, like Queues itself; receivers dedupe by generation id).
 *
 * Destinations are delivered DESTINATION_CONCURRENCY at a time (a webhook holds up to 3
 * connections: 6 at most, what an invocation may hold open), each request within the delivery
 * timeout. Delivery health is tallied per attempt, as the retry path does: traces handed over
 * untried count neither as delivered nor as failed.
 */
import { retryDelaySeconds } from "./backoff";
import { recordDeadLetters, type DeadLetterInput } from "./dead-letters";
import { DESTINATION_CONCURRENCY, deliverToDestination, requestsFor, tracesPerRound, type DeliveryEnv } from "./delivery";
import { DeliveryTallies, recordDeliveryState } from "./delivery-state";
import { getDestinations, type Destination } from "./destination-store";
import type { DeliveryOutcome } from "./destinations";
import { mapLimited } from "./destinations/http";
import { chunkForSendBatch, jsonBytes, readTraces, type DeliveryMessage } from "./messages";
import { wants } from "./sampling";
import type { Trace } from "./schema";

export type DirectDeliveryEnv = DeliveryEnv & Pick<Env, "TRACE_DELIVERIES">;

export interface DirectDeliveryLimits {
  /** Outbound requests (subrequests) one invocation spends on deliveries; later rounds are handed over. */
  maxRequests: number;
  /** No round starts this long after the invocation began; later rounds are handed over. */
  deadlineMs: number;
}

/**
 * Half the paid plan's 1,000 subrequests per invocation (the rest covers R2, D1 and the queue
 * calls around them), and a minute, so a batch is settled — and a slow one's traces handed over
 * — well before anything times it out. With max_batch_size 10 and batches of ≤ 100 traces this
 * is rarely reached except by webhooks, which POST each trace.
 */
export const DIRECT_DELIVERY_LIMITS: DirectDeliveryLimits = { maxRequests: 500, deadlineMs: 60_000 };

/** The destinations of a workspace that receive `trace`. */
export function destinationsFor(destinations: readonly Destination[], trace: Trace): Destination[] {
  return destinations.filter((d) => d.enabled && wants(d.filter, trace));
}

interface Incoming {
  message: Message<unknown>;
  traces: Trace[];
  /** Handing one of its deliveries over failed: the whole message is retried. */
  retry: boolean;
}

interface Item {
  incoming: Incoming;
  trace: Trace;
}

interface Job {
  destination: Destination;
  items: Item[];
}

interface HandOff {
  incoming: Incoming;
  body: DeliveryMessage;
  delaySeconds: number;
  bytes: number;
}

const log = (level: "warn" | "error", msg: string, fields: Record<string, unknown>) => {
  const line = JSON.stringify({ level, msg, ...fields });
  if (level === "error") console.error(line);
  else console.warn(line);
};

export async function deliverTraces(batch: MessageBatch<unknown>, env: DirectDeliveryEnv, limits: DirectDeliveryLimits = DIRECT_DELIVERY_LIMITS): Promise<void> {
  const run = new DirectRun(env, limits);
  const incoming = readMessages(batch);
  const destinations = await loadDestinations(env, incoming);
  const ready: Incoming[] = [];
  for (const item of incoming) {
    if (item.traces.every((t) => destinations.has(t.workspace_id))) ready.push(item);
    else item.message.retry({ delaySeconds: retryDelaySeconds(item.message.attempts) });
  }

  await mapLimited(jobsOf(ready, destinations), DESTINATION_CONCURRENCY, (job) => run.deliver(job));
  await run.recordDeadLetters();
  await run.handOver();
  for (const item of ready) {
    if (item.retry) item.message.retry({ delaySeconds: retryDelaySeconds(item.message.attempts) });
    else item.message.ack();
  }
  await run.recordState();
}

/** The traces of each message; a message with none readable is dropped (never valid, never will be). */
function readMessages(batch: MessageBatch<unknown>): Incoming[] {
  const incoming: Incoming[] = [];
  for (const message of batch.messages) {
    const read = readTraces(message.body);
    if (read && read.unreadable.length > 0) {
      log("error", "traces in a message do not match the schema; dropped", { messageId: message.id, dropped: read.unreadable.length, kept: read.traces.length, issues: read.unreadable[0] });
    }
    if (!read || read.traces.length === 0) {
      if (!read) log("error", "trace message is neither a batch nor a trace; dropped", { messageId: message.id });
      message.ack();
      continue;
    }
    incoming.push({ message, traces: read.traces, retry: false });
  }
  return incoming;
}

/** Each workspace's destinations (the isolate cache, D1 on a miss); a workspace that failed to load is absent. */
async function loadDestinations(env: DirectDeliveryEnv, incoming: readonly Incoming[]): Promise<Map<string, readonly Destination[]>> {
  const loaded = new Map<string, readonly Destination[]>();
  const workspaces = new Set(incoming.flatMap((i) => i.traces.map((t) => t.workspace_id)));
  for (const workspaceId of workspaces) {
    try {
      loaded.set(workspaceId, await getDestinations(env, workspaceId));
    } catch (error) {
      log("error", "trace destinations could not be loaded; retrying their messages", { workspaceId, error: String(error) });
    }
  }
  return loaded;
}

/** One job per destination, its traces in message order. */
function jobsOf(ready: readonly Incoming[], destinations: ReadonlyMap<string, readonly Destination[]>): Job[] {
  const jobs = new Map<string, Job>();
  for (const incoming of ready) {
    for (const trace of incoming.traces) {
      for (const destination of destinationsFor(destinations.get(trace.workspace_id) ?? [], trace)) {
        const key = `${destination.workspaceId}\u0000${destination.id}`;
        const job = jobs.get(key) ?? { destination, items: [] };
        job.items.push({ incoming, trace });
        jobs.set(key, job);
      }
    }
  }
  return [...jobs.values()];
}

/** What one invocation did: its budget, tallies, dead letters and hand-offs. */
class DirectRun {
  readonly #env: DirectDeliveryEnv;
  readonly #deadline: number;
  #requestsLeft: number;
  readonly #tallies = new DeliveryTallies();
  readonly #dead: Array<{ item: Item; destinationId: string; letter: DeadLetterInput }> = [];
  readonly #handOffs: HandOff[] = [];

  constructor(env: DirectDeliveryEnv, limits: DirectDeliveryLimits) {
    this.#env = env;
    this.#deadline = Date.now() + limits.deadlineMs;
    this.#requestsLeft = limits.maxRequests;
  }

  /** Deliver a destination's traces round by round, handing over what fails and what follows a failure. */
  async deliver(job: Job): Promise<void> {
    const { destination } = job;
    const size = tracesPerRound(destination);
    // Set once the destination failed in this batch: the rest of its traces wait this long in the retry path.
    let failedDelay: number | null = null;
    for (let start = 0; start < job.items.length; start += size) {
      const round = job.items.slice(start, start + size);
      if (failedDelay !== null) {
        for (const item of round) this.#handOver(item, destination.id, failedDelay, 0);
        continue;
      }
      if (!this.#take(requestsFor(destination, round.map((i) => i.trace)))) {
        for (const item of round) this.#handOver(item, destination.id, 0, 0);
        continue;
      }
      const outcomes = await this.#attempt(destination, round);
      const now = Date.now();
      for (const [i, item] of round.entries()) {
        const outcome = outcomes[i] ?? NO_OUTCOME;
        if (outcome.ok) {
          this.#tallies.success(destination.workspaceId, destination.id, now);
          continue;
        }
        this.#tallies.failure(destination.workspaceId, destination.id, now, outcome.error);
        if (outcome.retryable) {
          const delay = retryDelaySeconds(1, outcome.retryAfterSeconds);
          this.#handOver(item, destination.id, delay, 1);
          failedDelay = Math.max(failedDelay ?? 0, delay);
          continue;
        }
        const body: DeliveryMessage = { kind: "delivery", destination_id: destination.id, trace: item.trace };
        // Keyed by the message (Queues redelivers with the same id), so a redelivered batch records it once.
        const id = `${item.incoming.message.id}:${destination.id}:${item.trace.generation_id}`;
        this.#dead.push({ item, destinationId: destination.id, letter: { id, body, attempts: item.incoming.message.attempts, error: outcome.error } });
      }
    }
  }

  /** Spend `requests` of the budget; false (nothing spent) when the budget or the time is up. */
  #take(requests: number): boolean {
    if (Date.now() >= this.#deadline || requests > this.#requestsLeft) return false;
    this.#requestsLeft -= requests;
    return true;
  }

  async #attempt(destination: Destination, round: readonly Item[]): Promise<DeliveryOutcome[]> {
    try {
      return await deliverToDestination(this.#env, destination, round.map((i) => i.trace));
    } catch (error) {
      // Deliveries report failures as outcomes; a throw is a bug, and its traces still get retried.
      const outcome: DeliveryOutcome = { ok: false, retryable: true, error: `delivery failed: ${String(error)}`, status: null, retryAfterSeconds: null };
      return round.map(() => outcome);
    }
  }

  #handOver(item: Item, destinationId: string, delaySeconds: number, priorAttempts: number): void {
    const body: DeliveryMessage = { kind: "delivery", destination_id: destinationId, trace: item.trace, ...(priorAttempts > 0 ? { prior_attempts: priorAttempts } : {}) };
    this.#handOffs.push({ incoming: item.incoming, body, delaySeconds, bytes: jsonBytes(body) });
  }

  /** Permanent failures, in one D1 round trip; when D1 fails they take the retry path instead (and end there). */
  async recordDeadLetters(): Promise<void> {
    if (this.#dead.length === 0) return;
    try {
      await recordDeadLetters(this.#env.DEAD_LETTER_DB ?? this.#env.DB, this.#dead.map((d) => d.letter));
    } catch (error) {
      log("error", "dead letters could not be recorded; handing them to the retry path", { error: String(error), letters: this.#dead.length });
      for (const { item, destinationId } of this.#dead) this.#handOver(item, destinationId, 0, 1);
    }
  }

  /** Send the hand-offs to TRACE_DELIVERIES; a failed call marks its messages for a whole retry. */
  async handOver(): Promise<void> {
    for (const chunk of chunkForSendBatch(this.#handOffs, (h) => h.bytes)) {
      try {
        await this.#env.TRACE_DELIVERIES.sendBatch(chunk.map((h) => ({ body: h.body, contentType: "json" as const, ...(h.delaySeconds > 0 ? { delaySeconds: h.delaySeconds } : {}) })));
      } catch (error) {
        log("error", "trace deliveries could not be handed to the retry path; retrying their messages", { error: String(error), deliveries: chunk.length });
        for (const h of chunk) h.incoming.retry = true;
      }
    }
  }

  async recordState(): Promise<void> {
    try {
      await recordDeliveryState(this.#env.DB, this.#tallies.all);
    } catch (error) {
      // Health numbers only: never worth redelivering traces that did arrive.
      log("error", "trace delivery state could not be recorded", { error: String(error) });
    }
  }
}

const NO_OUTCOME: DeliveryOutcome = { ok: false, retryable: true, error: "no outcome reported", status: null, retryAfterSeconds: null };
