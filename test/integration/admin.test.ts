/**
 * The admin API: seeding and editing the catalog (with the effect on /models and on routing),
 * workspaces and keys, and a 400 naming the field for every malformed body.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import seedJson from "../../src/catalog/seed.json";
import { admin, call, chat, expectError, mswServer, provision, recordUpstream, type RouterCompletion, type RouterPricing } from "../helpers";

const WORKSPACE = "ws-admin";
const LLAMA = "meta-llama/llama-3.3-70b-instruct";
const hi = [{ role: "user", content: "hi" }];

interface ProviderRow {
  slug: string;
  name: string;
  family: string;
  envPrefix: string;
  baseUrl: string | null;
  region: string;
  retainsPrompts: boolean;
  trainsOnData: boolean;
  zeroRetention: boolean;
  options: Record<string, unknown>;
}
interface ListedModel {
  id: string;
  name: string;
  context_length: number;
  pricing: RouterPricing;
  top_provider: { context_length: number; max_completion_tokens: number | null; is_moderated: boolean };
  supported_parameters: string[];
}
interface ListedEndpoint {
  provider_name: string;
  tag: string;
  region: string;
  quantization: string;
  context_length: number;
  max_completion_tokens: number | null;
  pricing: RouterPricing;
}
interface KeyCreated {
  data: { id: string; workspace_id: string; name: string };
  key: string;
}

let key: string;
const upstream = recordUpstream();

beforeAll(async () => {
  mswServer.listen({ onUnhandledRequest: "error" });
  mswServer.use(upstream.handler);
  key = await provision(WORKSPACE);
});
beforeEach(async () => {
  // Every test starts from the committed catalog (re-seeding restores deleted or changed rows).
  expect((await admin("/catalog/seed", "POST")).status).toBe(200);
  upstream.hits.length = 0;
});
afterAll(() => mswServer.close());

async function dataOf<T>(res: Response, status = 200): Promise<T> {
  expect(res.status, await res.clone().text()).toBe(status);
  return ((await res.json()) as { data: T }).data;
}

async function listedModels(): Promise<ListedModel[]> {
  return dataOf<ListedModel[]>(await call("/api/v1/models"));
}

async function endpointsOf(modelId: string): Promise<ListedEndpoint[]> {
  return (await dataOf<{ endpoints: ListedEndpoint[] }>(await call(`/api/v1/models/${modelId}/endpoints`))).endpoints;
}

/** Which fake provider hosts were called, and with which upstream model. */
const routed = () => upstream.hits.map((h) => [h.host, (h.body as { model?: unknown }).model]);

/** The body every endpoint PUT of the llama/mistral tests starts from. */
const endpointBody = (extra: Record<string, unknown> = {}) => ({
  upstreamModel: "mistral-large-latest",
  promptPrice: "2.00",
  completionPrice: "6.00",
  contextLength: 131072,
  ...extra,
});

describe("catalog seed", () => {
  it("answers the counts of the committed seed, and re-seeding adds nothing", async () => {
    const counts = { providers: seedJson.providers.length, models: seedJson.models.length, endpoints: seedJson.endpoints.length };
    expect(await dataOf(await admin("/catalog/seed", "POST"))).toEqual(counts);
    expect(await dataOf(await admin("/catalog/seed", "POST"))).toEqual(counts);
    const providers = await dataOf<ProviderRow[]>(await admin("/providers", "GET"));
    expect(providers.map((p) => p.slug).sort()).toEqual(seedJson.providers.map((p) => p.slug).sort());
  });
});

describe("PUT /providers/:slug", () => {
  it("creates a provider with defaults, then updates it in place", async () => {
    const body = { name: "Acme", family: "openai", envPrefix: "TOGETHER", region: "eu" };
    const expected: ProviderRow = {
      slug: "acme",
      name: "Acme",
      family: "openai",
      envPrefix: "TOGETHER",
      baseUrl: null,
      region: "eu",
      retainsPrompts: false,
      trainsOnData: false,
      zeroRetention: false,
      options: {},
    };
    expect(await dataOf(await admin("/providers/acme", "PUT", body))).toEqual(expected);
    await dataOf(await admin("/providers/acme", "PUT", { ...body, name: "Acme Inc", zeroRetention: true }));
    const providers = await dataOf<ProviderRow[]>(await admin("/providers", "GET"));
    expect(providers.filter((p) => p.slug === "acme")).toMatchObject([{ ...expected, name: "Acme Inc", zeroRetention: true }]);
  });
});

describe("PUT /models/:author/:slug and its endpoints", () => {
  beforeEach(async () => {
    // Re-seeding does not remove rows outside the seed: drop the endpoint an earlier test made.
    expect([200, 404]).toContain((await admin("/models/acme/widget-1/endpoints/acme", "DELETE")).status);
    await dataOf(await admin("/providers/acme", "PUT", { name: "Acme", family: "openai", envPrefix: "TOGETHER", region: "eu" }));
    await dataOf(
      await admin("/models/acme/widget-1", "PUT", {
        name: "Acme: Widget 1",
        contextLength: 32000,
        supportedParameters: ["temperature", "tools"],
      }),
    );
  });

  it("creates a model with defaults", async () => {
    expect(await dataOf(await admin("/models/acme/widget-1", "PUT", { name: "Acme: Widget 1", contextLength: 32000 }))).toEqual({
      id: "acme/widget-1",
      name: "Acme: Widget 1",
      description: "",
      contextLength: 32000,
      inputModalities: ["text"],
      outputModalities: ["text"],
      supportedParameters: [],
      tokenizer: "Other",
    });
  });

  it("does not list a model until it has an endpoint", async () => {
    expect((await listedModels()).map((m) => m.id)).not.toContain("acme/widget-1");
    expect(await endpointsOf("acme/widget-1")).toEqual([]);
  });

  it("shows decimal string prices exactly in /models and in the endpoint listing", async () => {
    const saved = await dataOf<{ id: string }>(
      await admin("/models/acme/widget-1/endpoints/acme", "PUT", {
        upstreamModel: "widget-1-latest",
        promptPrice: "0.123456",
        completionPrice: "2.5",
        cacheReadPrice: "0.000001",
        requestPrice: "0.0005",
        contextLength: 32000,
        maxOutputTokens: 4096,
        quantization: "fp8",
      }),
    );
    expect(saved.id).toBe("acme:acme/widget-1");
    const pricing: RouterPricing = {
      prompt: "0.000000123456",
      completion: "0.0000025",
      request: "0.0005",
      image: "0",
      input_cache_read: "0.000000000001",
      input_cache_write: "0.000000123456",
    };
    const listed = (await listedModels()).find((m) => m.id === "acme/widget-1");
    expect(listed).toMatchObject({
      name: "Acme: Widget 1",
      context_length: 32000,
      pricing,
      top_provider: { context_length: 32000, max_completion_tokens: 4096, is_moderated: false },
      supported_parameters: ["temperature", "tools"],
    });
    expect(listed?.pricing).toEqual(pricing);
    expect(await endpointsOf("acme/widget-1")).toMatchObject([
      { provider_name: "Acme", tag: "acme", region: "eu", quantization: "fp8", context_length: 32000, max_completion_tokens: 4096, pricing },
    ]);
  });

  it("accepts prices as JSON numbers with up to 6 decimals", async () => {
    await dataOf(
      await admin("/models/acme/widget-1/endpoints/acme", "PUT", { upstreamModel: "w", promptPrice: 0.5, completionPrice: 1.000001, contextLength: 1000 }),
    );
    const listed = (await listedModels()).find((m) => m.id === "acme/widget-1");
    expect([listed?.pricing.prompt, listed?.pricing.completion]).toEqual(["0.0000005", "0.000001000001"]);
  });

  it("routes chat for the new model to the provider's upstream with its upstream model id", async () => {
    await dataOf(
      await admin("/models/acme/widget-1/endpoints/acme", "PUT", { upstreamModel: "widget-1-latest", promptPrice: "1", completionPrice: "2", contextLength: 32000 }),
    );
    const res = await chat(key, { model: "acme/widget-1", messages: hi });
    const body = (await res.json()) as RouterCompletion;
    expect(res.status).toBe(200);
    expect([body.model, body.provider]).toEqual(["acme/widget-1", "Acme"]);
    expect(routed()).toEqual([["together.upstream.test", "widget-1-latest"]]);
  });

  it("refuses a price with more than 6 decimals with 400 naming the field", async () => {
    const error = await expectError(
      await admin("/models/acme/widget-1/endpoints/acme", "PUT", { upstreamModel: "w", promptPrice: "0.1234567", completionPrice: "1", contextLength: 1000 }),
      400,
    );
    expect(error.message).toBe("Invalid request at `promptPrice`: not a USD amount with at most 6 decimals: 0.1234567");
    const numeric = await expectError(
      await admin("/models/acme/widget-1/endpoints/acme", "PUT", { upstreamModel: "w", promptPrice: "1", completionPrice: 0.0000001, contextLength: 1000 }),
      400,
    );
    expect(numeric.message).toMatch(/^Invalid request at `completionPrice`: /);
    expect(await endpointsOf("acme/widget-1")).toEqual([]);
  });

  it("answers 404 for an endpoint of an unknown provider or an unknown model", async () => {
    const body = { upstreamModel: "w", promptPrice: "1", completionPrice: "1", contextLength: 1000 };
    expect((await expectError(await admin("/models/acme/widget-1/endpoints/nope", "PUT", body), 404)).message).toBe("Provider not found: nope");
    expect((await expectError(await admin("/models/acme/missing/endpoints/acme", "PUT", body), 404)).message).toBe("Model not found: acme/missing");
  });
});

describe("removing and disabling endpoints", () => {
  it("routes to Groq while its endpoint exists, and to Together once it is deleted", async () => {
    // sort=price: the default load-balances at random by price, and this test needs Groq first.
    expect((await chat(key, { model: LLAMA, messages: hi, provider: { sort: "price" } })).status).toBe(200);
    expect(routed()).toEqual([["groq.upstream.test", "llama-3.3-70b-versatile"]]);

    const deleted = await dataOf(await admin(`/models/${LLAMA}/endpoints/groq`, "DELETE"));
    expect(deleted).toEqual({ id: `groq:${LLAMA}`, deleted: true });
    expect((await endpointsOf(LLAMA)).map((e) => e.provider_name)).toEqual(["Together"]);

    upstream.hits.length = 0;
    const res = await chat(key, { model: LLAMA, messages: hi });
    expect(res.status).toBe(200);
    expect(((await res.json()) as RouterCompletion).provider).toBe("Together");
    expect(routed()).toEqual([["together.upstream.test", "meta-llama/Llama-3.3-70B-Instruct-Turbo"]]);
    // The listing's price is now Together's.
    expect((await listedModels()).find((m) => m.id === LLAMA)?.pricing.prompt).toBe("0.00000088");
  });

  it("answers 404 when deleting an endpoint that does not exist", async () => {
    await dataOf(await admin(`/models/${LLAMA}/endpoints/groq`, "DELETE"));
    const error = await expectError(await admin(`/models/${LLAMA}/endpoints/groq`, "DELETE"), 404);
    expect(error.message).toBe(`Endpoint not found: groq:${LLAMA}`);
  });

  it("skips a disabled endpoint when another can serve", async () => {
    const body = { upstreamModel: "llama-3.3-70b-versatile", promptPrice: "0.59", completionPrice: "0.79", contextLength: 131072, enabled: false };
    await dataOf(await admin(`/models/${LLAMA}/endpoints/groq`, "PUT", body));
    expect((await endpointsOf(LLAMA)).map((e) => e.provider_name)).toEqual(["Together"]);
    expect((await chat(key, { model: LLAMA, messages: hi })).status).toBe(200);
    expect(routed()).toEqual([["together.upstream.test", "meta-llama/Llama-3.3-70B-Instruct-Turbo"]]);
  });

  it("answers 503 naming the reason when the only endpoint is disabled, and lists the model again once re-enabled", async () => {
    const model = "mistralai/mistral-large";
    await dataOf(await admin(`/models/${model}/endpoints/mistral`, "PUT", endpointBody({ enabled: false })));

    const error = await expectError(await chat(key, { model, messages: hi }), 503);
    expect(error.message).toBe(`No endpoint can serve ${model}: status=disabled removed 1 endpoint (mistral)`);
    expect(error.metadata?.excluded).toEqual([{ model, provider: "mistral", constraint: "status=disabled", reason: "endpoint disabled" }]);
    expect(upstream.hits).toEqual([]);
    expect((await listedModels()).map((m) => m.id)).not.toContain(model);
    expect(await endpointsOf(model)).toEqual([]);

    await dataOf(await admin(`/models/${model}/endpoints/mistral`, "PUT", endpointBody({ enabled: true })));
    expect((await listedModels()).map((m) => m.id)).toContain(model);
    expect((await chat(key, { model, messages: hi })).status).toBe(200);
    expect(routed()).toEqual([["mistral.upstream.test", "mistral-large-latest"]]);
  });
});

describe("malformed admin bodies", () => {
  const cases: Array<[string, string, string, unknown, string]> = [
    // [description, method, path, body, field the 400 must name]
    ["provider name empty", "PUT", "/providers/acme", { name: "", family: "openai", envPrefix: "ACME" }, "name"],
    ["provider family unknown", "PUT", "/providers/acme", { name: "Acme", family: "cohere", envPrefix: "ACME" }, "family"],
    ["provider envPrefix lowercase", "PUT", "/providers/acme", { name: "Acme", family: "openai", envPrefix: "acme" }, "envPrefix"],
    ["provider baseUrl not http", "PUT", "/providers/acme", { name: "Acme", family: "openai", envPrefix: "ACME", baseUrl: "ftp://x" }, "baseUrl"],
    ["provider region unknown", "PUT", "/providers/acme", { name: "Acme", family: "openai", envPrefix: "ACME", region: "mars" }, "region"],
    ["provider options.auth unknown", "PUT", "/providers/acme", { name: "Acme", family: "openai", envPrefix: "ACME", options: { auth: "basic" } }, "options.auth"],
    ["provider retainsPrompts not boolean", "PUT", "/providers/acme", { name: "Acme", family: "openai", envPrefix: "ACME", retainsPrompts: "no" }, "retainsPrompts"],
    ["provider slug with capitals", "PUT", "/providers/Acme", { name: "Acme", family: "openai", envPrefix: "ACME" }, "slug"],
    ["model contextLength zero", "PUT", "/models/acme/widget-1", { name: "W", contextLength: 0 }, "contextLength"],
    ["model name missing", "PUT", "/models/acme/widget-1", { contextLength: 1000 }, "name"],
    ["model inputModalities not an array", "PUT", "/models/acme/widget-1", { name: "W", contextLength: 1000, inputModalities: "text" }, "inputModalities"],
    ["model description too long", "PUT", "/models/acme/widget-1", { name: "W", contextLength: 1000, description: "d".repeat(4001) }, "description"],
    ["model id with a capital author", "PUT", "/models/Acme/widget-1", { name: "W", contextLength: 1000 }, "id"],
    ["endpoint promptPrice negative", "PUT", `/models/${LLAMA}/endpoints/groq`, endpointBody({ promptPrice: "-1" }), "promptPrice"],
    ["endpoint completionPrice missing", "PUT", `/models/${LLAMA}/endpoints/groq`, { upstreamModel: "x", promptPrice: "1", contextLength: 1000 }, "completionPrice"],
    ["endpoint contextLength a string", "PUT", `/models/${LLAMA}/endpoints/groq`, endpointBody({ contextLength: "big" }), "contextLength"],
    ["endpoint maxOutputTokens negative", "PUT", `/models/${LLAMA}/endpoints/groq`, endpointBody({ maxOutputTokens: -1 }), "maxOutputTokens"],
    ["endpoint region unknown", "PUT", `/models/${LLAMA}/endpoints/groq`, endpointBody({ region: "mars" }), "region"],
    ["endpoint enabled not boolean", "PUT", `/models/${LLAMA}/endpoints/groq`, endpointBody({ enabled: "no" }), "enabled"],
    ["endpoint upstreamModel empty", "PUT", `/models/${LLAMA}/endpoints/groq`, endpointBody({ upstreamModel: "" }), "upstreamModel"],
    ["workspace name empty", "PUT", `/workspaces/${WORKSPACE}`, { name: "" }, "name"],
    ["workspace default_model a number", "PUT", `/workspaces/${WORKSPACE}`, { name: "W", default_model: 5 }, "default_model"],
    ["workspace provider.sort unknown", "PUT", `/workspaces/${WORKSPACE}`, { name: "W", provider: { sort: "fastest" } }, "provider.sort"],
    ["workspace provider.only not a list", "PUT", `/workspaces/${WORKSPACE}`, { name: "W", provider: { only: "groq" } }, "provider.only"],
    ["workspace provider.max_price.prompt negative", "PUT", `/workspaces/${WORKSPACE}`, { name: "W", provider: { max_price: { prompt: -1 } } }, "provider.max_price.prompt"],
    ["key name missing", "POST", `/workspaces/${WORKSPACE}/keys`, {}, "name"],
    ["key value malformed", "POST", `/workspaces/${WORKSPACE}/keys`, { name: "k", key: "sk-sy-v1-xyz" }, "key"],
    ["key value with uppercase hex", "POST", `/workspaces/${WORKSPACE}/keys`, { name: "k", key: `sk-sy-v1-${"AB".repeat(32)}` }, "key"],
    ["key expires_at not a date", "POST", `/workspaces/${WORKSPACE}/keys`, { name: "k", expires_at: "tomorrow" }, "expires_at"],
    ["key patch disabled not boolean", "PATCH", "/keys/key_whatever", { disabled: "yes" }, "disabled"],
  ];

  for (const [description, method, path, body, fieldName] of cases) {
    it(`refuses ${description} with 400 naming \`${fieldName}\``, async () => {
      const error = await expectError(await admin(path, method, body), 400);
      expect(error.message).toMatch(new RegExp(`^Invalid request at \`${fieldName.replace(".", "\\.")}\`: `));
    });
  }

  for (const [what, path, body] of [
    ["a provider", "/providers/acme", { name: "Acme", family: "openai", envPrefix: "ACME", color: "red" }],
    ["a model", "/models/acme/widget-1", { name: "W", contextLength: 1000, color: "red" }],
    ["an endpoint", `/models/${LLAMA}/endpoints/groq`, endpointBody({ color: "red" })],
    ["a workspace", `/workspaces/${WORKSPACE}`, { name: "W", color: "red" }],
  ] as const) {
    it(`refuses an unknown field in ${what} with 400 naming it`, async () => {
      const error = await expectError(await admin(path, "PUT", body), 400);
      expect(error.message).toBe('Invalid request: Unrecognized key: "color"');
    });
  }

  it("refuses a body that is not JSON, and an empty body, with 400", async () => {
    const put = (body: string) =>
      call(`/admin/v1/workspaces/${WORKSPACE}`, {
        method: "PUT",
        headers: { authorization: "Bearer test-admin-token", "content-type": "application/json" },
        body,
      });
    expect((await expectError(await put("{name:"), 400)).message).toMatch(/^Request body is not valid JSON/);
    expect((await expectError(await put(""), 400)).message).toBe("Request body is empty; expected a JSON object");
  });

  it("leaves the catalog unchanged after refused edits", async () => {
    await expectError(await admin(`/models/${LLAMA}/endpoints/groq`, "PUT", endpointBody({ promptPrice: "-1" })), 400);
    const prices = (await endpointsOf(LLAMA)).map((e) => [e.provider_name, e.pricing.prompt]).sort();
    expect(prices).toEqual([
      ["Groq", "0.00000059"],
      ["Together", "0.00000088"],
    ]);
  });
});

describe("workspaces", () => {
  for (const id of ["bad.id", "bad id", "w".repeat(65)]) {
    it(`refuses the workspace id ${JSON.stringify(id.length > 20 ? `${id.length} characters` : id)} with 400`, async () => {
      const error = await expectError(await admin(`/workspaces/${encodeURIComponent(id)}`, "PUT", { name: "W" }), 400);
      expect(error.message).toBe("Invalid request: 1–64 letters, digits, '_' or '-'");
    });
  }

  it("uses the workspace's default model when the request names none", async () => {
    const wsKey = await provision("ws-default");
    await dataOf(await admin("/workspaces/ws-default", "PUT", { name: "Default", default_model: "mistralai/mistral-small-3.2-24b-instruct" }));
    const res = await chat(wsKey, { messages: hi });
    expect(res.status).toBe(200);
    expect(((await res.json()) as RouterCompletion).model).toBe("mistralai/mistral-small-3.2-24b-instruct");
    expect(routed()).toEqual([["mistral.upstream.test", "mistral-small-latest"]]);
  });

  it("prefers the request's model over the workspace default", async () => {
    const wsKey = await provision("ws-default-2");
    await dataOf(await admin("/workspaces/ws-default-2", "PUT", { name: "Default", default_model: "mistralai/mistral-small-3.2-24b-instruct" }));
    expect((await chat(wsKey, { model: "deepseek/deepseek-chat", messages: hi })).status).toBe(200);
    expect(routed()).toEqual([["deepseek.upstream.test", "deepseek-chat"]]);
  });

  it("applies a changed default model to the next request of a key already in use", async () => {
    const wsKey = await provision("ws-default-3");
    await dataOf(await admin("/workspaces/ws-default-3", "PUT", { name: "Default", default_model: "mistralai/mistral-small-3.2-24b-instruct" }));
    expect((await chat(wsKey, { messages: hi })).status).toBe(200);
    await dataOf(await admin("/workspaces/ws-default-3", "PUT", { name: "Default", default_model: "deepseek/deepseek-chat" }));
    upstream.hits.length = 0;
    const res = await chat(wsKey, { messages: hi });
    expect(res.status).toBe(200);
    expect(((await res.json()) as RouterCompletion).model).toBe("deepseek/deepseek-chat");
    expect(routed()).toEqual([["deepseek.upstream.test", "deepseek-chat"]]);
  });
});

describe("keys", () => {
  const FIXED = `sk-sy-v1-${"ab".repeat(32)}`;

  it("creates a fixed key once (201) and answers the same key id when it is posted again (200)", async () => {
    const first = await admin(`/workspaces/${WORKSPACE}/keys`, "POST", { name: "fixed", key: FIXED });
    expect(first.status).toBe(201);
    const created = (await first.json()) as KeyCreated;
    expect(created.key).toBe(FIXED);
    expect(created.data.workspace_id).toBe(WORKSPACE);
    const second = await admin(`/workspaces/${WORKSPACE}/keys`, "POST", { name: "fixed", key: FIXED });
    expect(second.status).toBe(200);
    const again = (await second.json()) as KeyCreated;
    expect(again.data.id).toBe(created.data.id);
    expect(again.key).toBe(FIXED);
    const keys = await dataOf<Array<{ id: string }>>(await admin(`/workspaces/${WORKSPACE}/keys`, "GET"));
    expect(keys.filter((k) => k.id === created.data.id)).toHaveLength(1);
    // The fixed key authenticates: an unknown model is a 404, not a 401.
    await expectError(await chat(FIXED, { model: "nobody/nothing", messages: hi }), 404);
  });

  it("refuses a fixed key that another workspace already holds", async () => {
    await dataOf(await admin("/workspaces/ws-other", "PUT", { name: "Other" }));
    const taken = `sk-sy-v1-${"cd".repeat(32)}`;
    expect((await admin(`/workspaces/${WORKSPACE}/keys`, "POST", { name: "mine", key: taken })).status).toBe(201);
    const error = await expectError(await admin("/workspaces/ws-other/keys", "POST", { name: "theirs", key: taken }), 400);
    expect(error.message).toBe("That key value is already in use");
    expect(await dataOf(await admin("/workspaces/ws-other/keys", "GET"))).toEqual([]);
  });

  it("answers 404 for a key in an unknown workspace", async () => {
    const error = await expectError(await admin("/workspaces/ws-missing/keys", "POST", { name: "k" }), 404);
    expect(error.message).toBe("Workspace not found: ws-missing");
  });

  it("answers 404 when patching an unknown key id", async () => {
    expect((await expectError(await admin("/keys/key_unknown", "PATCH", { disabled: true }), 404)).message).toBe("Key not found: key_unknown");
    expect((await expectError(await admin("/keys/key_unknown", "PATCH", {}), 404)).message).toBe("Key not found: key_unknown");
  });
});
