// @ts-check
/**
 * @module bench/floor-worker
 * The floor: the least a Worker in front of the mock provider can do. It forwards the method,
 * the body (streamed, not read) and the content type to the upstream, adds the upstream key the
 * gateway would add, and returns the upstream Response as it is, so a stream passes through
 * without buffering. Nothing else: no auth, no parsing, no ledger, no translation.
 *
 * `UPSTREAM` is the mock's OpenAI base URL, the same value the gateway gets as OPENAI_BASE_URL;
 * the path is taken relative to `/api/v1`, as the gateway does, so `POST /api/v1/chat/completions`
 * reaches the path the gateway calls for `openai/gpt-4o-mini`.
 */

export default {
  /**
   * @param {Request} request
   * @param {{ UPSTREAM: string, UPSTREAM_KEY: string }} env
   */
  fetch(request, env) {
    const path = new URL(request.url).pathname.replace(/^\/api\/v1(?=\/)/, "");
    return fetch(env.UPSTREAM + path, {
      method: request.method,
      headers: { "content-type": request.headers.get("content-type") ?? "application/json", authorization: `Bearer ${env.UPSTREAM_KEY}` },
      body: request.body,
    });
  },
};
