/**
 * Message sizes are measured without encoding: the producer packs 64 KB messages by these numbers,
 * so they must be the UTF-8 size of the JSON the queue stores, exactly.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { jsonBytes, traceBatch, traceBatchBytes, utf8Length } from "../../../src/traces/messages";
import { exampleTrace } from "./fixtures";

const encoded = (text: string) => new TextEncoder().encode(text).byteLength;

describe("message sizes", () => {
  it("counts UTF-8 bytes of JSON text as TextEncoder does: ASCII, 2-, 3- and 4-byte characters, escaped lone surrogates", () => {
    for (const text of ["", "plain ascii", "é ü ß", "€ 中文", "😀 🇪🇺", "\ud800 lone", "x\udfff"]) {
      const json = JSON.stringify(text);
      expect(utf8Length(json)).toBe(encoded(json));
    }
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 200 }), (text) => {
        const json = JSON.stringify({ text });
        expect(utf8Length(json)).toBe(encoded(json));
      }),
      { numRuns: 500 },
    );
  });

  it("sizes a batch from its traces' sizes exactly as its JSON", () => {
    for (const count of [0, 1, 3]) {
      const traces = Array.from({ length: count }, (_, i) => ({ ...exampleTrace(), generation_id: `gen-${i}-é😀` }));
      expect(traceBatchBytes(traces.map((t) => jsonBytes(t)))).toBe(encoded(JSON.stringify(traceBatch(traces))));
    }
  });
});
