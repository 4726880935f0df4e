/**
 * @module providers/errors
 * Reading a provider's error answer: keep its own message (never a bare "Provider returned
 * error") and classify it as OpenRouter's `error_type`.
 */
import type { UpstreamErrorType } from "../errors";
import type { UpstreamFailure } from "./types";

const CONTEXT_PATTERNS =
  /context[ _-]?(length|window|limit)|maximum context|too many tokens|prompt is too long|input is too long|exceeds the (maximum|limit)/i;

/** Classify by HTTP status, refined by the message for the cases where status is ambiguous. */
export function classifyStatus(status: number, message: string): UpstreamErrorType {
  if (CONTEXT_PATTERNS.test(message) && status < 500) return "context_length_exceeded";
  if (status === 401 || status === 403) return "authentication";
  if (status === 404) return "not_found";
  if (status === 408 || status === 504) return "timeout";
  if (status === 429) return "rate_limit_exceeded";
  if (status === 529) return "provider_overloaded";
  if (status === 502 || status === 503) return "provider_unavailable";
  if (status >= 500) return "server";
  return "invalid_request";
}

/**
 * The message inside the common error envelopes: `{error:{message}}` (OpenAI, Anthropic, Gemini),
 * `{error:"…"}`, `{message}`, `{detail}`, or the raw text when it is not JSON.
 */
export function extractErrorMessage(body: string): string {
  const raw = body.trim();
  if (!raw) return "";
  try {
    const parsed: unknown = JSON.parse(raw);
    const candidate = pickMessage(parsed) ?? (Array.isArray(parsed) ? pickMessage(parsed[0]) : undefined);
    if (candidate) return candidate;
  } catch {
    // Not JSON: fall through to the text itself.
  }
  return raw.length > 500 ? `${raw.slice(0, 500)}…` : raw;
}

function pickMessage(value: unknown): string | undefined {
  if (!isRecord(value)) return undefined;
  const error = value.error;
  if (typeof error === "string") return error;
  if (isRecord(error) && typeof error.message === "string") return error.message;
  if (typeof value.message === "string") return value.message;
  if (typeof value.detail === "string") return value.detail;
  return undefined;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export function parseErrorBody(status: number, body: string): UpstreamFailure {
  const message = extractErrorMessage(body) || `HTTP ${status}`;
  return { message, errorType: classifyStatus(status, message) };
}
