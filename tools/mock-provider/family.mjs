// @ts-check
/**
 * @module mock-provider/family
 * The one shape every wire family implements, and the routing from a request path to a family.
 * Paths are matched by suffix so any prefix works: `/openai/v1/chat/completions`,
 * `/azure-eu/openai/deployments/gpt-4o-mini/chat/completions`, `/anthropic/v1/messages`,
 * `/vertex/v1/projects/p/locations/l/publishers/anthropic/models/claude:rawPredict`,
 * `/gemini/v1beta/models/gemini-2.5-flash:streamGenerateContent`.
 */
import { anthropic } from "./anthropic.mjs";
import { gemini } from "./gemini.mjs";
import { openai } from "./openai.mjs";

/**
 * @typedef {object} Route
 * @property {Family} family
 * @property {string | null} model  The model named in the path (Azure deployment, Vertex, Gemini).
 * @property {boolean | null} stream  Streaming decided by the path (Vertex, Gemini); null: by the body.
 * @property {boolean} sse  Gemini: `alt=sse`; without it a stream is one JSON array sent in pieces.
 * @property {string} query
 */

/**
 * @typedef {object} Family
 * @property {"openai" | "anthropic" | "gemini"} name
 * @property {(headers: import("node:http").IncomingHttpHeaders, query: string) => boolean} authorized
 * @property {(body: Record<string, unknown>, route: Route) => import("./plan.mjs").Conversation} read
 * @property {(plan: import("./plan.mjs").Plan, seq: number) => string} json
 * @property {(plan: import("./plan.mjs").Plan, seq: number, body: Record<string, unknown>, route: Route) => { events: string[], head: number }} events
 *   Serialized stream events; `head` is how many come before the first content delta.
 * @property {(status: number, message: string) => string} error  The family's error envelope.
 * @property {(message: string) => string} errorEvent  An error reported inside a stream.
 * @property {{ json: string, sse: string }} malformed  A 200 body that does not parse.
 */

const MODEL_ACTION = /\/models\/([^/]+):(rawPredict|streamRawPredict|generateContent|streamGenerateContent)$/;
const AZURE = /\/openai\/deployments\/([^/]+)\/chat\/completions$/;

/**
 * @param {string} path  Without the query string.
 * @param {string} query
 * @returns {Route | null}
 */
export function route(path, query) {
  if (path.endsWith("/chat/completions")) {
    const azure = AZURE.exec(path);
    return { family: openai, model: azure ? decodeURIComponent(azure[1] ?? "") : null, stream: null, sse: true, query };
  }
  if (path.endsWith("/messages")) return { family: anthropic, model: null, stream: null, sse: true, query };
  const action = MODEL_ACTION.exec(path);
  if (!action) return null;
  const model = decodeURIComponent(action[1] ?? "");
  switch (action[2]) {
    case "rawPredict":
      return { family: anthropic, model, stream: null, sse: true, query };
    case "streamRawPredict":
      return { family: anthropic, model, stream: true, sse: true, query };
    case "generateContent":
      return { family: gemini, model, stream: false, sse: false, query };
    default:
      return { family: gemini, model, stream: true, sse: /(^|&)alt=sse(&|$)/.test(query), query };
  }
}
