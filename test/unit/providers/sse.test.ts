import { describe, expect, it } from "vitest";
import { SSEReader } from "../../../src/providers/sse";

function bodyOf(chunks: string[]): ReadableStream<Uint8Array> {
  const bytes = chunks.map((c) => new TextEncoder().encode(c));
  return new ReadableStream({
    pull(controller) {
      const next = bytes.shift();
      if (next) controller.enqueue(next);
      else controller.close();
    },
  });
}

async function readAll(reader: SSEReader): Promise<string[]> {
  const out: string[] = [];
  for (let m = await reader.next(); m; m = await reader.next()) out.push(m.data);
  return out;
}

describe("SSEReader", () => {
  it("reassembles events split across arbitrary chunk boundaries", async () => {
    const text = 'data: {"a":1}\n\ndata: {"b":"é"}\n\n: comment\n\nevent: x\ndata: [DONE]\n\n';
    const whole = new TextEncoder().encode(text);
    for (let cut = 1; cut < whole.length; cut++) {
      const body = new ReadableStream<Uint8Array>({
        start(c) {
          c.enqueue(whole.slice(0, cut));
          c.enqueue(whole.slice(cut));
          c.close();
        },
      });
      expect(await readAll(new SSEReader(body))).toEqual(['{"a":1}', '{"b":"é"}', "[DONE]"]);
    }
  });

  it("delivers a final event the upstream did not terminate", async () => {
    expect(await readAll(new SSEReader(bodyOf(['data: {"a":1}\n\ndata: {"b":2}'])))).toEqual(['{"a":1}', '{"b":2}']);
  });

  it("handles CRLF line endings", async () => {
    expect(await readAll(new SSEReader(bodyOf(["data: one\r\n\r\ndata: two\r\n\r\n"])))).toEqual(["one", "two"]);
  });
});
