/**
 * @module app
 * The Hono app: middleware order, route mounting, and the one error handler that turns every
 * failure into OpenRouter's error shape. Every response says which region processed it
 * (`x-switchyard-region`); every authenticated route passes the workspace's residency check
 * (residency/middleware) before its handler runs.
 */
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { admin } from "./api/admin";
import { account } from "./api/account";
import { chat } from "./api/chat";
import { keys } from "./api/keys";
import { models } from "./api/models";
import { requireApiKey, requireKind } from "./auth/middleware";
import type { AppEnv } from "./context";
import { GatewayError } from "./errors";
import { REGION_HEADER, regionOfIngress, requireResidency } from "./residency/middleware";
import { stampHeaders } from "./stamp-headers";

const DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024;

/** The OpenAI-/OpenRouter-compatible API, served under both `/api/v1` and `/v1`. */
const v1 = new Hono<AppEnv>()
  .route("/", models)
  .use("/chat/*", requireApiKey, requireKind("inference"), requireResidency)
  .use("/key", requireApiKey, requireResidency)
  .use("/credits", requireApiKey, requireResidency)
  .use("/generation", requireApiKey, requireResidency)
  .use("/keys", requireApiKey, requireKind("management"), requireResidency)
  .use("/keys/*", requireApiKey, requireKind("management"), requireResidency)
  .route("/", chat)
  .route("/", account)
  .route("/", keys);

export const app = new Hono<AppEnv>()
  .use(regionOfIngress)
  .use(async (c, next) => {
    const requestId = c.req.header("x-request-id")?.slice(0, 128) || crypto.randomUUID();
    c.set("requestId", requestId);
    await next();
    stampHeaders(c, { "x-request-id": requestId });
  })
  .use(async (c, next) => {
    const max = Number(c.env.MAX_BODY_BYTES) || DEFAULT_MAX_BODY_BYTES;
    return bodyLimit({
      maxSize: max,
      onError: () => {
        throw new GatewayError("payload_too_large", `Request body is larger than ${max} bytes`);
      },
    })(c, next);
  })
  .route("/api/v1", v1)
  .route("/v1", v1)
  .route("/admin/v1", admin)
  .get("/", (c) => c.json({ name: "switchyard", docs: "/api/v1/models" }))
  .notFound((c) => new GatewayError("not_found", `No route for ${c.req.method} ${c.req.path}`).toResponse({ [REGION_HEADER]: c.get("ingress") ?? "global" }))
  .onError((error, c) => {
    const requestId = c.get("requestId") ?? "";
    const headers = { "x-request-id": requestId, [REGION_HEADER]: c.get("ingress") ?? "global" };
    if (error instanceof GatewayError) return error.toResponse(headers);
    // A bug, not the client's fault: log the detail, answer a generic 500 with the request id.
    console.error(JSON.stringify({ level: "error", requestId, error: error instanceof Error ? error.stack : String(error) }));
    return new GatewayError("internal", `Internal error (request ${requestId})`).toResponse(headers);
  });
