/**
 * A workspace's default provider preferences: stored through the admin API, carried on the
 * authenticated request, and merged with each request's own `provider` object.
 */
import { HttpResponse } from "msw";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { admin, chat, expectError, mswServer, provision, recordUpstream, resetHealth, type RouterCompletion } from "../helpers";

const WORKSPACE = "ws-routing";
const LLAMA = "meta-llama/llama-3.3-70b-instruct";
const hi = [{ role: "user", content: "hi" }];

let key: string;
beforeAll(async () => {
  mswServer.listen({ onUnhandledRequest: "error" });
  key = await provision(WORKSPACE);
});
afterEach(() => mswServer.resetHandlers());
afterAll(() => mswServer.close());

interface WorkspaceRow {
  id: string;
  name: string;
  providerPreferences: Record<string, unknown> | null;
}

async function putWorkspace(body: Record<string, unknown>): Promise<WorkspaceRow> {
  const res = await admin(`/workspaces/${WORKSPACE}`, "PUT", { name: "Routing", ...body });
  expect(res.status, await res.clone().text()).toBe(200);
  return ((await res.json()) as { data: WorkspaceRow }).data;
}

async function getWorkspace(): Promise<WorkspaceRow> {
  const res = await admin(`/workspaces/${WORKSPACE}`, "GET");
  expect(res.status).toBe(200);
  return ((await res.json()) as { data: WorkspaceRow }).data;
}

/** Send `body` for LLAMA and return the fake provider hosts it reached. */
async function hostsFor(body: Record<string, unknown> = {}, answer?: Parameters<typeof recordUpstream>[0]): Promise<{ status: number; hosts: string[] }> {
  const upstream = recordUpstream(answer);
  mswServer.use(upstream.handler);
  const res = await chat(key, { model: LLAMA, messages: hi, ...body });
  await res.arrayBuffer();
  return { status: res.status, hosts: upstream.hits.map((h) => h.host) };
}

describe("workspace provider preferences in the admin API", () => {
  it("starts without preferences", async () => {
    expect((await getWorkspace()).providerPreferences).toBeNull();
  });

  it("stores, returns, keeps on unrelated edits, and clears with null", async () => {
    const prefs = { ignore: ["groq"], max_price: { prompt: "2" }, sort: { by: "price", partition: "none" } };
    expect((await putWorkspace({ provider: prefs })).providerPreferences).toEqual(prefs);
    expect((await getWorkspace()).providerPreferences).toEqual(prefs);

    // A PUT without `provider` leaves it as it was.
    expect((await putWorkspace({ name: "Renamed" })).providerPreferences).toEqual(prefs);

    expect((await putWorkspace({ provider: null })).providerPreferences).toBeNull();
    expect((await getWorkspace()).providerPreferences).toBeNull();
  });

  it("refuses malformed preferences with 400 naming the field, and keeps the old ones", async () => {
    await putWorkspace({ provider: { only: ["together"] } });
    const error = await expectError(await admin(`/workspaces/${WORKSPACE}`, "PUT", { name: "W", provider: { data_collection: "never" } }), 400);
    expect(error.message).toMatch(/^Invalid request at `provider\.data_collection`: /);
    expect((await getWorkspace()).providerPreferences).toEqual({ only: ["together"] });
    await putWorkspace({ provider: null });
  });
});

describe("workspace provider preferences on chat requests", () => {
  afterEach(async () => {
    await putWorkspace({ provider: null });
    // A test that fails an endpoint on purpose would make it "unstable" for the next 30 s.
    await resetHealth();
  });

  it("applies the workspace's ignore to a request that sets nothing", async () => {
    await putWorkspace({ provider: { ignore: ["groq"] } });
    for (let i = 0; i < 3; i++) expect(await hostsFor()).toEqual({ status: 200, hosts: ["together.upstream.test"] });
  });

  it("applies the workspace's only, and the next PUT takes effect at once", async () => {
    await putWorkspace({ provider: { only: ["groq"] } });
    expect(await hostsFor()).toEqual({ status: 200, hosts: ["groq.upstream.test"] });
    await putWorkspace({ provider: { only: ["together"] } });
    expect(await hostsFor()).toEqual({ status: 200, hosts: ["together.upstream.test"] });
  });

  it("never fails over outside the workspace's only", async () => {
    await putWorkspace({ provider: { only: ["groq"] } });
    const down = () => HttpResponse.json({ error: { message: "down" } }, { status: 500 });
    expect(await hostsFor({}, down)).toEqual({ status: 502, hosts: ["groq.upstream.test"] });
  });

  it("refuses with 503 naming both lists when the request's only leaves the workspace's", async () => {
    await putWorkspace({ provider: { only: ["groq"] } });
    const error = await expectError(await chat(key, { model: LLAMA, messages: hi, provider: { only: ["together"] } }), 503);
    expect(error.message).toBe(
      `No endpoint can serve ${LLAMA}: provider.only (the request's only [together] and the workspace's only [groq] share no provider) removed 2 endpoints (groq, together)`,
    );
  });

  it("adds the request's ignore to the workspace's, counting what each removed", async () => {
    await putWorkspace({ provider: { ignore: ["groq"] } });
    const error = await expectError(await chat(key, { model: LLAMA, messages: hi, provider: { ignore: ["together"] } }), 503);
    expect(error.message).toBe(`No endpoint can serve ${LLAMA}: provider.ignore removed 2 endpoints (groq, together)`);
  });

  it("keeps the workspace's data_collection=deny when the request allows it", async () => {
    await putWorkspace({ provider: { data_collection: "deny" } });
    const error = await expectError(
      await chat(key, { model: "deepseek/deepseek-chat", messages: hi, provider: { data_collection: "allow" } }),
      503,
    );
    expect(error.message).toBe("No endpoint can serve deepseek/deepseek-chat: data_collection=deny removed 1 endpoint (deepseek)");
  });

  it("orders by the workspace's sort when the request has none, and by the request's order when it has one", async () => {
    await putWorkspace({ provider: { sort: "price" } });
    // Groq is the cheaper of the two; with sort there is no random draw.
    for (let i = 0; i < 3; i++) expect((await hostsFor()).hosts).toEqual(["groq.upstream.test"]);
    expect((await hostsFor({ provider: { order: ["together"] } })).hosts).toEqual(["together.upstream.test"]);
  });

  it("answers with the catalog model id and the provider that served", async () => {
    await putWorkspace({ provider: { only: ["together"] } });
    const upstream = recordUpstream();
    mswServer.use(upstream.handler);
    const res = await chat(key, { model: `${LLAMA}:floor`, messages: hi });
    expect(res.status).toBe(200);
    const body = (await res.json()) as RouterCompletion;
    expect([body.model, body.provider]).toEqual([LLAMA, "Together"]);
  });
});
