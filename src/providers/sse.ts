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
  readonly #queue: SSEMessage[] = [];
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

  async next(): Promise<SSEMessage | null> {
    for (;;) {
      const queued = this.#queue.shift();
      if (queued) return queued;
      if (this.#done) return null;
      const { value, done } = await this.#reader.read();
      if (done) {
        this.#done = true;
        // Terminate whatever the upstream left open so its last event is still dispatched.
        this.#parser.feed(`${this.#decoder.decode()}\n\n`);
      } else {
        this.#parser.feed(this.#decoder.decode(value, { stream: true }));
      }
    }
  }

  /** Stop reading and release the upstream connection. */
  async cancel(reason?: unknown): Promise<void> {
    this.#done = true;
    this.#queue.length = 0;
    await this.#reader.cancel(reason).catch(() => {});
  }
}

const encoder = new TextEncoder();

/** One `data:` event carrying JSON. */
export function encodeData(data: unknown): Uint8Array {
  return encoder.encode(`data: ${JSON.stringify(data)}\n\n`);
}

export const DONE_EVENT = encoder.encode("data: [DONE]\n\n");

/** A comment line; clients ignore it, proxies see traffic. */
export function encodeComment(text: string): Uint8Array {
  return encoder.encode(`: ${text}\n\n`);
}
