/**
 * Every endpoint of the three test models, chosen with OpenRouter's `provider.order`: each wire
 * path the gateway builds (OpenAI, Azure deployments, Anthropic, Anthropic on Vertex, Gemini on
 * AI Studio and Vertex) reaches the mock and comes back translated, plain and streamed.
 */
import type OpenAI from "openai";
import { beforeEach, describe, expect, it } from "vitest";
import { mock, mockReply, openaiClient } from "./helpers";

const client = openaiClient();

const endpoints = [
  { model: "openai/gpt-4o-mini", provider: "openai", prefix: "/openai" },
  { model: "openai/gpt-4o-mini", provider: "azure-eu", prefix: "/azure_openai_eu" },
  { model: "anthropic/claude-haiku-4.5", provider: "anthropic", prefix: "/anthropic" },
  { model: "anthropic/claude-haiku-4.5", provider: "google-vertex-anthropic-eu", prefix: "/anthropic_vertex_eu" },
  { model: "google/gemini-2.5-flash", provider: "google-ai-studio", prefix: "/gemini" },
  { model: "google/gemini-2.5-flash", provider: "google-vertex-eu", prefix: "/google_vertex_eu" },
];

beforeEach(() => mock.reset());

describe.each(endpoints)("$model on $provider", ({ model, provider, prefix }) => {
  const route = { provider: { order: [provider], allow_fallbacks: false } };

  it("answers through the provider's own wire path", async () => {
    const prompt = `Hello ${provider}`;
    const completion = await client.chat.completions.create({
      model,
      messages: [{ role: "user", content: prompt }],
      ...route,
    } as OpenAI.ChatCompletionCreateParamsNonStreaming);

    expect(completion.choices[0]!.message.content).toBe(mockReply(prompt));
    expect(await mock.hits()).toEqual({ [prefix]: 1 });
  });

  it("streams through the provider's own wire path", async () => {
    const prompt = `Stream from ${provider}`;
    const stream = await client.chat.completions.create({
      model,
      messages: [{ role: "user", content: prompt }],
      stream: true,
      ...route,
    } as OpenAI.ChatCompletionCreateParamsStreaming);

    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? "";

    expect(text).toBe(mockReply(prompt));
    expect(await mock.hits()).toEqual({ [prefix]: 1 });
  });
});
