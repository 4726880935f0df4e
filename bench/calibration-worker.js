// @ts-check
/**
 * @module bench/calibration-worker
 * What local simulation costs, measured beside the gateway so its CPU per request can be read
 * correctly. `POST /null` answers "ok" and nothing else: workerd and Miniflare's fixed cost per
 * request. `POST /d1` also writes one row to D1 first, and `POST /d1-batch?rows=N` writes N rows in
 * one batch call, as the gateway writes its generation records (several per call, in windows).
 * Miniflare implements D1 with JavaScript Workers and a Durable Object inside the
 * same workerd process, so locally that write costs CPU that a deployed Worker is not billed
 * for (on Cloudflare the query runs in D1, and the Worker only waits for it).
 */

// Its table is created by bench/targets.mjs (startCalibration).
let written = 0;

export default {
  /**
   * @param {Request} request
   * @param {{ DB: D1Database }} env
   */
  async fetch(request, env) {
    const url = new URL(request.url);
    const path = url.pathname;
    const insert = () => env.DB.prepare("INSERT INTO bench_rows (id, workspace, n, note) VALUES (?, ?, ?, ?)").bind(crypto.randomUUID(), "bench", written++, "calibration");
    if (path === "/d1") await insert().run();
    // One call carrying `?rows=` inserts, as the gateway writes generation records in windows.
    if (path === "/d1-batch") await env.DB.batch(Array.from({ length: Number(url.searchParams.get("rows")) }, insert));
    return new Response("ok");
  },
};
