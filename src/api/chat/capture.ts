/**
 * @module api/chat/capture
 * What a streamed answer said, kept for its trace while the stream is relayed: text, reasoning
 * and tool calls assembled from their deltas. Bounded: past `MAX_CAPTURED_CHARS` the rest is
 * relayed but not kept (and the trace says so), so a huge answer costs the isolate at most that
 * much memory. Nothing is kept for a zero-retention request.
 */
import type { ToolCallDelta } from "../../providers/types";
import type { TraceContent } from "../../traces/schema";

/** About 1 MB of text: a trace past that is an outlier, and the queue's R2 path carries it. */
export const MAX_CAPTURED_CHARS = 1_000_000;

export class OutputCapture {
  #text = "";
  #reasoning = "";
  #calls = new Map<number, { id?: string; name?: string; arguments: string }>();
  #chars = 0;
  #truncated = false;

  /** False for a zero-retention request: every call is a no-op. */
  constructor(readonly enabled: boolean) {}

  #room(length: number): boolean {
    if (!this.enabled || this.#truncated) return false;
    if (this.#chars + length > MAX_CAPTURED_CHARS) {
      this.#truncated = true;
      return false;
    }
    this.#chars += length;
    return true;
  }

  text(piece: string): void {
    if (this.#room(piece.length)) this.#text += piece;
  }

  reasoning(piece: string): void {
    if (this.#room(piece.length)) this.#reasoning += piece;
  }

  toolCalls(deltas: readonly ToolCallDelta[]): void {
    for (const delta of deltas) {
      if (!this.#room((delta.arguments?.length ?? 0) + (delta.name?.length ?? 0))) return;
      const call = this.#calls.get(delta.index) ?? { arguments: "" };
      if (delta.id !== undefined) call.id = delta.id;
      if (delta.name !== undefined) call.name = (call.name ?? "") + delta.name;
      call.arguments += delta.arguments ?? "";
      this.#calls.set(delta.index, call);
    }
  }

  /** The trace's output, or null when nothing is kept (zero retention). */
  output(): TraceContent["output"] | null {
    if (!this.enabled) return null;
    const toolCalls = [...this.#calls].sort(([a], [b]) => a - b).map(([index, c]) => ({ index, id: c.id, type: "function", function: { name: c.name, arguments: c.arguments } }));
    return {
      text: this.#truncated ? `${this.#text}\n[truncated by the gateway after ${MAX_CAPTURED_CHARS} characters]` : this.#text,
      ...(this.#reasoning ? { reasoning: this.#reasoning } : {}),
      ...(toolCalls.length ? { tool_calls: toolCalls } : {}),
    };
  }
}
