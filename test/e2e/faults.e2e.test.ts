/**
 * Upstream faults made by the mock provider, seen through the openai SDK: failover to a model's
 * second endpoint (plain and streamed), a stream that breaks after content reached the client,
 * and the errors a client gets when every endpoint fails.
 */
import OpenAI, { APIError } from "openai";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { MODELS, mock, mockReply, openaiClient, resetRouting } from "./helpers";

const client = openaiClient();

beforeEach(async () => {
  await mock.reset();
  await resetRouting();
});
afterEach(() => mock.clearFaults());

/** Hits per mock prefix since the last reset; providers are wired at `/<envPrefix lower-case>`. */
async function hitsOf(...prefixes: string[]) {
  const hits = await mock.hits();
  return Object.fromEntries(prefixes.map((p) => [p, hits[p] ?? 0]));
}

describe("failover", () => {
  const cases = [
    { model: "meta-llama/llama-3.3-70b-instruct", order: ["groq", "together"], first: "/groq", second: "/together", served: "Together" },
    { model: "openai/gpt-4o-mini", order: ["openai", "azure-eu"], first: "/openai", second: "/azure_openai_eu", served: "Azure OpenAI (EU Data Zone)" },
  ];

  describe.each(["500", "503", "429", "reset", "malformed"])("when the first endpoint fails with %s", (fault) => {
    it.each(cases)("serves $model from its second endpoint", async ({ model, order, first, second, served }) => {
      await mock.fault(first, fault);
      const prompt = `Fail over for ${model}`;

      const { data: completion, response } = await client.chat.completions
        .create({ model, messages: [{ role: "user", content: prompt }], provider: { order } } as OpenAI.ChatCompletionCreateParamsNonStreaming)
        .withResponse();

      expect(completion.choices[0]!.message.content).toBe(mockReply(prompt));
      expect((completion as unknown as { provider: string }).provider).toBe(served);
      expect(response.headers.get("x-switchyard-attempts")).toBe("2");
      expect(await hitsOf(first, second)).toEqual({ [first]: 1, [second]: 1 });
    });
  });

  describe.each(["500", "reset", "malformed", "hang"])("when the first endpoint's stream fails with %s before any content", (fault) => {
    it("streams the whole reply from the second endpoint", async () => {
      await mock.fault("/groq", fault);
      const prompt = "Stream with a broken first endpoint";
      const stream = await client.chat.completions.create({
        model: "meta-llama/llama-3.3-70b-instruct",
        messages: [{ role: "user", content: prompt }],
        stream: true,
        provider: { order: ["groq", "together"] },
      } as OpenAI.ChatCompletionCreateParamsStreaming);

      let text = "";
      let provider = "";
      for await (const chunk of stream) {
        text += chunk.choices[0]?.delta.content ?? "";
        provider = (chunk as unknown as { provider: string }).provider;
      }

      expect(text).toBe(mockReply(prompt));
      expect(provider).toBe("Together");
      expect(await hitsOf("/groq", "/together")).toEqual({ "/groq": 1, "/together": 1 });
    });
  });
});

describe.each(MODELS)("a stream from %s that breaks after its first words", (model) => {
  const prompt = "Break this stream into many little pieces";
  // The mock cuts after two content events: two words, or two Gemini events of three words.
  const sent = mockReply(prompt)
    .split(" ")
    .slice(0, model.startsWith("google/") ? 6 : 2)
    .join(" ");

  it.each([
    ["the connection drops", "midstream", /Upstream stream failed/],
    ["the upstream sends an error event", "error-event", /Mock fault: error in the middle of the stream/],
  ])("ends with an error the SDK throws when %s, and is not retried elsewhere", async (_what, fault, message) => {
    const stream = await client.chat.completions.create({
      model,
      messages: [{ role: "user", content: `${prompt} [[fault:${fault}]]` }],
      stream: true,
      stream_options: { include_usage: true },
    });

    let text = "";
    let caught: unknown;
    try {
      for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? "";
    } catch (error) {
      caught = error;
    }

    // The words already relayed stay with the client; the gateway then sends OpenRouter's error
    // chunk (`error` + finish_reason "error"), which the openai SDK throws as an APIError.
    expect(text).toBe(sent);
    expect(caught).toBeInstanceOf(APIError);
    expect((caught as APIError).message).toMatch(message);
    const hits = await mock.hits();
    expect(Object.values(hits).reduce((a, b) => a + b, 0)).toBe(1);
  });
});

describe("when every endpoint fails", () => {
  it("answers 502 naming each provider tried", async () => {
    const error = await client.chat.completions
      .create({
        model: "meta-llama/llama-3.3-70b-instruct",
        messages: [{ role: "user", content: "Nobody answers [[fault:500]]" }],
      })
      .then(() => null, (e: unknown) => e);

    expect(error).toBeInstanceOf(APIError);
    expect((error as APIError).status).toBe(502);
    expect((error as APIError).message).toMatch(/Groq/);
    expect((error as APIError).message).toMatch(/Together/);
    expect(await hitsOf("/groq", "/together")).toEqual({ "/groq": 1, "/together": 1 });
  });

  it("answers 429 with Retry-After when every endpoint is rate limited", async () => {
    const error = await client.chat.completions
      .create({
        model: "meta-llama/llama-3.3-70b-instruct",
        messages: [{ role: "user", content: "Everyone is busy [[fault:429]]" }],
      })
      .then(() => null, (e: unknown) => e);

    expect(error).toBeInstanceOf(APIError);
    expect((error as APIError).status).toBe(429);
    expect((error as APIError).headers?.get("retry-after")).toBe("1");
  });
});
