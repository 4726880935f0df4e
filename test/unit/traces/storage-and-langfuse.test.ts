/**
 * The S3-compatible destination (R2 binding and SigV4) and Langfuse's native ingestion API.
 */
import { env } from "cloudflare:workers";
import { HttpResponse } from "msw";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Target } from "../../../src/traces/destination-config";
import { deliverToDestination } from "../../../src/traces/delivery";
import type { Destination } from "../../../src/traces/destination-store";
import type { Trace } from "../../../src/traces/schema";
import { mswServer } from "../../helpers";
import { exampleTrace, sink } from "./fixtures";

beforeAll(() => mswServer.listen({ onUnhandledRequest: "error" }));
afterEach(() => mswServer.resetHandlers());
afterAll(() => mswServer.close());

function destination(target: Target): Destination {
  return { workspaceId: "ws-store", id: "d", name: null, enabled: true, filter: { samplingRate: 1, apiKeyIds: null }, privacyMode: false, target, problem: null };
}

describe("S3-compatible destination", () => {
  it("writes one JSONL object per batch to the TRACE_ARCHIVE binding, keyed by workspace and day", async () => {
    const traces = [exampleTrace({ workspace_id: "ws-store" }), exampleTrace({ workspace_id: "ws-store" })];
    const outcomes = await deliverToDestination(env, destination({ type: "s3", via: "binding", prefix: "archive/" }), traces);
    expect(outcomes.map((o) => o.ok)).toEqual([true, true]);
    const listed = await env.TRACE_ARCHIVE.list({ prefix: "archive/ws-store/2026-08-01/" });
    expect(listed.objects).toHaveLength(1);
    const object = await env.TRACE_ARCHIVE.get(listed.objects[0]?.key ?? "");
    expect(object?.httpMetadata?.contentType).toBe("application/x-ndjson");
    const lines = (await object?.text())?.trimEnd().split("\n") ?? [];
    expect(lines.map((l) => (JSON.parse(l) as Trace).generation_id)).toEqual(traces.map((t) => t.generation_id));

    // The same batch again overwrites the same object instead of adding a copy.
    await deliverToDestination(env, destination({ type: "s3", via: "binding", prefix: "archive/" }), traces);
    expect((await env.TRACE_ARCHIVE.list({ prefix: "archive/ws-store/2026-08-01/" })).objects).toHaveLength(1);
  });

  it("PUTs a SigV4-signed JSONL object to an S3 endpoint (path style)", async () => {
    const hits = sink(/^https:\/\/s3\.sink\.test\//);
    const trace = exampleTrace({ workspace_id: "ws-store" });
    const [outcome] = await deliverToDestination(
      env,
      destination({ type: "s3", via: "sigv4", endpoint: "https://s3.sink.test", bucket: "team-traces", region: "eu-west-1", prefix: "llm/", accessKeyId: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY" }),
      [trace],
    );
    expect(outcome?.ok).toBe(true);
    expect(hits).toHaveLength(1);
    const hit = hits[0];
    expect(hit?.url).toMatch(/^https:\/\/s3\.sink\.test\/team-traces\/llm\/ws-store\/2026-08-01\/120000-[0-9a-f]{16}\.jsonl$/);
    expect(hit?.headers.get("authorization")).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/eu-west-1\/s3\/aws4_request, SignedHeaders=[a-z0-9;-]+, Signature=[0-9a-f]{64}$/);
    expect(hit?.headers.get("x-amz-content-sha256")).toMatch(/^([0-9a-f]{64}|UNSIGNED-PAYLOAD)$/);
    expect(hit?.headers.get("authorization")).not.toContain("wJalrXUtnFEMI");
    expect((JSON.parse(hit?.body ?? "{}") as Trace).generation_id).toBe(trace.generation_id);
  });

  it("reports a 403 from S3 as permanent and a 503 as retryable", async () => {
    sink(/^https:\/\/s3-403\.sink\.test\//, () => new HttpResponse("<Error><Code>AccessDenied</Code></Error>", { status: 403 }));
    sink(/^https:\/\/s3-503\.sink\.test\//, () => new HttpResponse("SlowDown", { status: 503 }));
    const target = (endpoint: string): Target => ({ type: "s3", via: "sigv4", endpoint, bucket: "b-1", region: "auto", prefix: "", accessKeyId: "AKID", secretAccessKey: "secret-key" });
    const [denied] = await deliverToDestination(env, destination(target("https://s3-403.sink.test")), [exampleTrace()]);
    const [slow] = await deliverToDestination(env, destination(target("https://s3-503.sink.test")), [exampleTrace()]);
    expect(denied).toMatchObject({ ok: false, retryable: false, status: 403 });
    expect(slow).toMatchObject({ ok: false, retryable: true, status: 503 });
  });
});

describe("Langfuse destination", () => {
  const langfuse: Target = { type: "langfuse", baseUrl: "https://langfuse.sink.test", publicKey: "pk-lf-1234", secretKey: "sk-lf-5678" };

  it("sends a trace-create and a generation-create per trace with basic auth", async () => {
    const hits = sink("https://langfuse.sink.test/api/public/ingestion", () => HttpResponse.json({ successes: [], errors: [] }, { status: 207 }));
    const trace = exampleTrace({ trace: { trace_id: "run-9", generation_name: "answer" } });
    const [outcome] = await deliverToDestination(env, destination(langfuse), [trace]);
    expect(outcome?.ok).toBe(true);
    expect(hits[0]?.headers.get("authorization")).toBe(`Basic ${btoa("pk-lf-1234:sk-lf-5678")}`);
    const { batch } = JSON.parse(hits[0]?.body ?? "{}") as { batch: Array<{ id: string; type: string; timestamp: string; body: Record<string, unknown> }> };
    expect(batch.map((e) => e.type)).toEqual(["trace-create", "generation-create"]);
    const [traceEvent, generation] = batch;
    expect(traceEvent?.body).toMatchObject({ id: "run-9", sessionId: trace.session_id, userId: "user-42" });
    expect(generation?.body).toMatchObject({
      id: trace.generation_id,
      traceId: "run-9",
      name: "answer",
      model: "gpt-4o-mini-2024-07-18",
      startTime: new Date(trace.started_at).toISOString(),
      endTime: new Date(trace.started_at + 850).toISOString(),
      completionStartTime: new Date(trace.started_at + 230).toISOString(),
      usageDetails: { input: 120, output: 48, total: 168 },
      costDetails: { total: 0.000047 },
      level: "DEFAULT",
    });
    expect(JSON.stringify(generation?.body.input)).toContain("PROMPT-MARKER-7f3a");
  });

  it("maps per-event errors of a 207 answer to the trace they belong to", async () => {
    const ok = exampleTrace();
    const refused = exampleTrace();
    const overloaded = exampleTrace();
    sink("https://langfuse.sink.test/api/public/ingestion", () =>
      HttpResponse.json(
        {
          successes: [],
          errors: [
            { id: `${refused.generation_id}-generation`, status: 400, message: "invalid usage" },
            { id: `${overloaded.generation_id}-trace`, status: 500, message: "internal" },
          ],
        },
        { status: 207 },
      ),
    );
    const outcomes = await deliverToDestination(env, destination(langfuse), [ok, refused, overloaded]);
    expect(outcomes[0]).toMatchObject({ ok: true });
    expect(outcomes[1]).toMatchObject({ ok: false, retryable: false, status: 400 });
    expect(outcomes[2]).toMatchObject({ ok: false, retryable: true, status: 500 });
  });

  it("reports a 401 (wrong keys) as permanent", async () => {
    sink("https://langfuse.sink.test/api/public/ingestion", () => HttpResponse.json({ message: "Invalid credentials" }, { status: 401 }));
    const [outcome] = await deliverToDestination(env, destination(langfuse), [exampleTrace()]);
    expect(outcome).toMatchObject({ ok: false, retryable: false, status: 401 });
  });
});
