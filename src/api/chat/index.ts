/**
 * @module api/chat
 * `POST /chat/completions`: validate, plan, try endpoints, answer in OpenAI's shape (JSON or SSE).
 */
import { Hono } from "hono";
import { estimatePromptTokens, estimateTokensFromChars } from "../../billing/estimate";
import { costMicros } from "../../billing/pricing";
import { getCatalog } from "../../catalog/store";
import type { AppEnv } from "../../context";
import { GatewayError } from "../../errors";
import { adapterFor } from "../../providers/registry";
import { attemptFailure, failureError, withFailover, type AttemptRecord, type OpenedUpstream } from "../../routing/failover";
import { describeExclusions, planRoute, type Candidate, type Plan } from "../../routing/plan";
import { envLookup } from "../../routing/targets";
import { chatRequestSchema, type ChatRequest } from "../../schemas/openai";
import { readJsonBody, validate } from "../validate";
import { completionJson, newGenerationId } from "./shape";
import { streamChat } from "./stream";

function numberVar(value: string | undefined, fallback: number): number {
  const n = Number(value);
  return Number.isFinite(n) && n > 0 ? n : fallback;
}

function modelsOf(req: ChatRequest, fallbackModel: string | null): string[] {
  const ids = [...(req.model ? [req.model] : []), ...(req.models ?? [])];
  if (ids.length === 0 && fallbackModel) ids.push(fallbackModel);
  if (ids.length === 0) throw new GatewayError("bad_request", "No model given: set `model` (or `models`) in the request");
  return ids;
}

/** Why no candidate is left, in words that name the constraint. */
function noCandidateError(plan: Plan, modelIds: string[]): GatewayError {
  if (plan.unknownModels.length === modelIds.length) {
    return new GatewayError("not_found", `Model not found: ${plan.unknownModels.join(", ")}`, {
      metadata: { models: plan.unknownModels },
    });
  }
  const tools = plan.excluded.length > 0 && plan.excluded.every((e) => e.reason === "does not support tool use");
  const reasons = describeExclusions(plan.excluded);
  const message = tools
    ? `No endpoints found that support tool use for ${modelIds.join(", ")}`
    : `No endpoint can serve ${modelIds.join(", ")}: ${reasons || "no endpoints configured"}`;
  return new GatewayError(tools ? "not_found" : "no_endpoints", message, {
    metadata: { excluded: plan.excluded, unknown_models: plan.unknownModels },
  });
}

function routeHeaders(generationId: string, candidate: Candidate, attempts: readonly AttemptRecord[]): Record<string, string> {
  return {
    "x-generation-id": generationId,
    "x-switchyard-endpoint": `${candidate.endpoint.providerSlug}/${candidate.endpoint.upstreamModel}`,
    "x-switchyard-attempts": String(attempts.length + 1),
  };
}

export const chat = new Hono<AppEnv>().post("/chat/completions", async (c) => {
  const req = validate(chatRequestSchema, await readJsonBody(c.req.raw));
  const { workspace } = c.get("auth");
  const modelIds = modelsOf(req, workspace.defaultModel);
  const catalog = await getCatalog(c.env.DB);
  const plan = planRoute(catalog, modelIds, req, envLookup(c.env));
  if (plan.candidates.length === 0) throw noCandidateError(plan, modelIds);

  const attempts: AttemptRecord[] = [];
  const generation = { id: newGenerationId(), created: Math.floor(Date.now() / 1000) };
  const connectTimeoutMs = numberVar(c.env.UPSTREAM_CONNECT_TIMEOUT_MS, 15_000);
  const firstTokenTimeoutMs = numberVar(c.env.UPSTREAM_FIRST_TOKEN_TIMEOUT_MS, 60_000);

  if (req.stream) {
    return streamChat({
      req,
      candidates: plan.candidates,
      attempts,
      failover: { connectTimeoutMs },
      clientSignal: c.req.raw.signal,
      firstTokenTimeoutMs,
      keepAliveMs: numberVar(c.env.STREAM_KEEPALIVE_SECONDS, 5) * 1000,
      generation,
      headers: (candidate) => routeHeaders(generation.id, candidate, attempts),
    });
  }

  const readCompletion = async (opened: OpenedUpstream) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        opened.controller.abort();
        reject(attemptFailure("timeout", `Upstream did not finish within ${firstTokenTimeoutMs} ms`));
      }, firstTokenTimeoutMs);
    });
    try {
      const body = await Promise.race([opened.response.json<unknown>(), timeout]).catch((error: unknown) => {
        if (error instanceof GatewayError) throw error;
        throw attemptFailure("invalid_response", "Upstream returned a body that is not JSON");
      });
      return adapterFor(opened.candidate.target.family).parseResponse(body);
    } finally {
      clearTimeout(timer);
    }
  };
  const result = await withFailover(req, plan.candidates, attempts, { stream: false, connectTimeoutMs, clientSignal: c.req.raw.signal }, readCompletion);
  if (!result) throw failureError(attempts);

  const { candidate } = result.opened;
  const completion = result.value;
  const usage = completion.usage ?? {
    promptTokens: estimatePromptTokens(req),
    completionTokens: estimateTokensFromChars((completion.content?.length ?? 0) + (completion.reasoning?.length ?? 0)),
    cachedTokens: 0,
    cacheWriteTokens: 0,
    reasoningTokens: 0,
  };
  const meta = { ...generation, model: candidate.model.id, provider: candidate.endpoint.provider.name };
  return c.json(completionJson(meta, completion, usage, costMicros(usage, candidate.endpoint)), 200, {
    ...routeHeaders(generation.id, candidate, attempts),
  });
});
