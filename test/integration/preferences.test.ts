import { http, HttpResponse } from "msw";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { chat, mswServer, provision, type RouterCompletion, type RouterError } from "../helpers";

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
      "No endpoint can serve deepseek/deepseek-chat: data_collection=deny (provider retains or trains on prompts): deepseek",
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
