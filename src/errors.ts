/**
 * @module errors
 * The one error type of the gateway. Every failure a client can see is a `GatewayError` with a
 * code from a closed union; the code decides the HTTP status, and the body is OpenRouter's
 * `{"error":{"code","message","metadata"}}` so OpenAI and OpenRouter clients parse it.
 */
import type { ContentfulStatusCode } from "hono/utils/http-status";

export type ErrorCode =
  | "bad_request"
  | "unauthorized"
  | "payment_required"
  | "forbidden"
  | "not_found"
  | "request_timeout"
  | "payload_too_large"
  | "rate_limited"
  | "upstream_error"
  | "no_endpoints"
  | "unavailable"
  | "internal";

/** Why an upstream attempt failed, as OpenRouter's `metadata.error_type`. */
export type UpstreamErrorType =
  | "context_length_exceeded"
  | "authentication"
  | "rate_limit_exceeded"
  | "provider_overloaded"
  | "provider_unavailable"
  | "invalid_request"
  | "content_filter"
  | "not_found"
  | "timeout"
  | "server"
  | "invalid_response";

export function statusOf(code: ErrorCode): ContentfulStatusCode {
  switch (code) {
    case "bad_request":
      return 400;
    case "unauthorized":
      return 401;
    case "payment_required":
      return 402;
    case "forbidden":
      return 403;
    case "not_found":
      return 404;
    case "request_timeout":
      return 408;
    case "payload_too_large":
      return 413;
    case "rate_limited":
      return 429;
    case "upstream_error":
      return 502;
    case "no_endpoints":
    case "unavailable":
      return 503;
    case "internal":
      return 500;
  }
}

export type ErrorMetadata = Record<string, unknown>;

export class GatewayError extends Error {
  override readonly name = "GatewayError";
  readonly code: ErrorCode;
  readonly metadata: ErrorMetadata | undefined;
  /** Overrides the status implied by the code, e.g. an upstream 400 passed through. */
  readonly statusOverride: ContentfulStatusCode | undefined;
  readonly headers: Record<string, string> | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    opts: {
      metadata?: ErrorMetadata;
      status?: ContentfulStatusCode;
      headers?: Record<string, string>;
      cause?: unknown;
    } = {},
  ) {
    super(message, { cause: opts.cause });
    this.code = code;
    this.metadata = opts.metadata;
    this.statusOverride = opts.status;
    this.headers = opts.headers;
  }

  get status(): ContentfulStatusCode {
    return this.statusOverride ?? statusOf(this.code);
  }

  toJSON(): { error: { code: number; message: string; metadata?: ErrorMetadata } } {
    return {
      error: {
        code: this.status,
        message: this.message,
        ...(this.metadata ? { metadata: this.metadata } : {}),
      },
    };
  }

  toResponse(extraHeaders: Record<string, string> = {}): Response {
    return Response.json(this.toJSON(), {
      status: this.status,
      headers: { ...this.headers, ...extraHeaders },
    });
  }
}
