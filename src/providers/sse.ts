/**
 * @module providers/sse
 * Server-sent events, both ways. Decoding is done here once, for every adapter: bytes may be split
 * anywhere (inside a UTF-8 sequence, a line, a `data:` field), and a last event that the upstream
 * did not terminate with a blank line is still delivered when the body ends.
 */
import { createParser, type EventSourceMessage } from "eventsource-parser";

export type SSEMessage = EventSourceMessage;

/** Upstream SSE buffers larger than this are treated as a malformed stream. */
const MAX_EVENT_BYTES = 8 * 1024 * 1024;

/**
 * Pull-based reader over an SSE body: `next()` resolves with the next message, or `null` at the
 * end of the body. Pull-based so the caller decides when to wait (and with which timeout) and the
 * upstream is only read as fast as the client consumes.
 */
export class SSEReader {
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  readonly #decoder = new TextDecoder();
  /** Parsed messages not yet taken; `#head` is the next one (shift() would copy on every take). */
  #queue: SSEMessage[] = [];
  #head = 0;
  readonly #parser;
  #done = false;

  constructor(body: ReadableStream<Uint8Array>) {
    this.#reader = body.getReader();
    this.#parser = createParser({
      onEvent: (message) => this.#queue.push(message),
      maxBufferSize: MAX_EVENT_BYTES,
      onError: (error) => {
        // Only an oversized event is fatal; unknown fields and stray lines are ignored per spec.
        if (error.type === "max-buffer-size-exceeded") throw error;
      },
    });
  }

  /**
   * The next message if one is already parsed, `null` at the end of the body, or `undefined`
   * when the next message needs another read from the upstream.
   */
  take(): SSEMessage | null | undefined {
    if (this.#head < this.#queue.length) {
      const message = this.#queue[this.#head++]!;
      if (this.#head === this.#queue.length) {
        this.#queue = [];
        this.#head = 0;
      }
      return message;
    }
    return this.#done ? null : undefined;
  }

  async next(): Promise<SSEMessage | null> {
    for (;;) {
      const taken = this.take();
      if (taken !== undefined) return taken;
      this.feed(await this.read());
    }
  }

  /**
   * One read of the body, for a caller that loops over `take()` itself: one await per upstream
   * chunk instead of a chain of async calls (each await on a stream costs more than the parsing).
   * Hand the result to `feed`.
   */
  read(): Promise<ReadableStreamReadResult<Uint8Array>> {
    return this.#reader.read();
  }

  /** Parse what `read` returned; its messages are then available to `take()`. */
  feed({ value, done }: ReadableStreamReadResult<Uint8Array>): void {
    if (done) {
      this.#done = true;
      // Terminate whatever the upstream left open so its last event is still dispatched.
      this.#parser.feed(`${this.#decoder.decode()}\n\n`);
    } else {
      this.#parser.feed(this.#decoder.decode(value, { stream: true }));
    }
  }

  /** Stop reading and release the upstream connection. */
  async cancel(reason?: unknown): Promise<void> {
    this.#done = true;
    this.#queue = [];
    this.#head = 0;
    await this.#reader.cancel(reason).catch(() => {});
  }
}

/** One `data:` event carrying JSON, as text (a relay batches events into one write). */
export function dataEvent(data: unknown): string {
  return `data: ${JSON.stringify(data)}\n\n`;
}


export const DONE_EVENT = "data: [DONE]\n\n";

/** A comment line; clients ignore it, proxies see traffic. */
export function commentEvent(text: string): string {
  return `: ${text}\n\n`;
}
