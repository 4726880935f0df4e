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
  async fetch(request, env) {
    const url = new URL(request.url);
    const path = url.pathname.replace(/^\/api\/v1(?=\/)/, "");
    const upstream = await fetch(env.UPSTREAM + path, {
      method: request.method,
      headers: { "content-type": request.headers.get("content-type") ?? "application/json", authorization: `Bearer ${env.UPSTREAM_KEY}` },
      body: request.body,
    });
    return url.searchParams.get("relay") === "js" && upstream.body ? jsRelay(upstream, upstream.body) : upstream;
  },
};

/**
 * `?relay=js`: the answer read and re-emitted by JavaScript, one upstream read and one enqueue per
 * chunk, pulled only as fast as the client reads (as the gateway's relay is) and nothing else.
 * What any Worker that touches a stream's chunks pays the runtime, before it does any work on them.
 * @param {Response} upstream
 * @param {ReadableStream<Uint8Array>} body
 */
function jsRelay(upstream, body) {
  const reader = body.getReader();
  const stream = new ReadableStream(
    {
      async pull(controller) {
        const { value, done } = await reader.read();
        if (done) controller.close();
        else controller.enqueue(value);
      },
      cancel: (reason) => reader.cancel(reason),
    },
    { highWaterMark: 0 },
  );
  return new Response(stream, upstream);
}
