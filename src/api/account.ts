/**
 * @module api/account
 * What a key can learn about itself: `GET /key`, `GET /credits`, `GET /generation?id=`, in
 * OpenRouter's shapes (USD numbers printed from integer µ$). Each reads the workspace's own
 * region's ledger and D1 database (residency/bindings): an `eu` workspace's from the EU.
 */
import { and, eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { Hono } from "hono";
import { z } from "zod";
import { microsToUsd } from "../billing/pricing";
import type { AppEnv } from "../context";
import { generations } from "../db/schema";
import { GatewayError } from "../errors";
import { validate } from "./validate";

const generationQuery = z.object({ id: z.string().min(1).max(128) });

export const account = new Hono<AppEnv>()
  .get("/key", async (c) => {
    const { key, workspace } = c.get("auth");
    const usage = await c.get("residence").stores.ledger.getByName(workspace.id).keyUsage(key.id);
    const usd = (micros: number | undefined) => microsToUsd(micros ?? 0);
    return c.json({
      data: {
        label: key.label,
        name: key.name,
        limit: key.limitMicros === null ? null : microsToUsd(key.limitMicros),
        limit_reset: key.limitReset ?? null,
        limit_remaining: usage?.limitRemainingMicros == null ? (key.limitMicros === null ? null : microsToUsd(key.limitMicros)) : microsToUsd(usage.limitRemainingMicros),
        include_byok_in_limit: key.includeByokInLimit,
        usage: usd(usage?.usageMicros),
        usage_daily: usd(usage?.usageDailyMicros),
        usage_weekly: usd(usage?.usageWeeklyMicros),
        usage_monthly: usd(usage?.usageMonthlyMicros),
        byok_usage: usd(usage?.byokUsageMicros),
        is_free_tier: false,
        is_management_key: key.kind === "management",
        expires_at: key.expiresAt === null ? null : new Date(key.expiresAt).toISOString(),
        rate_limits: { rpm: key.rpm, tpm: key.tpm, concurrency: key.concurrency },
      },
    });
  })
  .get("/credits", async (c) => {
    const view = await c.get("residence").stores.ledger.getByName(c.get("auth").workspace.id).balance();
    return c.json({ data: { total_credits: microsToUsd(view.totalCreditsMicros), total_usage: microsToUsd(view.totalUsageMicros) } });
  })
  .get("/generation", async (c) => {
    const { id } = validate(generationQuery, c.req.query());
    const rows = await drizzle(c.get("residence").stores.db)
      .select()
      .from(generations)
      // Both columns of the primary key: one seek, and never another workspace's record.
      .where(and(eq(generations.workspaceId, c.get("auth").workspace.id), eq(generations.id, id)))
      .limit(1);
    const g = rows[0];
    if (!g) throw new GatewayError("not_found", `Generation not found: ${id}`);
    return c.json({
      data: {
        id: g.id,
        total_cost: microsToUsd(g.costMicros),
        upstream_inference_cost: microsToUsd(g.upstreamCostMicros),
        created_at: new Date(g.createdAt).toISOString(),
        model: g.model,
        provider_name: g.providerName,
        streamed: g.streamed,
        cancelled: g.cancelled,
        latency: g.latencyMs,
        moderation_latency: null,
        generation_time: g.generationTimeMs,
        time_to_first_token: g.timeToFirstTokenMs,
        finish_reason: g.finishReason,
        native_finish_reason: g.nativeFinishReason,
        tokens_prompt: g.tokensPrompt,
        tokens_completion: g.tokensCompletion,
        native_tokens_prompt: g.tokensPrompt,
        native_tokens_completion: g.tokensCompletion,
        native_tokens_cached: g.tokensCached,
        native_tokens_cache_write: g.tokensCacheWrite,
        native_tokens_reasoning: g.tokensReasoning,
        is_byok: g.isByok,
        usage: microsToUsd(g.costMicros),
        api_key_id: g.keyId,
        attempts: g.attempts,
        // Residency audit: where the request came in and where the endpoint that served it is.
        ingress_region: g.ingressRegion,
        endpoint_region: g.endpointRegion,
      },
    });
  });
