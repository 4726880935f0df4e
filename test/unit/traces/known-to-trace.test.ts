import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { forgetDestinations, getDestinations, knownToTrace } from "../../../src/traces/destination-store";
import { admin } from "../../helpers";

describe("knownToTrace (the request path's synchronous peek)", () => {
  it("is unknown without a fresh cache entry, then follows the workspace's enabled destinations", async () => {
    const ws = "ws-known-to-trace";
    expect((await admin(`/workspaces/${ws}`, "PUT", { name: "Peek" })).status).toBe(200);
    forgetDestinations(ws);
    expect(knownToTrace(ws)).toBeUndefined();

    await getDestinations(env, ws);
    expect(knownToTrace(ws)).toBe(false);
    // A stale entry is not knowledge.
    expect(knownToTrace(ws, Date.now() + 10 * 60_000)).toBeUndefined();

    const hook = await admin(`/workspaces/${ws}/destinations/hook`, "PUT", { type: "webhook", url: "https://hooks.sink.test/peek", signing_secret: "whsec_peek_0123456789" });
    expect(hook.status).toBe(201);
    // The admin change cleared this isolate's entry.
    expect(knownToTrace(ws)).toBeUndefined();
    await getDestinations(env, ws);
    expect(knownToTrace(ws)).toBe(true);
  });
});
