/**
 * @module test/unit/providers/harness
 * What every provider adapter's tests share: catching the `GatewayError` an adapter throws,
 * decoding SSE bytes through the one `SSEReader` and an adapter's stream decoder, folding the
 * decoded events into what a client sees, and the check that a recorded stream decodes the same
 * however its bytes are split.
 */
import { describe, expect, it } from "vitest";
import { GatewayError } from "../../../src/errors";
import { SSEReader, type SSEMessage } from "../../../src/providers/sse";
import type { ProviderAdapter, ReasoningDetail, StreamEvent, Usage } from "../../../src/providers/types";

/** The part of an adapter these helpers drive. */
type StreamingAdapter = Pick<ProviderAdapter, "createStreamDecoder">;

/** Runs `fn` and returns the `GatewayError` it throws; fails if it throws something else or nothing. */
export function caught(fn: () => unknown): GatewayError {
  try {
    fn();
  } catch (error) {
    if (error instanceof GatewayError) return error;
    throw error;
  }
  throw new Error("expected a GatewayError");
}

/** Reads every SSE message from a body that delivers `chunks` one per pull. */
async function readMessages(chunks: Uint8Array[]): Promise<SSEMessage[]> {
  const queue = [...chunks];
  const reader = new SSEReader(
    new ReadableStream<Uint8Array>({
      pull(controller) {
        const next = queue.shift();
        if (next) controller.enqueue(next);
        else controller.close();
      },
    }),
  );
  const messages: SSEMessage[] = [];
  for (let message = await reader.next(); message; message = await reader.next()) messages.push(message);
  return messages;
}

/** Decodes upstream SSE bytes, arriving as `chunks`, with one fresh stream decoder of `adapter`. */
export async function decodeChunks(adapter: StreamingAdapter, chunks: Uint8Array[]): Promise<StreamEvent[]> {
  const decoder = adapter.createStreamDecoder();
  return (await readMessages(chunks)).flatMap((message) => decoder.decode(message));
}

/** Decodes a whole SSE text with `adapter`, as one chunk. */
export function decodeText(adapter: StreamingAdapter, text: string): Promise<StreamEvent[]> {
  return decodeChunks(adapter, [new TextEncoder().encode(text)]);
}

/** What a client ends up with after applying every delta, as the gateway's encoder would forward them. */
export function accumulate(events: StreamEvent[]) {
  const result = {
    content: "",
    reasoning: "",
    reasoningDetails: [] as ReasoningDetail[],
    toolCalls: [] as { id: string; name: string; arguments: string }[],
    finish: [] as Extract<StreamEvent, { type: "finish" }>[],
    usage: [] as Usage[],
    errors: [] as Extract<StreamEvent, { type: "error" }>[],
  };
  for (const event of events) {
    if (event.type === "delta") {
      result.content += event.content ?? "";
      result.reasoning += event.reasoning ?? "";
      result.reasoningDetails.push(...(event.reasoningDetails ?? []));
      for (const call of event.toolCalls ?? []) {
        const slot = (result.toolCalls[call.index] ??= { id: "", name: "", arguments: "" });
        slot.id += call.id ?? "";
        slot.name += call.name ?? "";
        slot.arguments += call.arguments ?? "";
      }
    } else if (event.type === "finish") result.finish.push(event);
    else if (event.type === "usage") result.usage.push(event.usage);
    else result.errors.push(event);
  }
  return result;
}

/** How `describeSplitDecoding` cuts streams into irregular pieces. */
export interface SplitOptions {
  /** Seed of the LCG that picks piece sizes, so failures reproduce. */
  seed: number;
  /** The largest piece, in bytes, of each series of runs. */
  maxPieces: number[];
}

/**
 * Registers "split at arbitrary byte boundaries": each SSE fixture (named by its key) must decode
 * with `adapter` to the same events whole, at every two-way split, and when cut into many small
 * pieces of random size.
 */
export function describeSplitDecoding(adapter: StreamingAdapter, fixtures: Record<string, string>, { seed, maxPieces }: SplitOptions): void {
  // Thousands of decodes each: generous timeouts so a busy machine does not fail them.
  describe("split at arbitrary byte boundaries", { timeout: 120_000 }, () => {
    it.each(Object.entries(fixtures))("decodes %s identically for every two-way split", async (_name, text) => {
      const bytes = new TextEncoder().encode(text);
      const whole = await decodeChunks(adapter, [bytes]);
      expect(whole.length).toBeGreaterThan(2);
      for (let cut = 1; cut < bytes.length; cut++) {
        expect(await decodeChunks(adapter, [bytes.slice(0, cut), bytes.slice(cut)])).toEqual(whole);
      }
    });

    it.each(Object.entries(fixtures))("decodes %s identically when cut into many small irregular pieces", async (_name, text) => {
      const bytes = new TextEncoder().encode(text);
      const whole = await decodeChunks(adapter, [bytes]);
      // A fixed-seed LCG so failures reproduce.
      let state = seed;
      const random = (max: number): number => {
        state = (state * 1103515245 + 12345) % 2 ** 31;
        return 1 + (state % max);
      };
      for (const maxPiece of maxPieces) {
        for (let run = 0; run < 5; run++) {
          const chunks: Uint8Array[] = [];
          for (let at = 0; at < bytes.length; ) {
            const size = random(maxPiece);
            chunks.push(bytes.slice(at, at + size));
            at += size;
          }
          expect(await decodeChunks(adapter, chunks)).toEqual(whole);
        }
      }
    });
  });
}
