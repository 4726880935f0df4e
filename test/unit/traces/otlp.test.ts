/**
 * OTLP/HTTP JSON export: every request is checked against a zod schema of the OTLP/JSON trace
 * request (written here from the OTLP specification, independent of the code's own types) and
 * against the OpenTelemetry GenAI semantic conventions' attribute names.
 */
import { env } from "cloudflare:workers";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { deliverToDestination } from "../../../src/traces/delivery";
import type { Destination } from "../../../src/traces/destination-store";
import { otlpTracesUrl } from "../../../src/traces/destinations/otlp";
import type { Trace } from "../../../src/traces/schema";
import { mswServer } from "../../helpers";
import { exampleTrace, sink } from "./fixtures";

beforeAll(() => mswServer.listen({ onUnhandledRequest: "error" }));
afterEach(() => mswServer.resetHandlers());
afterAll(() => mswServer.close());

type AnyValue =
  | { stringValue: string }
  | { intValue: string }
  | { doubleValue: number }
  | { boolValue: boolean }
  | { arrayValue: { values: AnyValue[] } }
  | { kvlistValue: { values: Array<{ key: string; value: AnyValue }> } };

const hexId = (digits: number) =>
  z
    .string()
    .regex(new RegExp(`^[0-9a-f]{${digits}}$`), `${digits} lowercase hex digits`)
    .refine((id) => !/^0+$/.test(id), "all-zero ids are invalid");
/** Unix nanoseconds as a decimal string (fixed64 in the protobuf JSON mapping). */
const unixNanos = z.string().regex(/^\d{1,20}$/);
const anyValue: z.ZodType<AnyValue> = z.lazy(() =>
  z.union([
    z.strictObject({ stringValue: z.string() }),
    z.strictObject({ intValue: z.string().regex(/^-?\d+$/) }),
    z.strictObject({ doubleValue: z.number() }),
    z.strictObject({ boolValue: z.boolean() }),
    z.strictObject({ arrayValue: z.strictObject({ values: z.array(anyValue) }) }),
    z.strictObject({ kvlistValue: z.strictObject({ values: z.array(z.strictObject({ key: z.string(), value: anyValue })) }) }),
  ]),
);
const keyValue = z.strictObject({ key: z.string().min(1), value: anyValue });
const otlpSpan = z
  .strictObject({
    traceId: hexId(32),
    spanId: hexId(16),
    parentSpanId: hexId(16).optional(),
    traceState: z.string().optional(),
    name: z.string().min(1),
    /** SpanKind enum as an integer: 0 unspecified … 3 CLIENT … 5 CONSUMER. */
    kind: z.number().int().min(0).max(5),
    startTimeUnixNano: unixNanos,
    endTimeUnixNano: unixNanos,
    attributes: z.array(keyValue),
    droppedAttributesCount: z.number().int().optional(),
    events: z.array(z.strictObject({ timeUnixNano: unixNanos, name: z.string(), attributes: z.array(keyValue).optional() })).optional(),
    links: z.array(z.unknown()).optional(),
    status: z.strictObject({ code: z.union([z.literal(0), z.literal(1), z.literal(2)]).optional(), message: z.string().optional() }).optional(),
  })
  .refine((s) => BigInt(s.endTimeUnixNano) >= BigInt(s.startTimeUnixNano), "ends before it starts");
const otlpTraceRequest = z.strictObject({
  resourceSpans: z
    .array(
      z.strictObject({
        resource: z.strictObject({ attributes: z.array(keyValue) }).optional(),
        scopeSpans: z.array(z.strictObject({ scope: z.strictObject({ name: z.string(), version: z.string().optional() }).optional(), spans: z.array(otlpSpan) })),
        schemaUrl: z.string().optional(),
      }),
    )
    .min(1),
});
type OtlpSpan = z.infer<typeof otlpSpan>;

function otlpDestination(endpoint: string, headers: Record<string, string>, privacyMode = false): Destination {
  return {
    workspaceId: "ws-otlp",
    id: "otel",
    name: null,
    enabled: true,
    filter: { samplingRate: 1, apiKeyIds: null },
    privacyMode,
    target: { type: "otlp", endpoint, headers },
    problem: null,
  };
}

/** Deliver `traces` to a fake OTLP endpoint; return the validated spans and the raw request. */
async function export_(traces: Trace[], privacyMode = false) {
  const hits = sink("https://otlp.sink.test/api/public/otel/v1/traces");
  const outcomes = await deliverToDestination(env, otlpDestination("https://otlp.sink.test/api/public/otel", { "x-honeycomb-team": "secret-team-key", "x-dataset": "llm" }, privacyMode), traces);
  expect(outcomes.every((o) => o.ok)).toBe(true);
  expect(hits).toHaveLength(1);
  const hit = hits[0];
  if (!hit) throw new Error("no OTLP request");
  const request = otlpTraceRequest.parse(JSON.parse(hit.body));
  const spans = request.resourceSpans.flatMap((r) => r.scopeSpans.flatMap((s) => s.spans));
  return { spans, hit };
}

function attrs(span: OtlpSpan): Map<string, AnyValue> {
  return new Map(span.attributes.map((a) => [a.key, a.value]));
}

describe("OTLP export", () => {
  it("posts a valid OTLP/JSON request to <endpoint>/v1/traces with the destination's headers", async () => {
    const { spans, hit } = await export_([exampleTrace(), exampleTrace()]);
    expect(spans).toHaveLength(2);
    expect(hit.headers.get("content-type")).toBe("application/json");
    expect(hit.headers.get("x-honeycomb-team")).toBe("secret-team-key");
    expect(hit.headers.get("x-dataset")).toBe("llm");
  });

  it("describes a generation with the GenAI semantic conventions", async () => {
    const trace = exampleTrace();
    const { spans } = await export_([trace]);
    const span = spans[0];
    if (!span) throw new Error("no span");
    expect(span.name).toBe("chat openai/gpt-4o-mini");
    expect(span.kind).toBe(3);
    expect(span.startTimeUnixNano).toBe(`${trace.started_at}000000`);
    expect(span.endTimeUnixNano).toBe(`${trace.started_at + trace.timings.latency_ms}000000`);
    expect(span.status?.code).toBe(1);
    const a = attrs(span);
    expect(a.get("gen_ai.operation.name")).toEqual({ stringValue: "chat" });
    expect(a.get("gen_ai.provider.name")).toEqual({ stringValue: "openai" });
    expect(a.get("gen_ai.system")).toEqual({ stringValue: "openai" });
    expect(a.get("gen_ai.request.model")).toEqual({ stringValue: "openai/gpt-4o-mini" });
    expect(a.get("gen_ai.response.model")).toEqual({ stringValue: "gpt-4o-mini-2024-07-18" });
    expect(a.get("gen_ai.response.id")).toEqual({ stringValue: trace.generation_id });
    expect(a.get("gen_ai.response.finish_reasons")).toEqual({ arrayValue: { values: [{ stringValue: "stop" }] } });
    expect(a.get("gen_ai.usage.input_tokens")).toEqual({ intValue: "120" });
    expect(a.get("gen_ai.usage.output_tokens")).toEqual({ intValue: "48" });
    expect(a.get("gen_ai.conversation.id")).toEqual({ stringValue: trace.session_id });

    const input = JSON.parse((a.get("gen_ai.input.messages") as { stringValue: string }).stringValue) as unknown;
    expect(input).toEqual([
      { role: "system", parts: [{ type: "text", content: "You are a helpful assistant." }] },
      { role: "user", parts: [{ type: "text", content: "What is the capital of France? PROMPT-MARKER-7f3a" }] },
    ]);
    const output = JSON.parse((a.get("gen_ai.output.messages") as { stringValue: string }).stringValue) as unknown;
    expect(output).toEqual([{ role: "assistant", parts: [{ type: "text", content: "The capital of France is Paris. OUTPUT-MARKER-91bc" }], finish_reason: "stop" }]);

    // The failed attempt before the answer is an event on the span.
    expect(span.events?.map((e) => e.name)).toEqual(["switchyard.route.attempt_failed"]);
  });

  it("keeps a client's 32-hex trace id, hashes any other one consistently, and links the parent span", async () => {
    const hexTrace = "4bf92f3577b34da6a3ce929d0e0e4736";
    const own = exampleTrace({ trace: { trace_id: hexTrace, parent_span_id: "00f067aa0ba902b7" } });
    const named1 = exampleTrace({ trace: { trace_id: "checkout-run-17" } });
    const named2 = exampleTrace({ trace: { trace_id: "checkout-run-17" } });
    const { spans } = await export_([own, named1, named2]);
    expect(spans[0]?.traceId).toBe(hexTrace);
    expect(spans[0]?.parentSpanId).toBe("00f067aa0ba902b7");
    expect(spans[1]?.traceId).toBe(spans[2]?.traceId);
    expect(spans[1]?.spanId).not.toBe(spans[2]?.spanId);
  });

  it("marks a failed request as an error span", async () => {
    const failed = exampleTrace({ status: 502, error: { type: "provider_unavailable", message: "every provider failed" }, endpoint: null, finish_reason: null, content: undefined });
    const { spans } = await export_([failed]);
    const span = spans[0];
    expect(span?.status).toEqual({ code: 2, message: "every provider failed" });
    const a = attrs(span as OtlpSpan);
    expect(a.get("error.type")).toEqual({ stringValue: "provider_unavailable" });
    expect(a.has("gen_ai.response.model")).toBe(false);
    expect(a.get("gen_ai.response.finish_reasons")).toEqual({ arrayValue: { values: [] } });
  });

  it("leaves content attributes out in privacy mode", async () => {
    const { spans, hit } = await export_([exampleTrace()], true);
    const a = attrs(spans[0] as OtlpSpan);
    expect(a.has("gen_ai.input.messages")).toBe(false);
    expect(a.has("gen_ai.output.messages")).toBe(false);
    expect(hit.body).not.toContain("PROMPT-MARKER-7f3a");
    expect(hit.body).not.toContain("OUTPUT-MARKER-91bc");
  });

  it("does not append /v1/traces twice", () => {
    expect(otlpTracesUrl("https://api.honeycomb.io")).toBe("https://api.honeycomb.io/v1/traces");
    expect(otlpTracesUrl("https://api.honeycomb.io/")).toBe("https://api.honeycomb.io/v1/traces");
    expect(otlpTracesUrl("https://otel.example/v1/traces")).toBe("https://otel.example/v1/traces");
  });
});
