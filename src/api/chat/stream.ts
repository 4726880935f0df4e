/**
 * @module api/chat/stream
 * A streamed chat completion in OpenAI's SSE shape, whatever the upstream family.
 *
 * The client's stream is committed (HTTP 200) once an upstream answers 2xx headers; until the
 * first content event arrives, keep-alive comments flow and an upstream that fails is replaced by
 * the next candidate, invisibly. After that: a role chunk first, content as it arrives (pulled
 * from the upstream only as fast as the client reads: nothing is buffered whole), one finish
 * chunk, exactly one usage chunk with `choices: []`, then `[DONE]`. A failure after the first
 * token becomes OpenRouter's mid-stream error event and the stream still ends cleanly. A client
 * that disconnects aborts the upstream fetch. Settlement (one ledger RPC) happens once, just before
 * the usage chunk, so the chunk reports what was charged and nothing waits on `waitUntil` after
 * the last byte; a client that leaves early is settled in `waitUntil` for what it received.
 */
import type { UpstreamErrorType } from "../../errors";
import { adapterFor } from "../../providers/registry";
import { SSEReader } from "../../providers/sse";
import type { FinishReason, StreamEvent, Usage } from "../../providers/types";
import { attemptFailure, failureError, withFailover, type AttemptRecord, type FailoverOptions, type OpenedUpstream } from "../../routing/failover";
import type { Candidate } from "../../routing/plan";
import type { ChatRequest } from "../../schemas/openai";
import type { OutputCapture } from "./capture";
import { StreamRelay, type Primed } from "./relay";
import type { GenerationMeta, ReportedCost } from "./shape";

export interface StreamSetup {
  req: ChatRequest;
  candidates: readonly Candidate[];
  attempts: AttemptRecord[];
  failover: Omit<FailoverOptions, "stream" | "clientSignal">;
  clientSignal: AbortSignal;
  /**
   * Settles when the request's admission has answered: nothing is sent to the client before it
   * resolves, and its rejection (a refusal) is the request's answer.
   */
  ready: Promise<unknown>;
  /** Per attempt: time to the first event; afterwards, the longest silence tolerated. */
  firstTokenTimeoutMs: number;
  keepAliveMs: number;
  generation: Omit<GenerationMeta, "model" | "provider">;
  headers: (candidate: Candidate) => Record<string, string>;
  billing: StreamBilling;
  /** Keeps what the stream said, for its trace. */
  capture: OutputCapture;
}

/** How a stream ended, for settlement. */
export interface StreamEnd {
  candidate: Candidate;
  usage: Usage;
  finishReason: FinishReason | null;
  nativeFinishReason: string | null;
  cancelled: boolean;
  firstTokenAt: number | null;
  endedAt: number;
  /** The upstream attempt served: when it started and when its first content arrived. */
  attempt: { startedAt: number; firstContentAt: number | null };
  /** Why the upstream failed after the first token, if it did (the stream ended with an error). */
  upstreamError: UpstreamErrorType | null;
}

/** The money side of a stream, supplied by the route. */
export interface StreamBilling {
  /** The expected charge for this usage, reported when settlement fails. */
  charge(candidate: Candidate, usage: Usage, finishReason: FinishReason | null): ReportedCost;
  /**
   * Settle a stream that reached an upstream and return what was charged (the ledger decides a
   * BYOK fee); awaited before the usage chunk, so the chunk reports the real charge.
   */
  settle(end: StreamEnd): Promise<ReportedCost>;
  /** Drop the hold of a stream that never reached an upstream's first token. */
  release(): Promise<void>;
  waitUntil(promise: Promise<unknown>): void;
}

/**
 * Read the next message, failing the attempt when the upstream stays silent for `ms`: the
 * attempt's clock (its connect timeout until now) restarts at every message.
 */
async function nextWithin(reader: SSEReader, ms: number, opened: OpenedUpstream) {
  opened.deadline.extend(ms);
  const taken = reader.take();
  if (taken !== undefined) return taken;
  try {
    return await opened.deadline.within(reader.next());
  } catch (error) {
    if (opened.deadline.expired) throw attemptFailure("timeout", `Upstream sent nothing for ${ms} ms`);
    throw error;
  }
}

function hasContent(event: StreamEvent): boolean {
  return event.type === "delta" || event.type === "finish";
}

export async function streamChat(setup: StreamSetup): Promise<Response> {
  const clientGone = new AbortController();
  const clientSignal = AbortSignal.any([setup.clientSignal, clientGone.signal]);
  const options: FailoverOptions = { ...setup.failover, stream: true, clientSignal };

  const prime = async (opened: OpenedUpstream): Promise<Primed> => {
    const body = opened.response.body;
    if (!body) throw attemptFailure("invalid_response", "Upstream answered without a body");
    const reader = new SSEReader(body);
    const decoder = adapterFor(opened.candidate.target.family).createStreamDecoder();
    const pending: StreamEvent[] = [];
    for (;;) {
      const message = await nextWithin(reader, setup.firstTokenTimeoutMs, opened);
      if (!message) throw attemptFailure("provider_unavailable", "Upstream closed the stream before the first token");
      for (const event of decoder.decode(message)) {
        if (event.type === "error") throw attemptFailure(event.errorType, event.message);
        pending.push(event);
      }
      if (pending.some(hasContent)) return { reader, decoder, pending };
    }
  };

  let resolveCommitted!: (opened: OpenedUpstream | null) => void;
  const committed = new Promise<OpenedUpstream | null>((resolve) => (resolveCommitted = resolve));
  const primed = withFailover(setup.req, setup.candidates, setup.attempts, options, prime, (opened) => resolveCommitted(opened)).finally(
    () => resolveCommitted(null),
  );
  // Until the first upstream opens, failures are still ordinary HTTP errors.
  primed.catch(() => {});
  const first = await committed;
  try {
    await setup.ready;
  } catch (error) {
    // Refused (or to be re-sent capped): stop the failover loop and the committed upstream.
    clientGone.abort();
    first?.controller.abort();
    throw error;
  }
  if (!first) {
    setup.billing.waitUntil(setup.billing.release());
    await primed; // rethrows a client error or disconnect
    throw failureError(setup.attempts);
  }

  const relay = new StreamRelay(setup, primed, clientGone);
  return new Response(relay.stream, {
    headers: {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
      "x-accel-buffering": "no",
      ...setup.headers(first.candidate),
    },
  });
}
