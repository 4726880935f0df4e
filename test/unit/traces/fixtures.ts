/**
 * Trace test fixtures others can reuse: `exampleTrace()` builds a valid v1 trace (override any
 * field), `batchOf()` a TRACES message of several, `CapturingQueue` stands in for a queue binding
 * and keeps what was sent (with each message's delay), and the helpers below run the consumer on
 * batches the way Queues would deliver them.
 */
import { createExecutionContext, createMessageBatch, getQueueResult, type QueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { http, HttpResponse, type HttpResponseResolver } from "msw";
import { queue } from "../../../src/traces/consumer";
import { TRACE_QUEUES } from "../../../src/traces/messages";
import { TRACE_VERSION, type Trace } from "../../../src/traces/schema";
import { admin, mswServer } from "../../helpers";

let counter = 0;

/** A complete, valid trace of a successful non-streamed chat completion; `overrides` replace top-level fields. */
export function exampleTrace(overrides: Partial<Trace> = {}): Trace {
  counter++;
  const id = `${Date.now().toString(36)}${counter.toString(36).padStart(4, "0")}`;
  return {
    v: TRACE_VERSION,
    generation_id: `gen-${id}`,
    request_id: `req-${id}`,
    trace: { trace_name: "checkout-assistant", metadata: { feature: "checkout" } },
    session_id: `session-${id}`,
    user: "user-42",
    workspace_id: "ws-traces",
    key_id: "key-1",
    model: "openai/gpt-4o-mini",
    endpoint: { id: "openai/gpt-4o-mini@openai", provider: "openai", provider_name: "OpenAI", upstream_model: "gpt-4o-mini-2024-07-18", region: "us" },
    region: "global",
    started_at: Date.UTC(2026, 7, 1, 12, 0, 0),
    timings: { latency_ms: 850, ttft_ms: 230, generation_ms: 620 },
    tokens: { prompt: 120, completion: 48, cached: 64, cache_write: 0, reasoning: 0 },
    cost: { charged_micros: 47, upstream_micros: 47 },
    finish_reason: "stop",
    native_finish_reason: "stop",
    streamed: true,
    cancelled: false,
    byok: false,
    status: 200,
    error: null,
    attempts: [
      { provider: "azure-eu", model: "gpt-4o-mini", status: 503, error_type: "provider_unavailable", ms: 120 },
      { provider: "openai", model: "gpt-4o-mini", status: 200, error_type: null, ms: 730 },
    ],
    zero_retention: false,
    content: {
      input: [
        { role: "system", content: "You are a helpful assistant." },
        { role: "user", content: "What is the capital of France? PROMPT-MARKER-7f3a" },
      ],
      output: { text: "The capital of France is Paris. OUTPUT-MARKER-91bc" },
    },
    ...overrides,
  };
}

type Sent<Body> = { body: Body; contentType: string | undefined; bytes: number; delaySeconds: number | undefined };

/** A queue binding that records what was sent; `failSends` makes the next sends throw. */
export class CapturingQueue<Body = unknown> implements Queue<Body> {
  readonly sent: Sent<Body>[] = [];
  readonly batches: number[] = [];
  failSends = 0;

  #fail(): void {
    if (this.failSends > 0) {
      this.failSends--;
      throw new Error("queue unavailable");
    }
  }

  async metrics(): Promise<QueueMetrics> {
    return { backlogCount: 0, backlogBytes: 0 };
  }

  async send(body: Body, options?: QueueSendOptions): Promise<QueueSendResponse> {
    this.#fail();
    this.sent.push({ body, contentType: options?.contentType, bytes: new TextEncoder().encode(JSON.stringify(body)).byteLength, delaySeconds: options?.delaySeconds });
    return { metadata: { metrics: { backlogCount: this.sent.length, backlogBytes: 0 } } };
  }

  async sendBatch(messages: Iterable<MessageSendRequest<Body>>, options?: QueueSendBatchOptions): Promise<QueueSendBatchResponse> {
    this.#fail();
    const list = [...messages];
    this.batches.push(list.length);
    for (const m of list) this.sent.push({ body: m.body, contentType: m.contentType, bytes: new TextEncoder().encode(JSON.stringify(m.body)).byteLength, delaySeconds: m.delaySeconds ?? options?.delaySeconds });
    return { metadata: { metrics: { backlogCount: this.sent.length, backlogBytes: 0 } } };
  }

  /** Take (and forget) what was sent so far. */
  drain(): Body[] {
    return this.sent.splice(0).map((s) => s.body);
  }
}

/** A TRACES message body as the producer's batcher sends it. */
export const batchOf = (...traces: Trace[]) => ({ v: 1, traces });

/** The test environment with capturing queues in place of the real trace queues. */
export function queueEnv(): Env & { TRACES: CapturingQueue; TRACE_DELIVERIES: CapturingQueue } {
  return { ...env, TRACES: new CapturingQueue(), TRACE_DELIVERIES: new CapturingQueue() };
}

/** A message as Queues hands it to the consumer. */
export interface QueuedMessage {
  id: string;
  body: unknown;
  attempts: number;
}

let messageIds = 0;
export function queued(body: unknown, attempts = 1, id = `msg-${++messageIds}`): QueuedMessage {
  return { id, body, attempts };
}

/**
 * Run the Worker's queue handler on one batch of `queueName` and return what it acked and retried.
 * `getQueueResult` of @cloudflare/vitest-plugin 1.5 reports retried messages without the delay
 * they asked for, so each message's `retry` is wrapped to record it and the result carries it.
 */
export async function runQueue(queueName: string, messages: readonly QueuedMessage[], testEnv: Env): Promise<QueueResult> {
  const batch = createMessageBatch(
    queueName,
    messages.map((m) => ({ id: m.id, timestamp: new Date(), attempts: m.attempts, body: m.body })),
  );
  const delays = new Map<string, number | undefined>();
  for (const message of batch.messages) {
    const retry = message.retry;
    Object.defineProperty(message, "retry", {
      value: (options?: QueueRetryOptions) => {
        delays.set(message.id, options?.delaySeconds);
        retry.call(message, options);
      },
    });
  }
  const ctx = createExecutionContext();
  await queue(batch, testEnv, ctx);
  const result = await getQueueResult(batch, ctx);
  return { ...result, retryMessages: result.retryMessages.map((r) => ({ ...r, delaySeconds: delays.get(r.msgId) })) };
}

export const runTraces = (messages: readonly QueuedMessage[], testEnv: Env) => runQueue(TRACE_QUEUES.traces, messages, testEnv);
export const runDeliveries = (messages: readonly QueuedMessage[], testEnv: Env) => runQueue(TRACE_QUEUES.deliveries, messages, testEnv);
export const runDeadLetters = (messages: readonly QueuedMessage[], testEnv: Env) => runQueue(TRACE_QUEUES.deadLetters, messages, testEnv);

/** Create a workspace (destinations belong to one). */
export async function workspace(id: string): Promise<void> {
  const res = await admin(`/workspaces/${id}`, "PUT", { name: id });
  if (res.status !== 200) throw new Error(`workspace ${id}: ${res.status} ${await res.text()}`);
}

/** One request a fake destination host received. */
export interface SinkHit {
  url: string;
  headers: Headers;
  body: string;
}

/**
 * Answer POSTs and PUTs to `url` (a string or pattern) with `answer` (200 by default), recording
 * each request with its raw body.
 */
export function sink(url: string | RegExp, answer: (hit: SinkHit, n: number) => Response = () => new Response("ok")): SinkHit[] {
  const hits: SinkHit[] = [];
  const handler: HttpResponseResolver = async ({ request }) => {
    const hit = { url: request.url, headers: request.headers, body: await request.text() };
    hits.push(hit);
    return answer(hit, hits.length);
  };
  mswServer.use(http.post(url, handler), http.put(url, handler));
  return hits;
}

export const ok = () => HttpResponse.text("ok");
