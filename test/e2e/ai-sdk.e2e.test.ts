/**
 * The Vercel AI SDK with the OpenRouter provider, pointed at the gateway as if it were OpenRouter.
 */
import { createOpenRouter } from "@openrouter/ai-sdk-provider";
import { generateText, streamText } from "ai";
import { describe, expect, it } from "vitest";
import { MODELS, mockReply, promptTokens, switchyard, wordCount } from "./helpers";

const openrouter = createOpenRouter({ baseURL: `${switchyard.url}/api/v1`, apiKey: switchyard.apiKey, compatibility: "strict" });

describe.each(MODELS)("AI SDK (OpenRouter provider) with %s", (model) => {
  it("generateText returns the upstream's text, finish reason and usage", async () => {
    const prompt = "Hello from the AI SDK";
    const result = await generateText({ model: openrouter(model), prompt, maxRetries: 0 });

    expect(result.text).toBe(mockReply(prompt));
    expect(result.finishReason).toBe("stop");
    expect(result.usage.inputTokens).toBe(promptTokens(prompt));
    expect(result.usage.outputTokens).toBe(wordCount(mockReply(prompt)));
    expect(result.usage.totalTokens).toBe(promptTokens(prompt) + wordCount(mockReply(prompt)));
  });

  it("streamText streams the text in several parts and reports usage at the end", async () => {
    const prompt = "Stream from the AI SDK";
    const result = streamText({ model: openrouter(model), prompt, maxRetries: 0 });

    const parts: string[] = [];
    for await (const part of result.textStream) parts.push(part);

    expect(parts.join("")).toBe(mockReply(prompt));
    expect(parts.length).toBeGreaterThan(1);
    expect(await result.finishReason).toBe("stop");
    const usage = await result.usage;
    expect(usage.inputTokens).toBe(promptTokens(prompt));
    expect(usage.outputTokens).toBe(wordCount(mockReply(prompt)));
  });
});
