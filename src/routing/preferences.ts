/**
 * @module routing/preferences
 * The hard filters of OpenRouter's `provider` object: `only`, `ignore`, `order` with
 * `allow_fallbacks: false`, `data_collection: "deny"`, `zdr`, `quantizations`, `max_price` and
 * `require_parameters`. Each returns why an endpoint is excluded — the constraint it broke (to
 * count exclusions per constraint) and the reason in words that name it — or null. Soft
 * preferences (sort, throughput, latency) belong to routing/order.
 */
import type { CatalogEndpoint } from "../catalog/store";
import type { ChatRequest } from "../schemas/openai";
import type { ProviderPreferences } from "../schemas/openrouter";

/** Request fields that name a capability an endpoint must list under `require_parameters`. */
const PARAMETER_FIELDS = [
  "tools",
  "tool_choice",
  "response_format",
  "temperature",
  "top_p",
  "top_k",
  "stop",
  "seed",
  "frequency_penalty",
  "presence_penalty",
  "repetition_penalty",
  "min_p",
  "logprobs",
  "top_logprobs",
  "logit_bias",
  "reasoning",
  "parallel_tool_calls",
  "max_tokens",
] as const;

function requestedParameters(req: ChatRequest): string[] {
  const record: Record<string, unknown> = req;
  const present: string[] = PARAMETER_FIELDS.filter((field) => record[field] !== undefined && record[field] !== null);
  if (req.max_completion_tokens != null && !present.includes("max_tokens")) present.push("max_tokens");
  if (req.reasoning_effort !== undefined && !present.includes("reasoning")) present.push("reasoning");
  if (req.response_format?.type === "json_schema") present.push("structured_outputs");
  return present;
}

/** USD per million tokens (string or number) → µ$ per million, rounded to the µ$. */
function capMicros(value: string | number | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = typeof value === "number" ? value : Number(value);
  return Number.isFinite(n) ? Math.round(n * 1_000_000) : undefined;
}

const lower = (list: readonly string[] | undefined) => list?.map((s) => s.toLowerCase());

/** Why an endpoint cannot serve: `constraint` groups exclusions in messages, `reason` explains one. */
export interface Rejection {
  constraint: string;
  reason: string;
}

const reject = (constraint: string, reason: string = constraint): Rejection => ({ constraint, reason });

/**
 * A checker for one request's preferences; null when there are none. `prefs` defaults to the
 * request's own `provider` object; the planner passes it merged with the workspace's defaults.
 */
export function preferenceFilter(
  req: ChatRequest,
  prefs: ProviderPreferences | undefined = req.provider,
): ((endpoint: CatalogEndpoint) => Rejection | null) | null {
  if (!prefs) return null;
  const only = lower(prefs.only);
  const ignore = lower(prefs.ignore);
  const order = lower(prefs.order);
  const quantizations = lower(prefs.quantizations);
  const maxPrompt = capMicros(prefs.max_price?.prompt);
  const maxCompletion = capMicros(prefs.max_price?.completion);
  const maxRequest = capMicros(prefs.max_price?.request);
  const required = prefs.require_parameters ? requestedParameters(req) : [];
  return (endpoint) => {
    const slug = endpoint.providerSlug.toLowerCase();
    const provider = endpoint.provider;
    if (only && !only.includes(slug)) return reject("provider.only", "not in provider.only");
    if (ignore?.includes(slug)) return reject("provider.ignore", "in provider.ignore");
    if (prefs.allow_fallbacks === false && order?.length && !order.includes(slug)) {
      return reject("allow_fallbacks=false", "not in provider.order (allow_fallbacks: false)");
    }
    if (prefs.data_collection === "deny" && (provider.trainsOnData || provider.retainsPrompts)) {
      return reject("data_collection=deny", "data_collection=deny (provider retains or trains on prompts)");
    }
    if (prefs.zdr && !provider.zeroRetention) return reject("zdr", "zdr (provider is not zero data retention)");
    if (quantizations && !quantizations.includes(endpoint.quantization.toLowerCase())) {
      return reject("provider.quantizations", `quantization ${endpoint.quantization} not in provider.quantizations`);
    }
    if (maxPrompt !== undefined && endpoint.promptPrice > maxPrompt) return reject("max_price", "max_price.prompt");
    if (maxCompletion !== undefined && endpoint.completionPrice > maxCompletion) return reject("max_price", "max_price.completion");
    // max_price.request is USD per request; requestPrice is µ$ per request.
    if (maxRequest !== undefined && endpoint.requestPrice > maxRequest) return reject("max_price", "max_price.request");
    const missing = required.filter((p) => !endpoint.parameters.has(p));
    if (missing.length) return reject("require_parameters", `require_parameters (does not support ${missing.join(", ")})`);
    return null;
  };
}
