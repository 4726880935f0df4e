/**
 * @module api/admin/health
 * A region's endpoint health as its Health object sees it, and a reset for an operator who has
 * fixed a provider (a new credential, a quota raised) and does not want to wait out a breaker's
 * cool-down. Other isolates' own recent observations are not reachable from here; they expire by
 * themselves (an outage is "recent" for 30 s, a local breaker for its cool-down).
 *
 * `?region=eu` addresses the Health object of EU workspaces (in the EU jurisdiction); the default
 * is `global`.
 */
import { Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../context";
import { forgetHealth } from "../../routing/health-client";
import { orRefuse, residentHealth } from "../../residency/bindings";
import { workspaceRegionSchema } from "../../residency/regions";
import { HEALTH_REGION, forgetStickyRoutes } from "../chat/route-plan";
import { readJsonBody, validate } from "../validate";

const resetBody = z.strictObject({
  /** A catalog endpoint id (`<model>:<provider>`); absent: every endpoint. */
  endpoint_id: z.string().min(1).max(512).optional(),
});

const regionQuery = z.object({ region: workspaceRegionSchema.default(HEALTH_REGION) });

/** The Health object of the region the query names. */
function healthOf(env: Env, query: Record<string, string>) {
  const { region } = validate(regionQuery, query);
  return { region, stub: orRefuse(region, residentHealth(env, region)).getByName(region) };
}

export const healthAdmin = new Hono<AppEnv>()
  .get("/health", async (c) => {
    const { region, stub } = healthOf(c.env, c.req.query());
    return c.json({ data: { region, ...(await stub.snapshot()) } });
  })
  .post("/health/reset", async (c) => {
    const { region, stub } = healthOf(c.env, c.req.query());
    const text = await c.req.raw.clone().text();
    const body = text.trim() ? validate(resetBody, await readJsonBody(c.req.raw)) : {};
    const breakers = await stub.reset(body.endpoint_id);
    // This isolate's view and conversation routes too (the only ones in local development).
    forgetHealth();
    forgetStickyRoutes();
    return c.json({ data: { region, endpoint_id: body.endpoint_id ?? null, breakers_removed: breakers } });
  });
