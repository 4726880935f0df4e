/**
 * @module traces/destinations/otlp
 * OpenTelemetry OTLP/HTTP with JSON encoding: `POST <endpoint>/v1/traces` with one CLIENT span
 * per generation, named `chat <model>` and described by the GenAI semantic conventions
 * (`gen_ai.*`), so any OTLP backend — Langfuse, LangSmith, Braintrust, Datadog, Grafana,
 * Honeycomb, New Relic — shows it as an LLM call. Per the OTLP/JSON mapping, ids are hex (32 and
 * 16 digits), times are unix nanoseconds as decimal strings, 64-bit integers are strings and enums
 * are numbers. Failed upstream attempts become span events.
 */
import { endedAt, traceIdOf, type Trace } from "../schema";
import { genAiInputMessages, genAiOutputMessages } from "./genai-messages";
import { post, type DeliveryOutcome } from "./http";

export type OtlpAnyValue =
  | { stringValue: string }
  | { intValue: string }
  | { doubleValue: number }
  | { boolValue: boolean }
  | { arrayValue: { values: OtlpAnyValue[] } };
export interface OtlpKeyValue {
  key: string;
  value: OtlpAnyValue;
}
export interface OtlpEvent {
  timeUnixNano: string;
  name: string;
  attributes: OtlpKeyValue[];
}
export interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  /** SPAN_KIND_CLIENT. */
  kind: 3;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes: OtlpKeyValue[];
  events: OtlpEvent[];
  /** STATUS_CODE_OK = 1, STATUS_CODE_ERROR = 2. */
  status: { code: 1 | 2; message?: string };
}
export interface OtlpTraceRequest {
  resourceSpans: Array<{
    resource: { attributes: OtlpKeyValue[] };
    scopeSpans: Array<{ scope: { name: string; version: string }; spans: OtlpSpan[] }>;
  }>;
}

const SPAN_KIND_CLIENT = 3;
const SCOPE = { name: "switchyard", version: "1" };

/** Provider slugs → the conventions' well-known `gen_ai.provider.name` values; others keep their slug. */
const PROVIDER_NAMES: Record<string, string> = {
  openai: "openai",
  "azure-eu": "azure.ai.openai",
  anthropic: "anthropic",
  "google-vertex-anthropic-eu": "gcp.vertex_ai",
  "google-ai-studio": "gcp.gemini",
  "google-vertex-eu": "gcp.vertex_ai",
  mistral: "mistral_ai",
  groq: "groq",
  deepseek: "deepseek",
  xai: "x_ai",
};

const str = (key: string, value: string): OtlpKeyValue => ({ key, value: { stringValue: value } });
const int = (key: string, value: number): OtlpKeyValue => ({ key, value: { intValue: String(Math.trunc(value)) } });
const bool = (key: string, value: boolean): OtlpKeyValue => ({ key, value: { boolValue: value } });
const strings = (key: string, values: string[]): OtlpKeyValue => ({ key, value: { arrayValue: { values: values.map((v) => ({ stringValue: v })) } } });

function nanos(ms: number): string {
  return (BigInt(Math.trunc(ms)) * 1_000_000n).toString();
}

async function hexDigest(input: string, hexChars: number): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(input));
  return [...new Uint8Array(digest)]
    .map((b) => b.toString(16).padStart(2, "0"))
    .join("")
    .slice(0, hexChars);
}

/** An id of `hexChars` hex digits: the client's own when it already is one (so spans join the client's trace), else a hash of it. */
async function otlpId(value: string, hexChars: number, salt: string): Promise<string> {
  const valid = new RegExp(`^[0-9a-f]{${hexChars}}$`);
  if (valid.test(value) && !/^0+$/.test(value)) return value;
  return hexDigest(`${salt}:${value}`, hexChars);
}

function attributesOf(trace: Trace): OtlpKeyValue[] {
  const provider = trace.endpoint?.provider;
  const providerName = provider ? (PROVIDER_NAMES[provider] ?? provider) : null;
  const attributes: OtlpKeyValue[] = [
    str("gen_ai.operation.name", "chat"),
    ...(providerName ? [str("gen_ai.provider.name", providerName), str("gen_ai.system", providerName)] : []),
    str("gen_ai.request.model", trace.model),
    ...(trace.endpoint ? [str("gen_ai.response.model", trace.endpoint.upstream_model)] : []),
    str("gen_ai.response.id", trace.generation_id),
    strings("gen_ai.response.finish_reasons", trace.finish_reason ? [trace.finish_reason] : []),
    int("gen_ai.usage.input_tokens", trace.tokens.prompt),
    int("gen_ai.usage.output_tokens", trace.tokens.completion),
    ...(trace.session_id ? [str("gen_ai.conversation.id", trace.session_id), str("session.id", trace.session_id)] : []),
    ...(trace.user ? [str("user.id", trace.user)] : []),
    ...(trace.error ? [str("error.type", trace.error.type)] : []),
    str("switchyard.generation.id", trace.generation_id),
    str("switchyard.request.id", trace.request_id),
    str("switchyard.workspace.id", trace.workspace_id),
    str("switchyard.key.id", trace.key_id),
    str("switchyard.region", trace.region),
    ...(trace.endpoint ? [str("switchyard.provider", trace.endpoint.provider), str("switchyard.endpoint.region", trace.endpoint.region)] : []),
    int("switchyard.usage.cached_tokens", trace.tokens.cached),
    int("switchyard.usage.cache_write_tokens", trace.tokens.cache_write),
    int("switchyard.usage.reasoning_tokens", trace.tokens.reasoning),
    int("switchyard.cost.charged_micros", trace.cost.charged_micros),
    int("switchyard.cost.upstream_micros", trace.cost.upstream_micros),
    int("switchyard.latency_ms", trace.timings.latency_ms),
    ...(trace.timings.ttft_ms !== null ? [int("switchyard.time_to_first_token_ms", trace.timings.ttft_ms)] : []),
    ...(trace.timings.generation_ms !== null ? [int("switchyard.generation_time_ms", trace.timings.generation_ms)] : []),
    bool("switchyard.streamed", trace.streamed),
    bool("switchyard.cancelled", trace.cancelled),
    bool("switchyard.byok", trace.byok),
    int("switchyard.status", trace.status),
    int("switchyard.attempts", trace.attempts.length),
  ];
  if (trace.trace.trace_name) attributes.push(str("switchyard.trace.name", trace.trace.trace_name));
  if (trace.trace.span_name) attributes.push(str("switchyard.span.name", trace.trace.span_name));
  if (trace.trace.generation_name) attributes.push(str("switchyard.generation.name", trace.trace.generation_name));
  for (const [key, value] of Object.entries(trace.trace.metadata ?? {})) {
    attributes.push(str(`switchyard.metadata.${key}`, typeof value === "string" ? value : JSON.stringify(value)));
  }
  // Content only when the trace still has it: private destinations receive a trace without it.
  if (trace.content) {
    attributes.push(str("gen_ai.input.messages", JSON.stringify(genAiInputMessages(trace.content.input))));
    attributes.push(str("gen_ai.output.messages", JSON.stringify(genAiOutputMessages(trace.content.output, trace.finish_reason))));
  }
  return attributes;
}

/** Failed attempts before the answer, one event each, laid end to end from the request's start. */
function attemptEvents(trace: Trace): OtlpEvent[] {
  let at = trace.started_at;
  return trace.attempts.flatMap((attempt) => {
    at += attempt.ms;
    if (attempt.error_type === null) return [];
    return [
      {
        timeUnixNano: nanos(at),
        name: "switchyard.route.attempt_failed",
        attributes: [
          str("switchyard.provider", attempt.provider),
          ...(attempt.status !== null ? [int("http.response.status_code", attempt.status)] : []),
          str("error.type", attempt.error_type),
          int("switchyard.duration_ms", attempt.ms),
        ],
      },
    ];
  });
}

/** The span of one generation. */
export async function otlpSpan(trace: Trace): Promise<OtlpSpan> {
  const parent = trace.trace.parent_span_id;
  return {
    traceId: await otlpId(traceIdOf(trace), 32, "trace"),
    spanId: await otlpId(trace.generation_id, 16, "span"),
    ...(parent ? { parentSpanId: await otlpId(parent, 16, "span") } : {}),
    name: `chat ${trace.model}`,
    kind: SPAN_KIND_CLIENT,
    startTimeUnixNano: nanos(trace.started_at),
    endTimeUnixNano: nanos(endedAt(trace)),
    attributes: attributesOf(trace),
    events: attemptEvents(trace),
    status: trace.error ? { code: 2, message: trace.error.message } : { code: 1 },
  };
}

/** One export request holding a span per trace. */
export async function otlpTraceRequest(traces: readonly Trace[]): Promise<OtlpTraceRequest> {
  return {
    resourceSpans: [
      {
        resource: { attributes: [str("service.name", "switchyard"), str("telemetry.sdk.name", "switchyard")] },
        scopeSpans: [{ scope: SCOPE, spans: await Promise.all(traces.map(otlpSpan)) }],
      },
    ],
  };
}

/** `<endpoint>/v1/traces`, unless the endpoint already names the traces path. */
export function otlpTracesUrl(endpoint: string): string {
  const base = endpoint.replace(/\/+$/, "");
  return base.endsWith("/v1/traces") ? base : `${base}/v1/traces`;
}

export interface OtlpTarget {
  endpoint: string;
  headers: Record<string, string>;
}

/** One POST for the whole group: the backend accepts or refuses it as a unit. */
export async function deliverOtlp(target: OtlpTarget, traces: readonly Trace[]): Promise<DeliveryOutcome[]> {
  const url = otlpTracesUrl(target.endpoint);
  const body = JSON.stringify(await otlpTraceRequest(traces));
  const outcome = await post(url, { headers: { ...target.headers, "content-type": "application/json" }, body }, `OTLP endpoint ${new URL(url).host}`);
  return traces.map(() => outcome);
}
