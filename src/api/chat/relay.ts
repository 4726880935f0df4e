/**
 * @module api/chat/relay
 * The relay of one committed stream: a pull-based `ReadableStream` (high-water mark 0) that
 * reads the upstream only as fast as the client reads, translates its events, keeps the stream
 * alive, cuts a silent upstream, and settles exactly once (a BYOK stream before its usage chunk).
 */
import { estimatePromptTokens, estimateTokensFromChars } from "../../billing/estimate";
import type { UpstreamErrorType } from "../../errors";
import { commentEvent, dataEvent, DONE_EVENT, type SSEReader } from "../../providers/sse";
import type { FinishReason, StreamDecoder, StreamEvent, Usage } from "../../providers/types";
import { describeError, failureError, type OpenedUpstream } from "../../routing/failover";
import type { Candidate } from "../../routing/plan";
import { chunkJson, errorChunkJson, textChunkEvents, toolCallDeltaJson, usageChunkJson, type ChunkDelta, type GenerationMeta, type ReportedCost } from "./shape";
import type { StreamSetup } from "./stream";

const encoder = new TextEncoder();

/** An upstream that has produced its first events and is ready to be relayed. */
export interface Primed {
  reader: SSEReader;
  decoder: StreamDecoder;
  pending: StreamEvent[];
}

/** All state of one relayed stream, in one object. */
export class StreamRelay {
  readonly stream: ReadableStream<Uint8Array>;
  #controller!: ReadableStreamDefaultController<Uint8Array>;
  #primed: Primed | null = null;
  #upstream: OpenedUpstream | null = null;
  /** Set when the upstream failed after the stream started (for its health). */
  #upstreamError: UpstreamErrorType | null = null;
  #meta: GenerationMeta | null = null;
  /** Text-only chunks of this stream, from a template made once `#meta` is known. */
  #textChunk: ((content: string) => string) | null = null;
  #usage: Usage | null = null;
  #finish: { finishReason: FinishReason; nativeFinishReason: string | null } | null = null;
  #deliveredChars = 0;
  #finalUsage: Usage | null = null;
  /** The one settlement (or release) of this stream, once started; null when it failed. */
  #settlement: Promise<ReportedCost | null> | null = null;
  #firstTokenAt: number | null = null;
  #lastWrite = Date.now();
  /** Text written and not yet enqueued: one pull's events leave as one chunk. */
  #out = "";
  /** Since when the relay has been waiting on the upstream (null: not waiting). */
  #waitingSince: number | null = null;
  /** Set when the watchdog cut an upstream that stayed silent too long. */
  #silent = false;
  #ticker: ReturnType<typeof setInterval> | undefined;
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
          this.#write(commentEvent("SWITCHYARD PROCESSING"));
          this.#flush();
          // One timer per stream for keep-alives and the silence watchdog: a timer per upstream
          // read cost more CPU than the relay itself.
          const period = Math.max(10, Math.floor(Math.min(setup.keepAliveMs, setup.firstTokenTimeoutMs) / 2));
          this.#ticker = setInterval(() => this.#tick(), period);
        },
        pull: () => this.#produce(),
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

  #write(text: string): void {
    if (!this.#closed) this.#out += text;
  }

  #flush(): void {
    if (this.#closed || !this.#out) return;
    this.#controller.enqueue(encoder.encode(this.#out));
    this.#out = "";
    this.#lastWrite = Date.now();
  }

  #tick(): void {
    const now = Date.now();
    if (this.#waitingSince !== null && now - this.#waitingSince >= this.setup.firstTokenTimeoutMs) {
      // Cancelling the reader ends the pending read even where an abort would not reach the body.
      this.#silent = true;
      this.#upstream?.controller.abort();
      void this.#primed?.reader.cancel();
    }
    if (now - this.#lastWrite >= this.setup.keepAliveMs) {
      this.#write(commentEvent("SWITCHYARD PROCESSING"));
      this.#flush();
    }
  }

  #stop(): void {
    this.#closed = true;
    clearInterval(this.#ticker);
  }

  /**
   * Write at least one event (or end the stream), then whatever the upstream has already sent,
   * without waiting for more: one client chunk per upstream read, not per event. The pull itself:
   * one await per upstream read and no nested async calls, because on this path every await on
   * the upstream body cost more CPU than translating the event it brought.
   */
  async #produce(): Promise<void> {
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
        this.#upstream = result.opened;
        this.#meta = {
          ...this.setup.generation,
          model: result.opened.candidate.model.id,
          provider: result.opened.candidate.endpoint.provider.name,
        };
        this.#firstTokenAt = Date.now();
        this.#write(dataEvent(chunkJson(this.#meta, { role: "assistant", content: "" })));
        const pending = this.#primed.pending.splice(0);
        for (const event of pending) {
          const failure = this.#relay(event);
          if (failure) return await this.#fail(failure.message, failure.errorType, true);
        }
        return;
      }
      const { reader, decoder } = this.#primed;
      let wrote = false;
      for (;;) {
        const message = reader.take();
        if (message === undefined) {
          if (wrote || this.#closed) return;
          // Read under the silence watchdog (#tick).
          this.#waitingSince = Date.now();
          const chunk = await reader.read();
          this.#waitingSince = null;
          if (this.#silent) throw new Error("silent upstream");
          reader.feed(chunk);
          continue;
        }
        if (this.#closed) return;
        if (!message) return await this.#end();
        for (const event of decoder.decode(message)) {
          const failure = this.#relay(event);
          if (failure) return await this.#fail(failure.message, failure.errorType, true);
          wrote ||= event.type !== "usage";
        }
      }
    } catch (error) {
      this.#waitingSince = null;
      if (this.#closed) return;
      const { errorType, message } = this.#silent
        ? { errorType: "timeout" as const, message: `Upstream sent nothing for ${this.setup.firstTokenTimeoutMs} ms` }
        : describeError(error);
      await this.#fail(`Upstream stream failed: ${message}`, errorType, true);
    } finally {
      this.#flush();
    }
  }

  /**
   * Relay one event; an upstream error event is returned for the caller to end the stream with.
   * Synchronous on purpose: an await per event cost more CPU than the translation.
   */
  #relay(event: StreamEvent): Extract<StreamEvent, { type: "error" }> | null {
    const meta = this.#meta!;
    switch (event.type) {
      case "delta": {
        const capture = this.setup.capture;
        if (event.content && !event.reasoning && !event.reasoningDetails?.length && !event.toolCalls?.length) {
          this.#deliveredChars += event.content.length;
          capture.text(event.content);
          this.#textChunk ??= textChunkEvents(meta);
          this.#write(this.#textChunk(event.content));
          return null;
        }
        const delta: ChunkDelta = {};
        if (event.content) {
          delta.content = event.content;
          this.#deliveredChars += event.content.length;
          capture.text(event.content);
        }
        if (event.reasoning) {
          delta.reasoning = event.reasoning;
          this.#deliveredChars += event.reasoning.length;
          capture.reasoning(event.reasoning);
        }
        if (event.reasoningDetails?.length) delta.reasoning_details = event.reasoningDetails;
        if (event.toolCalls?.length) {
          delta.tool_calls = toolCallDeltaJson(event.toolCalls);
          for (const call of event.toolCalls) this.#deliveredChars += (call.arguments?.length ?? 0) + (call.name?.length ?? 0);
          capture.toolCalls(event.toolCalls);
        }
        this.#write(dataEvent(chunkJson(meta, delta)));
        return null;
      }
      case "finish":
        if (!this.#finish) {
          this.#finish = { finishReason: event.finishReason, nativeFinishReason: event.nativeFinishReason };
          this.#write(dataEvent(chunkJson(meta, {}, this.#finish)));
        }
        return null;
      case "usage":
        this.#usage = event.usage;
        return null;
      case "error":
        return event;
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
    this.#write(dataEvent(errorChunkJson(this.#meta!, message, errorType)));
    this.#finish ??= { finishReason: "error", nativeFinishReason: null };
    if (delivered) this.#upstreamError ??= errorType;
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

  /**
   * Exactly one usage chunk reporting what is charged. A platform-keyed charge is known here, so
   * the settlement starts and the chunk and [DONE] leave without waiting for the ledger's answer
   * (one Durable Object round trip, far away for some workspaces); #close hands it to
   * `waitUntil`, as a JSON answer's is. A BYOK fee depends on the month's allowance, which only
   * the ledger knows: that chunk waits for it.
   */
  async #writeUsage(interrupted: boolean): Promise<void> {
    const candidate = this.#upstream?.candidate;
    if (!candidate) return;
    const usage = this.#usageNow(interrupted);
    this.#finalUsage = usage;
    const settlement = this.#settle(false);
    const settled = candidate.byok ? await settlement : null;
    const charged = settled ?? this.setup.billing.charge(candidate, usage, this.#finish?.finishReason ?? null);
    this.#write(dataEvent(usageChunkJson(this.#meta!, usage, charged)));
  }

  /**
   * Settle (or release) once, whoever asks first. A BYOK stream's last byte waits for it; a
   * platform-keyed one's runs on in `waitUntil` (see #writeUsage).
   */
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
        attempt: { startedAt: this.#upstream?.startedAt ?? Date.now(), firstContentAt: this.#upstream?.consumedAt ?? null },
        upstreamError: this.#upstreamError,
      });
    } catch (error) {
      // The client already has (or is getting) its answer; the hold expires and the failure is logged.
      console.error(JSON.stringify({ level: "error", msg: "stream settlement failed", error: String(error) }));
      return null;
    }
  }

  async #close(): Promise<void> {
    if (this.#closed) return;
    this.#flush();
    this.#stop();
    const settlement = this.#settle(false);
    if (this.#upstream?.candidate.byok) await settlement;
    else this.setup.billing.waitUntil(settlement);
    this.#controller.close();
  }
}
