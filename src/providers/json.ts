/**
 * @module providers/json
 * JSON that crosses the provider boundary: stream event data from upstreams and the tool-call
 * arguments clients send back. One place decides what a malformed value becomes.
 */
import { GatewayError } from "../errors";
import { isRecord } from "./errors";

/** An upstream answer that is not what its family promises (fails the attempt). */
export function invalidResponse(message: string): GatewayError {
  return new GatewayError("upstream_error", message, { metadata: { error_type: "invalid_response" } });
}

/** Parse one SSE event's data; `sender` names the upstream in the error. */
export function parseEventJson(data: string, sender = "Upstream"): unknown {
  try {
    return JSON.parse(data);
  } catch {
    throw invalidResponse(`${sender} sent a malformed stream event`);
  }
}

/**
 * A previous assistant turn's tool-call arguments as the object native APIs want. Empty means
 * `{}`; anything but a JSON object is the client's error.
 */
export function parseToolArguments(name: string, raw: string): Record<string, unknown> {
  if (!raw.trim()) return {};
  let args: unknown;
  try {
    args = JSON.parse(raw);
  } catch {
    throw new GatewayError("bad_request", `Arguments of the assistant's call to tool "${name}" are not valid JSON`);
  }
  if (!isRecord(args)) throw new GatewayError("bad_request", `Arguments of the assistant's call to tool "${name}" must be a JSON object`);
  return args;
}
