import { http, HttpResponse } from "msw";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { chat, expectError, mswServer, provision, recordUpstream, type RouterCompletion, type RouterError } from "../helpers";

let key: string;
beforeAll(async () => {
  mswServer.listen({ onUnhandledRequest: "error" });
  key = await provision("ws-prefs");
});
afterEach(() => mswServer.resetHandlers());
afterAll(() => mswServer.close());

const ok = { choices: [{ index: 0, message: { role: "assistant", content: "ok" }, finish_reason: "stop" }], usage: { prompt_tokens: 1, completion_tokens: 1 } };

describe("provider preferences through the Worker", () => {
  it("refuses with 503 naming data_collection=deny when only a training provider serves the model", async () => {
    const res = await chat(key, { model: "deepseek/deepseek-chat", messages: [{ role: "user", content: "hi" }], provider: { data_collection: "deny" } });
    expect(res.status).toBe(503);
    const body = (await res.json()) as RouterError;
    expect(body.error.message).toBe(
      "No endpoint can serve deepseek/deepseek-chat: data_collection=deny removed 1 endpoint (deepseek)",
    );
  });

  it("routes only to providers in provider.only, whatever the price order", async () => {
    const hosts: string[] = [];
    mswServer.use(
      http.post("https://*.upstream.test/*", ({ request }) => {
        hosts.push(new URL(request.url).host);
        return HttpResponse.json(ok);
      }),
    );
    const res = await chat(key, { model: "meta-llama/llama-3.3-70b-instruct", messages: [{ role: "user", content: "hi" }], provider: { only: ["together"] } });
    expect(res.status).toBe(200);
    expect(((await res.json()) as RouterCompletion).provider).toBe("Together");
    expect(hosts).toEqual(["together.upstream.test"]);
  });

  it("never falls back outside provider.order when allow_fallbacks is false", async () => {
    const hosts: string[] = [];
    mswServer.use(
      http.post("https://*.upstream.test/*", ({ request }) => {
        hosts.push(new URL(request.url).host);
        return HttpResponse.json({ error: { message: "down" } }, { status: 500 });
      }),
    );
    const res = await chat(key, {
      model: "meta-llama/llama-3.3-70b-instruct",
      messages: [{ role: "user", content: "hi" }],
      provider: { order: ["together"], allow_fallbacks: false },
    });
    expect(res.status).toBe(502);
    expect(hosts).toEqual(["together.upstream.test"]);
  });
});

const LLAMA = "meta-llama/llama-3.3-70b-instruct";
const hi = [{ role: "user", content: "hi" }];

describe("model variants and capability filters through the Worker", () => {
  it.each([
    [":floor", "groq.upstream.test"],
    // No throughput data yet: measured endpoints first, then the rest cheapest first.
    [":nitro", "groq.upstream.test"],
  ])("routes %s by its sort and answers with the catalog model id", async (variant, host) => {
    const upstream = recordUpstream();
    mswServer.use(upstream.handler);
    const res = await chat(key, { model: `${LLAMA}${variant}`, messages: hi });
    expect(res.status).toBe(200);
    expect(((await res.json()) as RouterCompletion).model).toBe(LLAMA);
    expect(upstream.hits.map((h) => h.host)).toEqual([host]);
  });

  it("answers 404 for an unknown variant instead of guessing the model", async () => {
    const error = await expectError(await chat(key, { model: `${LLAMA}:turbo`, messages: hi }), 404);
    expect(error.message).toBe(`Model not found: ${LLAMA}:turbo`);
  });

  it("skips an endpoint whose output cap is below max_tokens", async () => {
    const upstream = recordUpstream();
    mswServer.use(upstream.handler);
    // Groq caps output at 32,768 tokens; Together lists no cap.
    const res = await chat(key, { model: LLAMA, messages: hi, max_tokens: 50_000 });
    expect(res.status).toBe(200);
    expect(upstream.hits.map((h) => h.host)).toEqual(["together.upstream.test"]);
  });

  it("counts what each constraint removed when nothing is left", async () => {
    const error = await expectError(
      await chat(key, { model: LLAMA, messages: hi, max_tokens: 50_000, provider: { max_price: { prompt: "0.6" } } }),
      503,
    );
    expect(error.message).toBe(`No endpoint can serve ${LLAMA}: max_tokens removed 1 endpoint (groq); max_price removed 1 endpoint (together)`);
    expect(error.metadata?.excluded).toEqual([
      { model: LLAMA, provider: "groq", constraint: "max_tokens", reason: "max_tokens 50000 exceeds the endpoint's 32768 output tokens" },
      { model: LLAMA, provider: "together", constraint: "max_price", reason: "max_price.prompt" },
    ]);
  });
});
