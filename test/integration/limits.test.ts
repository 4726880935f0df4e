/**
 * Request limits and plumbing every route shares: the body size cap, unknown routes, and the
 * request id on responses.
 */
import { exports } from "cloudflare:workers";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { call, chat, expectError, mswServer, okStream, ORIGIN, provision, readSSE, recordUpstream } from "../helpers";

/** MAX_BODY_BYTES in wrangler.toml. */
const MAX_BODY_BYTES = 4_194_304;
const PATH = "/api/v1/chat/completions";

let key: string;
const upstream = recordUpstream();

beforeAll(async () => {
  mswServer.listen({ onUnhandledRequest: "error" });
  mswServer.use(upstream.handler);
  key = await provision("ws-limits");
});
afterAll(() => mswServer.close());

/** `size` bytes of ASCII that is not JSON, so a body under the cap ends in a 400, not upstream. */
function bytes(size: number): Uint8Array {
  return new Uint8Array(size).fill(0x78);
}

/** A body as a stream of 64 KiB chunks: the request carries no content-length. */
function streamOf(data: Uint8Array): ReadableStream<Uint8Array> {
  let offset = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (offset >= data.length) {
        controller.close();
        return;
      }
      controller.enqueue(data.slice(offset, offset + 65_536));
      offset += 65_536;
    },
  });
}

function postSized(body: Uint8Array): Promise<Response> {
  return call(PATH, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json", "content-length": String(body.length) },
    body,
  });
}

/** A streamed body: the request has no content-length, so the limit must count bytes as they arrive. */
function postStreamed(body: Uint8Array): Promise<Response> {
  const request = new Request(`${ORIGIN}${PATH}`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: streamOf(body),
  });
  expect(request.headers.has("content-length")).toBe(false);
  return exports.default.fetch(request);
}

describe("body size limit", () => {
  afterEach(() => {
    // Nothing here may reach a provider.
    expect(upstream.hits).toEqual([]);
  });

  it("refuses a body one byte over MAX_BODY_BYTES with 413 when content-length says so", async () => {
    const error = await expectError(await postSized(bytes(MAX_BODY_BYTES + 1)), 413);
    expect(error.message).toBe(`Request body is larger than ${MAX_BODY_BYTES} bytes`);
  });

  it("reads a body of exactly MAX_BODY_BYTES (then refuses it as not JSON, 400)", async () => {
    const error = await expectError(await postSized(bytes(MAX_BODY_BYTES)), 400);
    expect(error.message).toMatch(/^Request body is not valid JSON/);
  });

  it("refuses a streamed body without content-length once it passes MAX_BODY_BYTES", async () => {
    const error = await expectError(await postStreamed(bytes(MAX_BODY_BYTES + 1)), 413);
    expect(error.message).toBe(`Request body is larger than ${MAX_BODY_BYTES} bytes`);
  });

  it("reads a streamed body of exactly MAX_BODY_BYTES", async () => {
    const error = await expectError(await postStreamed(bytes(MAX_BODY_BYTES)), 400);
    expect(error.message).toMatch(/^Request body is not valid JSON/);
  });

  it("refuses an oversized body before authentication", async () => {
    const body = bytes(MAX_BODY_BYTES + 1);
    const res = await call(PATH, { method: "POST", headers: { "content-length": String(body.length) }, body });
    await expectError(res, 413);
  });

  it("refuses an oversized admin body with 413", async () => {
    const body = bytes(MAX_BODY_BYTES + 1);
    const res = await call("/admin/v1/workspaces/ws-limits", {
      method: "PUT",
      headers: { authorization: "Bearer test-admin-token", "content-type": "application/json", "content-length": String(body.length) },
      body,
    });
    await expectError(res, 413);
  });

});

describe("unknown routes", () => {
  for (const [method, path] of [
    ["GET", "/nope"],
    ["GET", "/api/v1/nope"],
    ["POST", "/v1/completions/nope"],
    ["GET", "/admin/v1/nope"],
    ["DELETE", "/api/v1/models"],
  ] as const) {
    it(`answers ${method} ${path} with a 404 JSON error naming the route`, async () => {
      const headers: Record<string, string> = path.startsWith("/admin/") ? { authorization: "Bearer test-admin-token" } : {};
      const error = await expectError(await call(path, { method, headers }), 404);
      expect(error.message).toBe(`No route for ${method} ${path}`);
    });
  }
});

describe("request id", () => {
  const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

  it("echoes the client's x-request-id on a success", async () => {
    const res = await call("/api/v1/models", { headers: { "x-request-id": "client-req-42" } });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-request-id")).toBe("client-req-42");
  });

  it("echoes the client's x-request-id on errors (400, 401, 404, 413)", async () => {
    const headers = { "x-request-id": "client-req-err", authorization: `Bearer ${key}`, "content-type": "application/json" };
    const bad = await call(PATH, { method: "POST", headers, body: "{" });
    expect(bad.status).toBe(400);
    expect(bad.headers.get("x-request-id")).toBe("client-req-err");
    const unauthorized = await call(PATH, { method: "POST", headers: { "x-request-id": "client-req-401" }, body: "{}" });
    expect(unauthorized.status).toBe(401);
    expect(unauthorized.headers.get("x-request-id")).toBe("client-req-401");
    const missing = await call("/nope", { headers: { "x-request-id": "client-req-404" } });
    expect(missing.status).toBe(404);
    expect(missing.headers.get("x-request-id")).toBe("client-req-404");
    const body = bytes(MAX_BODY_BYTES + 1);
    const tooLarge = await call(PATH, {
      method: "POST",
      headers: { ...headers, "x-request-id": "client-req-413", "content-length": String(body.length) },
      body,
    });
    expect(tooLarge.status).toBe(413);
    expect(tooLarge.headers.get("x-request-id")).toBe("client-req-413");
  });

  it("echoes the client's x-request-id on chat completions, JSON and streamed", async () => {
    const streamed = recordUpstream(okStream);
    const ask = { model: "mistralai/mistral-large", messages: [{ role: "user", content: "hi" }] };
    const json = await chat(key, ask, { headers: { authorization: `Bearer ${key}`, "content-type": "application/json", "x-request-id": "chat-json" } });
    expect(json.status).toBe(200);
    expect(json.headers.get("x-request-id")).toBe("chat-json");
    expect(json.headers.get("x-switchyard-region")).toBe("global");
    mswServer.use(streamed.handler);
    const sse = await chat(key, { ...ask, stream: true }, { headers: { authorization: `Bearer ${key}`, "content-type": "application/json", "x-request-id": "chat-sse" } });
    expect(sse.status).toBe(200);
    expect(sse.headers.get("x-request-id")).toBe("chat-sse");
    expect(sse.headers.get("x-switchyard-region")).toBe("global");
    expect(sse.headers.get("content-type")).toMatch(/^text\/event-stream/);
    expect((await readSSE(sse)).done).toBe(true);
    expect(streamed.hits).toHaveLength(1);
    mswServer.resetHandlers(upstream.handler);
  });

  it("stamps a response whose headers are immutable through a copy, keeping its status and headers", async () => {
    const { Hono } = await import("hono");
    const { stampHeaders } = await import("../../src/stamp-headers");
    // A redirect's headers are immutable, as a fetched response's are.
    const fetched = Response.redirect("https://elsewhere.test/", 302);
    expect(() => fetched.headers.set("x-probe", "1")).toThrow(TypeError);
    const app = new Hono()
      .use(async (c, next) => {
        await next();
        stampHeaders(c, { "x-request-id": "stamped", "x-switchyard-region": "eu" });
      })
      .get("/", () => fetched);
    const res = await app.request("/");
    expect(res.status).toBe(302);
    expect(res.headers.get("location")).toBe("https://elsewhere.test/");
    expect(res.headers.get("x-request-id")).toBe("stamped");
    expect(res.headers.get("x-switchyard-region")).toBe("eu");
  });

  it("generates a fresh UUID per request when the client sends none", async () => {
    const [a, b] = await Promise.all([call("/api/v1/models"), call("/nope")]);
    const idA = a.headers.get("x-request-id") ?? "";
    const idB = b.headers.get("x-request-id") ?? "";
    expect(idA).toMatch(UUID);
    expect(idB).toMatch(UUID);
    expect(idA).not.toBe(idB);
  });

  it("keeps at most 128 characters of a client's request id", async () => {
    const long = "r".repeat(300);
    const res = await call("/api/v1/models", { headers: { "x-request-id": long } });
    expect(res.headers.get("x-request-id")).toBe("r".repeat(128));
  });
});
