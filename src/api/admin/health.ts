/**
 * @module api/admin/health
 * The region's endpoint health as the Health object sees it, and a reset for an operator who has
 * fixed a provider (a new credential, a quota raised) and does not want to wait out a breaker's
 * cool-down. Other isolates' own recent observations are not reachable from here; they expire by
 * themselves (an outage is "recent" for 30 s, a local breaker for its cool-down).
 */
import { Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../context";
import { forgetHealth } from "../../routing/health-client";
import { HEALTH_REGION, forgetStickyRoutes } from "../chat/route-plan";
import { readJsonBody, validate } from "../validate";

const resetBody = z.strictObject({
  /** A catalog endpoint id (`<model>:<provider>`); absent: every endpoint. */
  endpoint_id: z.string().min(1).max(512).optional(),
});

export const healthAdmin = new Hono<AppEnv>()
  .get("/health", async (c) => c.json({ data: { region: HEALTH_REGION, ...(await c.env.HEALTH.getByName(HEALTH_REGION).snapshot()) } }))
  .post("/health/reset", async (c) => {
    const text = await c.req.raw.clone().text();
    const body = text.trim() ? validate(resetBody, await readJsonBody(c.req.raw)) : {};
    const breakers = await c.env.HEALTH.getByName(HEALTH_REGION).reset(body.endpoint_id);
    // This isolate's view and conversation routes too (the only ones in local development).
    forgetHealth();
    forgetStickyRoutes();
    return c.json({ data: { region: HEALTH_REGION, endpoint_id: body.endpoint_id ?? null, breakers_removed: breakers } });
  });
