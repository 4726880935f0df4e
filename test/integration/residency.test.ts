/**
 * EU residency through the Worker: regions of ingress and their headers, the ingress rule, EU-only
 * routing and its errors, generation records and `GET /generation` in DB_EU, the model listings
 * an EU workspace sees, and the admin API's region settings and residency report.
 */
import { env, exports } from "cloudflare:workers";
import { http } from "msw";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  admin,
  call,
  chat,
  chatAt,
  EU_ORIGIN,
  eventually,
  expectError,
  mswServer,
  ORIGIN,
  provision,
  provisionEu,
  readSSE,
  recordUpstream,
  resetHealth,
  sseBody,
  sseResponse,
  type RouterCompletion,
} from "../helpers";

const EU_WS = "ws-eu";
const EU_OPEN_WS = "ws-eu-open";
const GLOBAL_WS = "ws-global";
const HI = [{ role: "user", content: "hi" }];

let euKey: string;
let euOpenKey: string;
let globalKey: string;

beforeAll(async () => {
  mswServer.listen({ onUnhandledRequest: "error" });
  euKey = await provisionEu(EU_WS, "100");
  euOpenKey = await provisionEu(EU_OPEN_WS, "100", { allow_non_eu_ingress: true });
  globalKey = await provision(GLOBAL_WS, "100", { sort: "price" });
});
afterEach(async () => {
  mswServer.resetHandlers();
  await resetHealth();
});
afterAll(() => mswServer.close());

function get(origin: string, path: string, key?: string): Promise<Response> {
  return exports.default.fetch(new Request(`${origin}${path}`, key ? { headers: { authorization: `Bearer ${key}` } } : {}));
}

/** Upstream hosts answer healthily; the hosts hit are recorded. */
function upstream() {
  const recorded = recordUpstream();
  mswServer.use(recorded.handler);
  return recorded;
}

async function generationRow(db: D1Database, id: string) {
  return db.prepare("SELECT id, ingress_region, endpoint_region, excluded_count, route FROM generations WHERE id = ?").bind(id).first<{
    id: string;
    ingress_region: string;
    endpoint_region: string;
    excluded_count: number;
    route: string;
  }>();
}

describe("regions of ingress", () => {
  it("say which region processed every response, errors included", async () => {
    expect((await get(EU_ORIGIN, "/")).headers.get("x-switchyard-region")).toBe("eu");
    expect((await get(ORIGIN, "/")).headers.get("x-switchyard-region")).toBe("global");
    const unauthorized = await get(EU_ORIGIN, "/api/v1/key");
    expect(unauthorized.headers.get("x-switchyard-region")).toBe("eu");
    await expectError(unauthorized, 401);
    const missing = await get(EU_ORIGIN, "/nowhere");
    expect(missing.headers.get("x-switchyard-region")).toBe("eu");
    await expectError(missing, 404);
  });

  it("name the provider endpoint's region on a served request", async () => {
    upstream();
    const res = await chat(globalKey, { model: "openai/gpt-4o-mini", messages: HI });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-switchyard-region")).toBe("global");
    expect(res.headers.get("x-switchyard-endpoint")).toMatch(/^openai\//);
    expect(res.headers.get("x-switchyard-endpoint-region")).toBe("us");
  });
});

describe("an EU workspace's ingress", () => {
  it("is refused on a non-EU hostname with 403 region_restricted, before anything is called", async () => {
    const up = upstream();
    for (const res of [await chat(euKey, { model: "openai/gpt-4o-mini", messages: HI }), await call("/api/v1/credits", { headers: { authorization: `Bearer ${euKey}` } })]) {
      expect(res.headers.get("x-switchyard-region")).toBe("global");
      const error = await expectError(res, 403);
      expect(error.message).toMatch(/pinned to the EU/);
      expect(error.metadata).toEqual({ reason: "region_restricted", workspace_region: "eu", ingress_region: "global", hostname: "gateway.test" });
    }
    expect(up.hits).toEqual([]);
  });

  it("is allowed when the workspace says so, and its routing stays EU-only", async () => {
    const up = upstream();
    const res = await chat(euOpenKey, { model: "openai/gpt-4o-mini", messages: HI });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-switchyard-region")).toBe("global");
    expect(res.headers.get("x-switchyard-endpoint-region")).toBe("eu");
    expect(up.hits.map((h) => h.host)).toEqual([expect.stringMatching(/^(azure-openai-eu|openai-eu)\.upstream\.test$/)]);
  });
});

describe("an EU workspace's requests", () => {
  it("are served by an EU endpoint and recorded in DB_EU with the route decision; GET /generation reads it there", async () => {
    const up = upstream();
    const res = await chatAt(EU_ORIGIN, euKey, { model: "openai/gpt-4o-mini", messages: HI });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-switchyard-region")).toBe("eu");
    expect(res.headers.get("x-switchyard-endpoint-region")).toBe("eu");
    const body = (await res.json()) as RouterCompletion;
    expect(up.hits.every((h) => /^(azure-openai-eu|openai-eu)\./.test(h.host))).toBe(true);

    const row = await eventually(async () => (await generationRow(env.DB_EU, body.id)) ?? undefined);
    expect(await generationRow(env.DB, body.id)).toBeNull();
    expect(row).toMatchObject({ ingress_region: "eu", endpoint_region: "eu", excluded_count: 2 });
    const route = JSON.parse(row.route) as { ingress: string; policy: string; candidates: Array<[string, string]>; excluded: Array<[string, string, string, string]> };
    expect(route.ingress).toBe("eu");
    expect(route.policy).toBe("eu");
    expect(route.candidates.map(([, region]) => region)).toEqual(["eu", "eu"]);
    expect(route.excluded.map(([, provider, constraint]) => [provider, constraint])).toEqual([
      ["openai", "region=eu"],
      ["openrouter", "region=eu"],
    ]);

    const generation = await get(EU_ORIGIN, `/api/v1/generation?id=${body.id}`, euKey);
    expect(generation.status).toBe(200);
    const { data } = (await generation.json()) as { data: { id: string; ingress_region: string; endpoint_region: string } };
    expect(data).toMatchObject({ id: body.id, ingress_region: "eu", endpoint_region: "eu" });
  });

  it("stream from an EU endpoint with the same headers", async () => {
    mswServer.use(
      http.post(/^https:\/\/mistral\.upstream\.test\//, () =>
        sseResponse(
          sseBody([
            { choices: [{ index: 0, delta: { role: "assistant", content: "bonjour" } }] },
            { choices: [{ index: 0, delta: {}, finish_reason: "stop" }] },
            { choices: [], usage: { prompt_tokens: 5, completion_tokens: 1, total_tokens: 6 } },
            "[DONE]",
          ]),
        ),
      ),
    );
    const res = await chatAt(EU_ORIGIN, euKey, { model: "mistralai/mistral-small-3.2-24b-instruct", messages: HI, stream: true });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-switchyard-endpoint-region")).toBe("eu");
    const { chunks, done } = await readSSE(res);
    expect(done).toBe(true);
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? "").join("")).toBe("bonjour");
  });

  it("naming only models without EU endpoints are refused with a clear 403 naming them, and nothing is called", async () => {
    const up = upstream();
    const res = await chatAt(EU_ORIGIN, euKey, { model: "x-ai/grok-4", models: ["deepseek/deepseek-chat", "meta-llama/llama-3.3-70b-instruct"], messages: HI });
    const error = await expectError(res, 403);
    expect(error.message).toBe(
      "This workspace is pinned to region eu, and no EU endpoint serves x-ai/grok-4, deepseek/deepseek-chat, meta-llama/llama-3.3-70b-instruct. Requests are never rerouted outside the region: name a model that has an EU endpoint (GET /api/v1/models with this key lists them).",
    );
    expect(error.metadata).toEqual({
      reason: "region_restricted",
      workspace_region: "eu",
      models: ["x-ai/grok-4", "deepseek/deepseek-chat", "meta-llama/llama-3.3-70b-instruct"],
      unknown_models: [],
    });
    expect(up.hits).toEqual([]);
  });

  it("fall back along the models list to a model with an EU endpoint, never to a non-EU one", async () => {
    const up = upstream();
    const res = await chatAt(EU_ORIGIN, euKey, { model: "x-ai/grok-4", models: ["mistralai/mistral-small-3.2-24b-instruct"], messages: HI });
    expect(res.status).toBe(200);
    expect(((await res.json()) as RouterCompletion).model).toBe("mistralai/mistral-small-3.2-24b-instruct");
    expect(up.hits.map((h) => h.host)).toEqual(["mistral.upstream.test"]);
  });

  it("cannot loosen the rule with provider preferences: the error names it", async () => {
    const up = upstream();
    const res = await chatAt(EU_ORIGIN, euKey, { model: "openai/gpt-4o-mini", messages: HI, provider: { only: ["openai"], order: ["openai"] } });
    const error = await expectError(res, 503);
    expect(error.message).toBe(
      "No endpoint can serve openai/gpt-4o-mini: region=eu removed 2 endpoints (openai, openrouter); provider.only removed 2 endpoints (openai-eu, azure-eu)",
    );
    expect(up.hits).toEqual([]);
  });

  it("stay EU-only with a BYOK key for a non-EU provider", async () => {
    const stored = await admin(`/workspaces/${EU_WS}/byok/openai`, "PUT", { api_key: "sk-own-openai-key" });
    expect(stored.status).toBe(200);
    try {
      const up = upstream();
      const res = await chatAt(EU_ORIGIN, euKey, { model: "openai/gpt-4o-mini", messages: HI });
      expect(res.status).toBe(200);
      expect(up.hits.map((h) => h.host)).toEqual([expect.stringMatching(/^(azure-openai-eu|openai-eu)\.upstream\.test$/)]);
    } finally {
      await admin(`/workspaces/${EU_WS}/byok/openai`, "DELETE");
    }
  });

  it("explain their route in a dry run, with the residency that shaped it", async () => {
    const res = await call("/api/v1/chat/completions/dry-run", {
      method: "POST",
      headers: { authorization: `Bearer ${euOpenKey}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "google/gemini-2.5-flash", messages: HI }),
    });
    const { data } = (await res.json()) as { data: { residency: unknown; candidates: Array<{ provider: string }>; excluded: Array<{ provider: string; constraint: string }> } };
    expect(data.residency).toEqual({ workspace_region: "eu", ingress_region: "global" });
    expect(data.candidates.map((c) => c.provider)).toEqual(["google-vertex-eu"]);
    expect(data.excluded).toEqual([expect.objectContaining({ provider: "google-ai-studio", constraint: "region=eu" })]);
  });
});

describe("a global workspace", () => {
  it("is unaffected: any endpoint, records in DB with its region of ingress", async () => {
    upstream();
    const res = await chat(globalKey, { model: "openai/gpt-4o-mini", messages: HI });
    expect(res.status).toBe(200);
    const { id } = (await res.json()) as RouterCompletion;
    const row = await eventually(async () => (await generationRow(env.DB, id)) ?? undefined);
    expect(row).toMatchObject({ ingress_region: "global", endpoint_region: "us", excluded_count: 0 });
    expect(await generationRow(env.DB_EU, id)).toBeNull();
  });

  it("may use the EU hostname: the response says so, its routing is its own", async () => {
    upstream();
    const res = await chatAt(EU_ORIGIN, globalKey, { model: "openai/gpt-4o-mini", messages: HI, provider: { only: ["openai"] } });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-switchyard-region")).toBe("eu");
    expect(res.headers.get("x-switchyard-endpoint-region")).toBe("us");
  });
});

describe("model listings", () => {
  type Listing = { data: Array<{ id: string; pricing: { prompt: string } }> };
  const ids = async (res: Response) => ((await res.json()) as Listing).data.map((m) => m.id);
  const EU_MODELS = [
    "anthropic/claude-haiku-4.5",
    "anthropic/claude-sonnet-4.5",
    "google/gemini-2.5-flash",
    "google/gemini-2.5-pro",
    "mistralai/mistral-large",
    "mistralai/mistral-medium-3",
    "mistralai/mistral-small-3.2-24b-instruct",
    "openai/gpt-4.1",
    "openai/gpt-4.1-mini",
    "openai/gpt-4o",
    "openai/gpt-4o-mini",
    "openai/gpt-5-mini",
  ];

  it("on the EU hostname, or with an EU workspace's key, list only what an EU workspace can use", async () => {
    expect(await ids(await get(EU_ORIGIN, "/api/v1/models"))).toEqual(EU_MODELS);
    expect(await ids(await get(ORIGIN, "/api/v1/models", euKey))).toEqual(EU_MODELS);
    expect(await ids(await get(ORIGIN, "/v1/models", euOpenKey))).toEqual(EU_MODELS);
  });

  it("price an EU listing from its EU endpoints", async () => {
    const listing = (await (await get(EU_ORIGIN, "/api/v1/models")).json()) as Listing;
    // GPT-4o-mini: 0.165 USD per million tokens in the EU, 0.15 elsewhere.
    expect(listing.data.find((m) => m.id === "openai/gpt-4o-mini")?.pricing.prompt).toBe("0.000000165");
  });

  it("otherwise list everything, also for a key that would be refused", async () => {
    const all = await ids(await get(ORIGIN, "/api/v1/models"));
    expect(all.length).toBeGreaterThan(EU_MODELS.length);
    expect(all).toContain("x-ai/grok-4");
    expect(await ids(await get(ORIGIN, "/api/v1/models", globalKey))).toEqual(all);
    expect(await ids(await get(ORIGIN, "/api/v1/models", "sk-sy-v1-" + "0".repeat(64)))).toEqual(all);
  });

  it("show an EU workspace only a model's EU endpoints, and 404 for a model without one", async () => {
    const res = await get(EU_ORIGIN, "/api/v1/models/openai/gpt-4o-mini/endpoints");
    const { data } = (await res.json()) as { data: { endpoints: Array<{ tag: string; region: string }> } };
    expect(data.endpoints.map((e) => [e.tag, e.region])).toEqual([
      ["openai-eu", "eu"],
      ["azure-eu", "eu"],
    ]);
    const grok = await get(ORIGIN, "/api/v1/models/x-ai/grok-4/endpoints", euKey);
    const error = await expectError(grok, 404);
    expect(error.metadata).toEqual({ reason: "region_restricted", region: "eu" });
  });
});

describe("admin: region settings and the residency report", () => {
  it("shows and validates a workspace's region settings", async () => {
    const shown = await admin(`/workspaces/${EU_OPEN_WS}`, "GET");
    const { data } = (await shown.json()) as { data: { region: string; allowNonEuIngress: boolean } };
    expect(data).toMatchObject({ region: "eu", allowNonEuIngress: true });
    await expectError(await admin("/workspaces/ws-bad-region", "PUT", { name: "x", region: "us" }), 400);
    await expectError(await admin("/workspaces/ws-bad-region", "PUT", { name: "x", allow_non_eu_ingress: "yes" }), 400);
  });

  it("refuses to move a workspace whose ledger holds credits, and moves one that holds none", async () => {
    const error = await expectError(await admin(`/workspaces/${GLOBAL_WS}`, "PUT", { name: "Test", region: "eu" }), 400);
    expect(error.metadata).toEqual({ reason: "region_change_refused", region: "global" });
    expect((await admin("/workspaces/ws-empty", "PUT", { name: "Empty" })).status).toBe(200);
    const moved = await admin("/workspaces/ws-empty", "PUT", { name: "Empty", region: "eu" });
    expect(((await moved.json()) as { data: { region: string } }).data.region).toBe("eu");
  });

  it("exports a workspace's residency report for a time range from its region's D1", async () => {
    upstream();
    const served: string[] = [];
    for (const model of ["openai/gpt-4o-mini", "mistralai/mistral-large"]) {
      const res = await chatAt(EU_ORIGIN, euKey, { model, messages: HI });
      expect(res.status).toBe(200);
      served.push(((await res.json()) as RouterCompletion).id);
    }
    type Report = {
      data: {
        region: string;
        database: string;
        generations: number;
        totals: { by_endpoint_region: Record<string, number>; by_ingress_region: Record<string, number> };
        rows: Array<{ generation_id: string; created_at: string; ingress_region: string; endpoint: string; endpoint_region: string; excluded: number }>;
        truncated: boolean;
      };
    };
    const report = await eventually(async () => {
      const res = await admin(`/workspaces/${EU_WS}/residency`, "GET");
      const body = (await res.json()) as Report;
      return served.every((id) => body.data.rows.some((r) => r.generation_id === id)) ? body.data : undefined;
    });
    expect(report.region).toBe("eu");
    expect(report.database).toBe("DB_EU");
    expect(Object.keys(report.totals.by_endpoint_region)).toEqual(["eu"]);
    expect(report.totals.by_endpoint_region.eu).toBe(report.generations);
    expect(report.rows.every((r) => r.endpoint_region === "eu")).toBe(true);
    const last = report.rows.find((r) => r.generation_id === served[1]);
    expect(last).toMatchObject({ ingress_region: "eu", endpoint: "mistral:mistralai/mistral-large", endpoint_region: "eu", excluded: 0 });

    const future = await admin(`/workspaces/${EU_WS}/residency?from=2099-01-01&to=2099-02-01T00:00:00Z`, "GET");
    expect(((await future.json()) as Report).data).toMatchObject({ generations: 0, rows: [], truncated: false });
    const limited = (await (await admin(`/workspaces/${EU_WS}/residency?limit=1`, "GET")).json()) as Report;
    expect(limited.data.rows).toHaveLength(1);
    expect(limited.data.truncated).toBe(true);
    await expectError(await admin(`/workspaces/${EU_WS}/residency?from=2099-01-01&to=2098-01-01`, "GET"), 400);
    await expectError(await admin(`/workspaces/${EU_WS}/residency?from=yesterday`, "GET"), 400);
  });

  it("reads a global workspace's report from DB", async () => {
    const res = await admin(`/workspaces/${GLOBAL_WS}/residency`, "GET");
    const { data } = (await res.json()) as { data: { database: string; region: string } };
    expect(data).toMatchObject({ database: "DB", region: "global" });
  });
});
