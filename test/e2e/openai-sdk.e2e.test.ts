/**
 * The `openai` npm SDK against the gateway, one model per provider family: plain chat, streaming
 * with a usage chunk, and a parallel tool call round trip.
 */
import type OpenAI from "openai";
import { describe, expect, it } from "vitest";
import { MODELS, mockReply, mockToolAnswer, openaiClient, promptTokens, wordCount } from "./helpers";

const client = openaiClient();

const tools: OpenAI.ChatCompletionTool[] = [
  {
    type: "function",
    function: {
      name: "get_weather",
      description: "Current weather in a city",
      parameters: { type: "object", properties: { location: { type: "string" } }, required: ["location"] },
    },
  },
  {
    type: "function",
    function: {
      name: "get_time",
      description: "Local time in a city",
      parameters: {
        type: "object",
        properties: { location: { type: "string" }, format: { type: "string", enum: ["24h", "12h"] } },
        required: ["location", "format"],
      },
    },
  },
];

describe.each(MODELS)("openai SDK with %s", (model) => {
  it("answers a chat completion with the upstream's text and usage", async () => {
    const prompt = "Say hello to the gateway";
    const completion = await client.chat.completions.create({ model, messages: [{ role: "user", content: prompt }] });

    const choice = completion.choices[0]!;
    expect(choice.message.content).toBe(mockReply(prompt));
    expect(choice.finish_reason).toBe("stop");
    expect(completion.model).toBe(model);
    expect(completion.usage).toMatchObject({
      prompt_tokens: promptTokens(prompt),
      completion_tokens: wordCount(mockReply(prompt)),
      total_tokens: promptTokens(prompt) + wordCount(mockReply(prompt)),
    });
  });

  it("streams the reply word by word and ends with a usage chunk", async () => {
    const prompt = "Stream a few words please";
    const stream = await client.chat.completions.create({
      model,
      messages: [{ role: "user", content: prompt }],
      stream: true,
      stream_options: { include_usage: true },
    });

    let text = "";
    let contentChunks = 0;
    const finishReasons: string[] = [];
    let usage: OpenAI.CompletionUsage | null | undefined;
    let usageChunkChoices: number | undefined;
    for await (const chunk of stream) {
      for (const choice of chunk.choices) {
        if (choice.delta.content) {
          text += choice.delta.content;
          contentChunks++;
        }
        if (choice.finish_reason) finishReasons.push(choice.finish_reason);
      }
      if (chunk.usage) {
        usage = chunk.usage;
        usageChunkChoices = chunk.choices.length;
      }
    }

    expect(text).toBe(mockReply(prompt));
    expect(contentChunks).toBeGreaterThan(1);
    expect(finishReasons).toEqual(["stop"]);
    expect(usageChunkChoices).toBe(0);
    expect(usage).toMatchObject({
      prompt_tokens: promptTokens(prompt),
      completion_tokens: wordCount(mockReply(prompt)),
      total_tokens: promptTokens(prompt) + wordCount(mockReply(prompt)),
    });
  });

  it("round-trips parallel tool calls and answers from the tool results", async () => {
    const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: "user", content: "What is the weather and the time in Paris?" }];
    const first = await client.chat.completions.create({ model, messages, tools });

    const call = first.choices[0]!;
    expect(call.finish_reason).toBe("tool_calls");
    const calls = (call.message.tool_calls ?? []).filter((c) => c.type === "function");
    expect(calls.map((c) => [c.function.name, JSON.parse(c.function.arguments)])).toEqual([
      ["get_weather", { location: "Paris" }],
      ["get_time", { location: "Paris", format: "24h" }],
    ]);
    expect(new Set(calls.map((c) => c.id)).size).toBe(2);
    expect(first.usage?.completion_tokens).toBeGreaterThan(0);

    const results = ["sunny, 21 degrees", "14:05"];
    messages.push(call.message, ...calls.map((c, i) => ({ role: "tool" as const, tool_call_id: c.id, content: results[i]! })));
    const second = await client.chat.completions.create({ model, messages, tools });

    expect(second.choices[0]!.message.content).toBe(mockToolAnswer(results));
    expect(second.choices[0]!.finish_reason).toBe("stop");
    expect(second.usage?.completion_tokens).toBe(wordCount(mockToolAnswer(results)));
  });

  it("streams parallel tool calls as indexed deltas that assemble into two calls", async () => {
    const stream = await client.chat.completions.create({
      model,
      messages: [{ role: "user", content: "Weather and time in Paris?" }],
      tools,
      stream: true,
    });

    const assembled = new Map<number, { id: string; name: string; args: string }>();
    const finishReasons: string[] = [];
    for await (const chunk of stream) {
      const choice = chunk.choices[0];
      if (!choice) continue;
      for (const delta of choice.delta.tool_calls ?? []) {
        const slot = assembled.get(delta.index) ?? { id: "", name: "", args: "" };
        slot.id += delta.id ?? "";
        slot.name += delta.function?.name ?? "";
        slot.args += delta.function?.arguments ?? "";
        assembled.set(delta.index, slot);
      }
      if (choice.finish_reason) finishReasons.push(choice.finish_reason);
    }

    expect([...assembled.keys()]).toEqual([0, 1]);
    expect([...assembled.values()].map((c) => [c.name, JSON.parse(c.args)])).toEqual([
      ["get_weather", { location: "Paris" }],
      ["get_time", { location: "Paris", format: "24h" }],
    ]);
    expect([...assembled.values()].every((c) => c.id.length > 0)).toBe(true);
    expect(finishReasons).toEqual(["tool_calls"]);
  });

  it("stops at max_tokens with finish_reason length", async () => {
    const completion = await client.chat.completions.create({
      model,
      messages: [{ role: "user", content: "Tell me a long story" }],
      max_tokens: 3,
    });

    expect(completion.choices[0]!.message.content).toBe("Mock reply to:");
    expect(completion.choices[0]!.finish_reason).toBe("length");
    expect(completion.usage?.completion_tokens).toBe(3);
  });
});
