/**
 * @module api/chat/route-plan
 * One request's route: the catalog, the workspace's keys, preferences and region policy, the
 * region's endpoint health and the conversation's sticky endpoint, turned into a plan
 * (routing/plan). Every input comes from an isolate cache when warm, so planning costs no D1 read
 * and no Durable Object call; a stale health snapshot is refreshed in the background.
 *
 * An `eu` workspace's plan holds only EU endpoints (residency/endpoint-filter), and its health is
 * the `eu` Health object in the EU jurisdiction (residency/bindings).
 */
import type { Context } from "hono";
import { getByokKeys } from "../../auth/byok-store";
import { getCatalog } from "../../catalog/store";
import type { AppEnv } from "../../context";
import { GatewayError } from "../../errors";
import { describeExclusions, explainPlan, onlyToolsExcluded, type ExplainedPlan } from "../../routing/explain";
import type { HealthHooks } from "../../routing/failover";
import { claimProbe, healthSnapshot, reportOutcome, type WaitUntil } from "../../routing/health-client";
import { planRoute, type Candidate, type Plan } from "../../routing/plan";
import { conversationKey, hash53, seededRandom, StickyRoutes } from "../../routing/sticky";
import { modelsOutsideRegion } from "../../residency/endpoint-filter";
import type { WorkspaceRegion } from "../../residency/regions";
import { envLookup } from "../../routing/targets";
import type { ChatRequest } from "../../schemas/openai";

/**
 * The Health object of `global` workspaces. A workspace's requests read and report to the Health
 * object named by its region policy: `global`, or `eu` (in the EU jurisdiction) for `eu`
 * workspaces, whose plans only hold EU endpoints.
 */
export const HEALTH_REGION = "global";

const stickyRoutes = new StickyRoutes();

export interface RoutedRequest {
  plan: Plan;
  modelIds: string[];
  /** The conversation's key (routing/sticky), when it has one. */
  conversation: string | null;
  health: HealthHooks;
}

function modelsOf(req: ChatRequest, fallbackModel: string | null): string[] {
  const ids = [...(req.model ? [req.model] : []), ...(req.models ?? [])];
  if (ids.length === 0 && fallbackModel) ids.push(fallbackModel);
  if (ids.length === 0) throw new GatewayError("bad_request", "No model given: set `model` (or `models`) in the request");
  return ids;
}

/** Plan `req` for the authenticated workspace. Never waits on a Durable Object. */
export async function routeRequest(c: Context<AppEnv>, req: ChatRequest, waitUntil: WaitUntil): Promise<RoutedRequest> {
  const auth = c.get("auth");
  const { policy, stores } = c.get("residence");
  const healthEnv = { HEALTH: stores.health };
  const region = policy.region;
  const modelIds = modelsOf(req, auth.workspace.defaultModel);
  const [catalog, byok] = await Promise.all([getCatalog(c.env.DB), getByokKeys(c.env, auth.workspace.id)]);
  const now = Date.now();
  const conversation = conversationKey(auth.workspace.id, req, c.req.header("x-session-id"));
  const plan = planRoute(catalog, modelIds, req, envLookup(c.env), {
    region,
    workspacePreferences: auth.workspace.providerPreferences,
    byok,
    health: healthSnapshot(healthEnv, region, waitUntil, now),
    now,
    random: conversation ? seededRandom(hash53(conversation)) : Math.random,
    stickyEndpointId: conversation ? stickyRoutes.get(conversation, now) : null,
  });
  const health: HealthHooks = {
    claimProbe: (endpointId) => claimProbe(healthEnv, region, endpointId),
    report: (outcome) => reportOutcome(healthEnv, region, outcome, waitUntil),
  };
  return { plan, modelIds, conversation, health };
}

/** The endpoint that served the conversation's turn: its next turn goes there first. */
export function rememberRoute(routed: RoutedRequest, candidate: Candidate): void {
  if (routed.conversation) stickyRoutes.set(routed.conversation, candidate.endpoint.id, Date.now());
}

/** Forget every conversation's endpoint (tests). */
export function forgetStickyRoutes(): void {
  stickyRoutes.clear();
}

/**
 * Why no candidate is left, in words that name each constraint and count what it removed. When
 * the workspace's region alone left the named models without an endpoint, a 403
 * `region_restricted` that names them: the request is never served elsewhere instead.
 */
export function noCandidateError(plan: Plan, modelIds: string[], region: WorkspaceRegion = "global"): GatewayError {
  if (plan.unknownModels.length === new Set(modelIds).size) {
    return new GatewayError("not_found", `Model not found: ${plan.unknownModels.join(", ")}`, {
      metadata: { models: plan.unknownModels },
    });
  }
  const outside = region === "global" ? [] : modelsOutsideRegion(plan, region);
  if (outside.length > 0 && outside.length === new Set(plan.excluded.map((e) => e.model)).size) {
    const unknown = plan.unknownModels.length ? ` (not found: ${plan.unknownModels.join(", ")})` : "";
    return new GatewayError(
      "forbidden",
      `This workspace is pinned to region ${region}, and no ${region.toUpperCase()} endpoint serves ${outside.join(", ")}${unknown}. Requests are never rerouted outside the region: name a model that has an ${region.toUpperCase()} endpoint (GET /api/v1/models with this key lists them).`,
      { metadata: { reason: "region_restricted", workspace_region: region, models: outside, unknown_models: plan.unknownModels } },
    );
  }
  const tools = onlyToolsExcluded(plan.excluded);
  const reasons = describeExclusions(plan.excluded);
  const message = tools
    ? `No endpoints found that support tool use for ${modelIds.join(", ")}`
    : `No endpoint can serve ${modelIds.join(", ")}: ${reasons || "no endpoints configured"}`;
  return new GatewayError(tools ? "not_found" : "no_endpoints", message, {
    metadata: { excluded: plan.excluded, unknown_models: plan.unknownModels },
  });
}

/** Header values are bytes: JSON with everything past ASCII escaped. */
function asciiJson(value: unknown): string {
  return JSON.stringify(value).replace(/[\u007f-\uffff]/g, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/** Largest `x-switchyard-route` header sent; a longer plan is cut (the dry-run route has it all). */
const MAX_ROUTE_HEADER = 6 * 1024;

/**
 * `x-switchyard-route` for a request that asked (`X-Switchyard-Explain: 1`): the candidates in
 * order with why each sits where it does, as compact JSON.
 */
export function routeHeader(explained: ExplainedPlan): string {
  const rows = explained.candidates.map((c) => [c.position, c.provider, c.model, c.reasons]);
  let header = asciiJson(rows);
  while (header.length > MAX_ROUTE_HEADER && rows.length > 1) {
    rows.pop();
    header = asciiJson([...rows, ["…truncated"]]);
  }
  return header;
}

export { explainPlan };
