/**
 * @module api/chat
 * `POST /chat/completions`: validate, plan, try endpoints, answer in OpenAI's shape (JSON or SSE).
 * Every resource a request touches — ledger or shard, health, generation record, trace queue —
 * comes from its workspace's residence (residency/middleware), never from the raw bindings.
 */
import { Hono } from "hono";
import { estimatePromptTokens, estimateTokensFromChars } from "../../billing/estimate";
import { admissionInput, rateLimitHeaders } from "../../billing/admission";
import { admissionTarget } from "../../billing/admission-target";
import { CappedRestart, openAdmission, type AdmittedHold } from "../../billing/admission-gate";
import { outlookScope } from "../../billing/admission-outlook";
import { recordGeneration } from "../../billing/generation-record";
import { chargeFor, settle, type Outcome, type SettlementContext } from "../../billing/settlement";
import { mayWaitForWindow } from "../../billing/settlement-window";
import { byokTerms } from "../../billing/byok";
import type { AppEnv } from "../../context";
import { GatewayError } from "../../errors";
import { adapterFor } from "../../providers/registry";
import { attemptFailure, callsMade, failureError, withFailover, type AttemptRecord, type FailoverOptions, type OpenedUpstream } from "../../routing/failover";
import type { Candidate } from "../../routing/plan";
import { chatRequestSchema, type ChatRequest } from "../../schemas/openai";
import { plainChatRequest } from "../../schemas/plain-chat-request";
import { readJsonBody, validate } from "../validate";
import { completionJson, newGenerationId } from "./shape";
import { knownToTrace } from "../../traces/destination-store";
import { enqueueWantedTrace } from "../../traces/producer";
import { isZeroRetention, requestTrace, type RequestTraceInput } from "../../traces/request-trace";
import { OutputCapture } from "./capture";
import { explainPlan, noCandidateError, rememberRoute, routeHeader, routeRequest, type RoutedRequest } from "./route-plan";
import { routeAudit } from "../../residency/audit";
import { ENDPOINT_REGION_HEADER } from "../../residency/middleware";
import { streamChat, type StreamEnd } from "./stream";

function numberVar(value: string | undefined, fallback: number): number {
  const n = Number(value);
  return Number.isFinite(n) && n > 0 ? n : fallback;
}

function routeHeaders(generationId: string, candidate: Candidate, attempts: readonly AttemptRecord[]): Record<string, string> {
  return {
    "x-generation-id": generationId,
    "x-switchyard-endpoint": `${candidate.endpoint.providerSlug}/${candidate.endpoint.upstreamModel}`,
    [ENDPOINT_REGION_HEADER]: candidate.endpoint.effectiveRegion,
    "x-switchyard-attempts": String(callsMade(attempts) + 1),
  };
}

/** What a finished stream tells the endpoint's health: it failed mid-way, or how fast it was. */
function streamHealth(routed: RoutedRequest, end: StreamEnd): void {
  const { startedAt, firstContentAt } = end.attempt;
  const endpointId = end.candidate.endpoint.id;
  if (end.upstreamError) {
    routed.health.report({ endpointId, at: end.endedAt, ok: false, errorType: end.upstreamError });
    return;
  }
  if (firstContentAt === null) return;
  const generationSeconds = (end.endedAt - firstContentAt) / 1000;
  // A client that left early says nothing about the endpoint's speed, only that it answered.
  const tokensPerSecond = !end.cancelled && generationSeconds > 0.05 && end.usage.completionTokens > 0 ? end.usage.completionTokens / generationSeconds : undefined;
  routed.health.report({ endpointId, at: firstContentAt, ok: true, latencyMs: firstContentAt - startedAt, ...(tokensPerSecond !== undefined ? { tokensPerSecond } : {}) });
}

/** The body as a chat request: the common shape without zod, anything else through it (and its 400s). */
async function chatRequest(request: Request): Promise<ChatRequest> {
  const body = await readJsonBody(request);
  return plainChatRequest(body) ?? validate(chatRequestSchema, body);
}

/** Request headers that ask for the route to be explained. */
function wantsExplanation(value: string | undefined): boolean {
  return value === "1" || value?.toLowerCase() === "true";
}

export const chat = new Hono<AppEnv>().post("/chat/completions", async (c) => {
  const startedAt = Date.now();
  const req = await chatRequest(c.req.raw);
  const auth = c.get("auth");
  const residence = c.get("residence");
  const waitUntil = (promise: Promise<unknown>) => c.executionCtx.waitUntil(promise.catch(logFailure));
  // From isolate caches when warm: no D1 read, no Durable Object call.
  const routed = await routeRequest(c, req, waitUntil);
  const { plan } = routed;
  if (plan.candidates.length === 0) throw noCandidateError(plan, routed.modelIds, residence.policy.region);
  const route = routeAudit(plan, residence.ingress, residence.policy.region);
  const explain = wantsExplanation(c.req.header("x-switchyard-explain")) ? routeHeader(explainPlan(plan)) : null;

  const generation = { id: newGenerationId(), created: Math.floor(startedAt / 1000) };
  // The one Durable Object round trip before any byte reaches the client: key status, limits,
  // reservation. The workspace's Ledger or, for a sharded workspace, the key's LedgerShard; the
  // same object settles or releases the hold. With ample room it runs alongside the first upstream
  // attempt (billing/admission-outlook), otherwise before it.
  const target = admissionTarget(residence.stores, auth, plan.candidates);
  const terms = byokTerms(c.env);
  // Without room to run alongside, `answer` below awaits the admission before any upstream call.
  const gate = openAdmission(target, admissionInput(generation.id, req, plan.candidates, auth, terms.feeBps), outlookScope(target.name, auth.workspace.id, auth.key.id));
  const settlementFor = (hold: AdmittedHold): SettlementContext => ({
    auth,
    holdId: hold.holdId,
    receipt: hold.receipt,
    target,
    byokTerms: terms,
    db: residence.stores.db,
    route,
    mayWait: mayWaitForWindow(auth, hold),
  });
  const release = () => gate.release();

  const attempts: AttemptRecord[] = [];
  const connectTimeoutMs = numberVar(c.env.UPSTREAM_CONNECT_TIMEOUT_MS, 15_000);
  const firstTokenTimeoutMs = numberVar(c.env.UPSTREAM_FIRST_TOKEN_TIMEOUT_MS, 60_000);
  const failover: Omit<FailoverOptions, "stream" | "clientSignal"> = {
    connectTimeoutMs,
    health: routed.health,
    maxAttempts: numberVar(c.env.UPSTREAM_MAX_ATTEMPTS, 5),
    deadline: startedAt + numberVar(c.env.UPSTREAM_TOTAL_TIMEOUT_MS, 120_000),
  };
  // Called once admission has answered yes.
  const headers = (candidate: Candidate): Record<string, string> => {
    const admitted = gate.admitted;
    return {
      ...routeHeaders(generation.id, candidate, attempts),
      ...(explain ? { "x-switchyard-route": explain } : {}),
      "x-switchyard-admission": gate.parallel ? "parallel" : "first",
      ...(admitted?.capped ? { "x-switchyard-max-tokens": String(admitted.maxTokens) } : {}),
      ...(admitted?.rate ? rateLimitHeaders(admitted.rate.limit, admitted.rate.remaining, admitted.rate.resetAt) : {}),
    };
  };
  // The trace of this request, sent once it ends (traces/request-trace); content unless zero-retention.
  // A stream keeps its output only when the trace may carry it: not for zero retention, nor for a
  // workspace this isolate knows exports nowhere (unknown: keep it, the producer decides).
  const capture = new OutputCapture(!isZeroRetention(req) && knownToTrace(auth.workspace.id) !== false);
  // Destinations are configuration (DB); the trace itself goes to the workspace's region's queue.
  const traceEnv = { DB: c.env.DB, MASTER_KEY: c.env.MASTER_KEY, TRACES: residence.stores.traces, TRACE_CONTENT: residence.stores.traceContent };
  type TraceEnd = Omit<RequestTraceInput, "req" | "auth" | "generationId" | "requestId" | "headerSessionId" | "region" | "startedAt" | "attempts">;
  const sendTrace = (end: TraceEnd) => {
    const trace = requestTrace({
      req,
      auth,
      generationId: generation.id,
      requestId: c.get("requestId"),
      headerSessionId: c.req.header("x-session-id") ?? null,
      region: residence.ingress,
      startedAt,
      attempts,
      ...end,
    });
    waitUntil(enqueueWantedTrace(traceEnv, trace));
  };
  const outcomeOf = (candidate: Candidate, rest: Omit<Outcome, "generationId" | "requestId" | "candidate" | "attempts" | "startedAt" | "streamed">, streamed: boolean): Outcome => ({
    generationId: generation.id,
    requestId: c.get("requestId"),
    candidate,
    attempts: callsMade(attempts) + 1,
    startedAt,
    streamed,
    ...rest,
  });

  const streamed = (upstreamReq: ChatRequest, clientSignal: AbortSignal, ready: Promise<unknown>) =>
    streamChat({
      req: upstreamReq,
      candidates: plan.candidates,
      attempts,
      failover,
      clientSignal,
      ready,
      firstTokenTimeoutMs,
      keepAliveMs: numberVar(c.env.STREAM_KEEPALIVE_SECONDS, 5) * 1000,
      generation,
      headers,
      capture,
      billing: {
        charge: (candidate, usage, finishReason) => chargeFor(candidate, usage, finishReason, terms),
        settle: async (end) => {
          streamHealth(routed, end);
          if (!end.upstreamError) rememberRoute(routed, end.candidate);
          const settlement = settlementFor(await gate.hold);
          const outcome = outcomeOf(end.candidate, end, true);
          const settling = settle(settlement, outcome);
          waitUntil(settling.done);
          const charge = await settling.charge;
          waitUntil(recordGeneration(settlement, outcome, charge));
          sendTrace({
            served: { candidate: end.candidate, attemptStartedAt: end.attempt.startedAt },
            usage: end.usage,
            charge,
            finishReason: end.finishReason,
            nativeFinishReason: end.nativeFinishReason,
            streamed: true,
            cancelled: end.cancelled,
            status: 200,
            error: end.upstreamError ? { type: end.upstreamError, message: "Upstream stream failed after the first token" } : null,
            firstTokenAt: end.firstTokenAt,
            endedAt: end.endedAt,
            output: capture.output(),
          });
          return charge;
        },
        release,
        waitUntil,
      },
    });

  const readCompletion = async (opened: OpenedUpstream) => {
    // The attempt's clock now runs for the body: the whole answer within the first-token limit.
    opened.deadline.extend(firstTokenTimeoutMs);
    let body: unknown;
    try {
      body = await opened.deadline.within(opened.response.json<unknown>());
    } catch {
      if (opened.deadline.expired) throw attemptFailure("timeout", `Upstream did not finish within ${firstTokenTimeoutMs} ms`);
      throw attemptFailure("invalid_response", "Upstream returned a body that is not JSON");
    }
    return adapterFor(opened.candidate.target.family).parseResponse(body);
  };

  const completed = async (upstreamReq: ChatRequest, clientSignal: AbortSignal, ready: Promise<unknown>) => {
    const run = withFailover(upstreamReq, plan.candidates, attempts, { ...failover, stream: false, clientSignal, reportSuccess: true }, readCompletion);
    let result;
    try {
      [result] = await Promise.all([run, ready]);
    } catch (error) {
      // A refusal or a capped restart wins over whatever the aborted upstream call threw, and a
      // restart keeps its hold.
      await ready;
      waitUntil(release());
      throw error;
    }
    if (!result) {
      waitUntil(release());
      throw failureError(attempts);
    }

    const { candidate } = result.opened;
    rememberRoute(routed, candidate);
    const completion = result.value;
    const usage = completion.usage ?? {
      promptTokens: estimatePromptTokens(req),
      completionTokens: estimateTokensFromChars((completion.content?.length ?? 0) + (completion.reasoning?.length ?? 0)),
      cachedTokens: 0,
      cacheWriteTokens: 0,
      reasoningTokens: 0,
    };
    const expected = chargeFor(candidate, usage, completion.finishReason, terms);
    const outcome = outcomeOf(
      candidate,
      { usage, finishReason: completion.finishReason, nativeFinishReason: completion.nativeFinishReason, cancelled: false, firstTokenAt: null, endedAt: Date.now() },
      false,
    );
    const settlement = settlementFor(await gate.hold);
    const settling = settle(settlement, outcome);
    waitUntil(settling.done);
    waitUntil(
      settling.charge.then((charge) => {
        sendTrace({
          served: { candidate, attemptStartedAt: result.opened.startedAt },
          usage,
          charge,
          finishReason: completion.finishReason,
          nativeFinishReason: completion.nativeFinishReason,
          streamed: false,
          cancelled: false,
          status: 200,
          error: null,
          firstTokenAt: null,
          endedAt: outcome.endedAt,
          output: capture.enabled
            ? {
                text: completion.content,
                ...(completion.reasoning ? { reasoning: completion.reasoning } : {}),
                ...(completion.toolCalls.length ? { tool_calls: completion.toolCalls } : {}),
              }
            : null,
        });
        return recordGeneration(settlement, outcome, charge);
      }),
    );
    // Platform-keyed charges are known here; a BYOK fee depends on the month's allowance, which
    // only the ledger knows, so a BYOK answer waits for its settlement (one RPC).
    const charge = candidate.byok ? await settling.charge : expected;
    const meta = { ...generation, model: candidate.model.id, provider: candidate.endpoint.provider.name };
    return c.json(completionJson(meta, completion, usage, charge), 200, headers(candidate));
  };

  const serve = req.stream ? streamed : completed;
  const clientSignal = c.req.raw.signal;
  const answer = async (): Promise<Response> => {
    if (!gate.parallel) return serve(cappedRequest(req, await gate.hold), clientSignal, gate.ready);
    try {
      return await serve(req, gate.signal ? AbortSignal.any([clientSignal, gate.signal]) : clientSignal, gate.ready);
    } catch (error) {
      if (!(error instanceof CappedRestart)) throw error;
      // The balance fell between this isolate's last view and the admission: send the request
      // again with the cap the hold was sized for (rare; the first call was aborted).
      attempts.length = 0;
      const hold = await gate.hold;
      return serve(cappedRequest(req, hold), clientSignal, gate.hold);
    }
  };
  try {
    return await answer();
  } catch (error) {
    // A refused or failed request is traced too: the refusal, or its attempts, are the story.
    if (error instanceof GatewayError) {
      const type = error.metadata?.error_type;
      sendTrace({
        served: null,
        usage: null,
        charge: null,
        finishReason: null,
        nativeFinishReason: null,
        streamed: req.stream === true,
        cancelled: error.code === "request_timeout" && clientSignal.aborted,
        status: error.status,
        error: { type: typeof type === "string" ? type : error.code, message: error.message },
        firstTokenAt: null,
        endedAt: Date.now(),
        output: null,
      });
    }
    throw error;
  }
})
  /**
   * The route a request would take, without taking it: nothing is admitted, sent or charged. Same
   * body as `/chat/completions`; answers the candidates in order with why each sits where it does,
   * and every endpoint left out with the constraint that removed it.
   */
  .post("/chat/completions/dry-run", async (c) => {
    const req = await chatRequest(c.req.raw);
    const routed = await routeRequest(c, req, (promise) => c.executionCtx.waitUntil(promise.catch(logFailure)));
    const { ingress, policy } = c.get("residence");
    const empty = routed.plan.candidates.length === 0 ? noCandidateError(routed.plan, routed.modelIds, policy.region) : null;
    return c.json({
      data: {
        models: routed.modelIds,
        residency: { workspace_region: policy.region, ingress_region: ingress },
        ...explainPlan(routed.plan),
        ...(empty ? { error: { code: empty.status, message: empty.message } } : {}),
      },
    });
  });

/** Without max_tokens and short of the model's maximum, the cap is what the balance affords. */
function cappedRequest(req: ChatRequest, hold: AdmittedHold): ChatRequest {
  return hold.capped ? { ...req, max_tokens: hold.maxTokens, max_completion_tokens: undefined } : req;
}

function logFailure(error: unknown): void {
  console.error(JSON.stringify({ level: "error", msg: "background task failed", error: error instanceof Error ? error.stack : String(error) }));
}
