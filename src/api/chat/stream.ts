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
import { estimatePromptTokens, estimateTokensFromChars } from "../../billing/estimate";
import type { UpstreamErrorType } from "../../errors";
import { adapterFor } from "../../providers/registry";
import { DONE_EVENT, encodeComment, encodeData, SSEReader } from "../../providers/sse";
import type { FinishReason, StreamDecoder, StreamEvent, Usage } from "../../providers/types";
import { attemptFailure, describeError, failureError, withFailover, type AttemptRecord, type FailoverOptions, type OpenedUpstream } from "../../routing/failover";
import type { Candidate } from "../../routing/plan";
import type { ChatRequest } from "../../schemas/openai";
import { chunkJson, errorChunkJson, toolCallDeltaJson, usageChunkJson, type ChunkDelta, type GenerationMeta, type ReportedCost } from "./shape";

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

/** An upstream that has produced its first events and is ready to be relayed. */
interface Primed {
  reader: SSEReader;
  decoder: StreamDecoder;
  pending: StreamEvent[];
}

/** Read the next message, failing the attempt when the upstream stays silent too long. */
async function nextWithin(reader: SSEReader, ms: number, controller: AbortController) {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      controller.abort();
      reject(attemptFailure("timeout", `Upstream sent nothing for ${ms} ms`));
    }, ms);
  });
  try {
    return await Promise.race([reader.next(), timeout]);
  } finally {
    clearTimeout(timer);
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
      const message = await nextWithin(reader, setup.firstTokenTimeoutMs, opened.controller);
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

/** All state of one relayed stream, in one object. */
class StreamRelay {
  readonly stream: ReadableStream<Uint8Array>;
  #controller!: ReadableStreamDefaultController<Uint8Array>;
  #primed: Primed | null = null;
  #upstream: { candidate: Candidate; controller: AbortController } | null = null;
  #meta: GenerationMeta | null = null;
  #usage: Usage | null = null;
  #finish: { finishReason: FinishReason; nativeFinishReason: string | null } | null = null;
  #deliveredChars = 0;
  #finalUsage: Usage | null = null;
  /** The one settlement (or release) of this stream, once started; null when it failed. */
  #settlement: Promise<ReportedCost | null> | null = null;
  #firstTokenAt: number | null = null;
  #lastWrite = Date.now();
  #keepAlive: ReturnType<typeof setInterval> | undefined;
  #closed = false;

  constructor(
    private readonly setup: StreamSetup,
    private readonly primedPromise: Promise<{ value: Primed; opened: OpenedUpstream } | null>,
    private readonly clientGone: AbortController,
  ) {
    this.stream = new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          this.#controller = controller;
          this.#write(encodeComment("SWITCHYARD PROCESSING"));
          this.#keepAlive = setInterval(() => {
            if (Date.now() - this.#lastWrite >= setup.keepAliveMs) this.#write(encodeComment("SWITCHYARD PROCESSING"));
          }, Math.max(10, Math.floor(setup.keepAliveMs / 2)));
        },
        pull: () => this.#pull(),
        cancel: () => {
          // The client went away: stop the failover loop and the upstream fetch, and charge for
          // what was delivered (a few seconds of waitUntil are plenty for one RPC).
          this.clientGone.abort();
          this.#upstream?.controller.abort();
          if (!this.#closed) setup.billing.waitUntil(this.#settle(true));
          this.#stop();
        },
      },
      { highWaterMark: 0 },
    );
  }

  #write(bytes: Uint8Array): void {
    if (this.#closed) return;
    this.#controller.enqueue(bytes);
    this.#lastWrite = Date.now();
  }

  #stop(): void {
    this.#closed = true;
    clearInterval(this.#keepAlive);
  }

  async #pull(): Promise<void> {
    if (this.#closed) return;
    try {
      if (!this.#primed) {
        const result = await this.primedPromise.catch(() => null);
        if (this.#closed) return;
        if (!result) {
          // Every candidate failed after the stream was committed.
          const error = failureError(this.setup.attempts);
          const last = this.setup.attempts.at(-1);
          this.#meta ??= { ...this.setup.generation, model: last?.model ?? "", provider: last?.provider ?? "" };
          return await this.#fail(error.message, last?.errorType ?? "server", false);
        }
        this.#primed = result.value;
        this.#upstream = { candidate: result.opened.candidate, controller: result.opened.controller };
        this.#meta = {
          ...this.setup.generation,
          model: result.opened.candidate.model.id,
          provider: result.opened.candidate.endpoint.provider.name,
        };
        this.#firstTokenAt = Date.now();
        this.#write(encodeData(chunkJson(this.#meta, { role: "assistant", content: "" })));
        const pending = this.#primed.pending.splice(0);
        for (const event of pending) if (await this.#handle(event)) return;
        return;
      }
      const { reader, decoder } = this.#primed;
      for (;;) {
        const message = await nextWithin(reader, this.setup.firstTokenTimeoutMs, this.#upstream!.controller);
        if (this.#closed) return;
        if (!message) return await this.#end();
        const events = decoder.decode(message);
        let wrote = false;
        for (const event of events) {
          if (await this.#handle(event)) return;
          wrote ||= event.type !== "usage";
        }
        if (wrote) return;
      }
    } catch (error) {
      if (this.#closed) return;
      const { errorType, message } = describeError(error);
      await this.#fail(`Upstream stream failed: ${message}`, errorType, true);
    }
  }

  /** Relay one event; true when the stream has ended. */
  async #handle(event: StreamEvent): Promise<boolean> {
    const meta = this.#meta!;
    switch (event.type) {
      case "delta": {
        const delta: ChunkDelta = {};
        if (event.content) {
          delta.content = event.content;
          this.#deliveredChars += event.content.length;
        }
        if (event.reasoning) {
          delta.reasoning = event.reasoning;
          this.#deliveredChars += event.reasoning.length;
        }
        if (event.reasoningDetails?.length) delta.reasoning_details = event.reasoningDetails;
        if (event.toolCalls?.length) {
          delta.tool_calls = toolCallDeltaJson(event.toolCalls);
          for (const call of event.toolCalls) this.#deliveredChars += (call.arguments?.length ?? 0) + (call.name?.length ?? 0);
        }
        this.#write(encodeData(chunkJson(meta, delta)));
        return false;
      }
      case "finish":
        if (!this.#finish) {
          this.#finish = { finishReason: event.finishReason, nativeFinishReason: event.nativeFinishReason };
          this.#write(encodeData(chunkJson(meta, {}, this.#finish)));
        }
        return false;
      case "usage":
        this.#usage = event.usage;
        return false;
      case "error":
        await this.#fail(event.message, event.errorType, true);
        return true;
    }
  }

  /** The upstream ended: close with usage and [DONE], or as an error if it never finished. */
  async #end(): Promise<void> {
    if (!this.#finish) return this.#fail("Upstream stream ended before the response was finished", "provider_unavailable", true);
    await this.#writeUsage(false);
    this.#write(DONE_EVENT);
    await this.#close();
  }

  async #fail(message: string, errorType: UpstreamErrorType, delivered: boolean): Promise<void> {
    this.#write(encodeData(errorChunkJson(this.#meta!, message, errorType)));
    this.#finish ??= { finishReason: "error", nativeFinishReason: null };
    this.#upstream?.controller.abort();
    if (delivered) await this.#writeUsage(true);
    this.#write(DONE_EVENT);
    await this.#close();
  }

  /** The usage an interrupted or silent upstream leaves: at least what was delivered. */
  #usageNow(interrupted: boolean): Usage {
    const reported = this.#usage;
    const usage: Usage = reported
      ? { ...reported }
      : { promptTokens: estimatePromptTokens(this.setup.req), completionTokens: 0, cachedTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0 };
    if (!reported || interrupted) {
      usage.completionTokens = Math.max(usage.completionTokens, estimateTokensFromChars(this.#deliveredChars));
    }
    return usage;
  }

  /** Settle, then exactly one usage chunk reporting what was charged. */
  async #writeUsage(interrupted: boolean): Promise<void> {
    const candidate = this.#upstream?.candidate;
    if (!candidate) return;
    const usage = this.#usageNow(interrupted);
    this.#finalUsage = usage;
    const charged = (await this.#settle(false)) ?? this.setup.billing.charge(candidate, usage, this.#finish?.finishReason ?? null);
    this.#write(encodeData(usageChunkJson(this.#meta!, usage, charged)));
  }

  /** Settle (or release) once, whoever asks first; the stream's last byte waits for it. */
  #settle(cancelled: boolean): Promise<ReportedCost | null> {
    this.#settlement ??= this.#settleOnce(cancelled);
    return this.#settlement;
  }

  async #settleOnce(cancelled: boolean): Promise<ReportedCost | null> {
    const candidate = this.#upstream?.candidate;
    const { billing } = this.setup;
    try {
      if (!candidate) {
        await billing.release();
        return null;
      }
      return await billing.settle({
        candidate,
        usage: this.#finalUsage ?? this.#usageNow(true),
        finishReason: this.#finish?.finishReason ?? null,
        nativeFinishReason: this.#finish?.nativeFinishReason ?? null,
        cancelled,
        firstTokenAt: this.#firstTokenAt,
        endedAt: Date.now(),
      });
    } catch (error) {
      // The client already has (or is getting) its answer; the hold expires and the failure is logged.
      console.error(JSON.stringify({ level: "error", msg: "stream settlement failed", error: String(error) }));
      return null;
    }
  }

  async #close(): Promise<void> {
    if (this.#closed) return;
    this.#stop();
    await this.#settle(false);
    this.#controller.close();
  }
}
