/**
 * Text-only stream chunks come from a per-stream template (api/chat/shape `textChunkEvents`); a
 * client must not be able to tell them from chunks built and serialised whole.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { chunkJson, textChunkEvents } from "../../../src/api/chat/shape";
import { dataEvent } from "../../../src/providers/sse";

describe("textChunkEvents", () => {
  it("writes exactly what the chunk builder writes, for any text and any generation", () => {
    const meta = fc.record({
      id: fc.string(),
      created: fc.integer({ min: 0, max: 2 ** 40 }),
      model: fc.string({ unit: "grapheme" }),
      provider: fc.string(),
    });
    fc.assert(
      fc.property(meta, fc.array(fc.string({ unit: "binary" }), { minLength: 1, maxLength: 5 }), (m, texts) => {
        const events = textChunkEvents(m);
        for (const content of texts) expect(events(content)).toBe(dataEvent(chunkJson(m, { content })));
      }),
      { numRuns: 300 },
    );
  });

  it("is one well-formed data event per text, quotes, newlines and lone surrogates included", () => {
    const events = textChunkEvents({ id: "gen-1", created: 1, model: 'm"\n', provider: "p" });
    const text = 'a "quoted"\nline\u2028 and \ud800';
    const out = events(text);
    expect(out.startsWith("data: ")).toBe(true);
    expect(out.endsWith("\n\n")).toBe(true);
    expect(out.slice(6, -2)).not.toContain("\n");
    const chunk = JSON.parse(out.slice(6, -2));
    expect(chunk.choices[0].delta).toEqual({ content: text });
    expect(chunk).toMatchObject({ id: "gen-1", object: "chat.completion.chunk", model: 'm"\n', provider: "p" });
  });
});
