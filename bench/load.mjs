// @ts-check
/**
 * @module bench/load
 * The load generator: N keep-alive connections (node:http), each sending the same POST back to
 * back for a fixed time after a warm-up, timing every request from the first byte written:
 *
 * - latency: until the last byte of the answer;
 * - ttfb: until the first byte of the body (for the gateway's streams, its `: SWITCHYARD
 *   PROCESSING` comment);
 * - ttft (streams): until the first `data:` event whose delta carries non-empty `"content"`,
 *   i.e. the first token; OpenAI's role chunk (`"content":""`) does not count.
 *
 * A request counts as an error when the connection fails, the status is not 2xx, or a stream
 * ends without `data: [DONE]`; the first distinct error bodies are kept for the report.
 */
import { Agent, request } from "node:http";

/** A first token: a `"content":"` string that is not empty. */
const FIRST_TOKEN = /"content":"[^"]/;
/** Bytes kept from the previous chunk so a marker split across two chunks is still found. */
const CARRY = 32;
const MAX_ERROR_BODY = 500;
const MAX_ERROR_SAMPLES = 5;

/**
 * @typedef {object} Target  Where requests go.
 * @property {URL} url
 * @property {Record<string, string>} headers
 * @property {string} body
 * @property {boolean} stream
 *
 * @typedef {object} Sample  One request.
 * @property {number} status  0 when the connection failed.
 * @property {number} latencyMs
 * @property {number | null} ttfbMs
 * @property {number | null} ttftMs
 * @property {number} bytes  Characters of the body; the answers are ASCII, so also bytes.
 * @property {string | null} error  Why it counts as an error, with the body when there is one.
 *
 * @typedef {object} Summary
 * @property {number} requests  Completed in the measured window (errors included).
 * @property {number} errors
 * @property {number} non2xx
 * @property {string[]} errorSamples
 * @property {number} rps
 * @property {{ p50: number, p99: number }} latencyMs
 * @property {{ p50: number, p99: number } | null} ttfbMs
 * @property {{ p50: number, p99: number } | null} ttftMs  Streams only.
 * @property {number} bytesPerRequest
 */

/**
 * Send one request and time it.
 * @param {Agent} agent
 * @param {Target} target
 * @returns {Promise<Sample>}
 */
export function send(agent, target) {
  return new Promise((resolve) => {
    const started = performance.now();
    const since = () => performance.now() - started;
    /** @param {number} status @param {string | null} error @param {Partial<Sample>} [rest] */
    const done = (status, error, rest) => resolve({ status, latencyMs: since(), ttfbMs: null, ttftMs: null, bytes: 0, error, ...rest });
    const req = request(
      target.url,
      { method: "POST", agent, headers: { ...target.headers, "content-length": Buffer.byteLength(target.body) } },
      (res) => {
        const status = res.statusCode ?? 0;
        const ok = status >= 200 && status < 300;
        /** @type {number | null} */
        let ttfbMs = null;
        /** @type {number | null} */
        let ttftMs = null;
        let bytes = 0;
        let tail = "";
        let errorBody = "";
        res.setEncoding("utf8");
        res.on("data", (/** @type {string} */ chunk) => {
          if (ttfbMs === null) ttfbMs = since();
          bytes += chunk.length;
          if (!ok) {
            if (errorBody.length < MAX_ERROR_BODY) errorBody += chunk;
            return;
          }
          if (!target.stream) return;
          const text = tail + chunk;
          if (ttftMs === null && FIRST_TOKEN.test(text)) ttftMs = since();
          tail = text.slice(-CARRY);
        });
        res.once("end", () => {
          let error = null;
          if (!ok) error = `HTTP ${status}: ${errorBody.slice(0, MAX_ERROR_BODY)}`;
          else if (target.stream && !tail.trimEnd().endsWith("data: [DONE]")) error = `stream ended without [DONE]: …${tail}`;
          done(status, error, { ttfbMs, ttftMs: target.stream ? ttftMs : ttfbMs, bytes });
        });
        res.once("error", (err) => done(status, `response: ${err.message}`, { ttfbMs, bytes }));
      },
    );
    req.once("error", (err) => done(0, `request: ${err.message}`));
    req.end(target.body);
  });
}

/**
 * Nearest-rank percentile of an ascending array.
 * @param {number[]} sorted
 * @param {number} p  0..1
 */
function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return /** @type {number} */ (sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]);
}

/** @param {number[]} values */
function spread(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return { p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99) };
}

/**
 * @param {Sample[]} samples
 * @param {number} wallMs
 * @returns {Summary}
 */
function summarize(samples, wallMs) {
  const errors = samples.filter((s) => s.error !== null);
  const good = samples.filter((s) => s.error === null);
  const ttfb = good.flatMap((s) => (s.ttfbMs === null ? [] : [s.ttfbMs]));
  const ttft = good.flatMap((s) => (s.ttftMs === null ? [] : [s.ttftMs]));
  return {
    requests: samples.length,
    errors: errors.length,
    non2xx: samples.filter((s) => s.status !== 0 && (s.status < 200 || s.status >= 300)).length,
    errorSamples: [...new Set(errors.map((s) => /** @type {string} */ (s.error)))].slice(0, MAX_ERROR_SAMPLES),
    rps: samples.length / (wallMs / 1000),
    latencyMs: spread(good.map((s) => s.latencyMs)),
    ttfbMs: ttfb.length ? spread(ttfb) : null,
    ttftMs: ttft.length ? spread(ttft) : null,
    bytesPerRequest: good.length ? good.reduce((sum, s) => sum + s.bytes, 0) / good.length : 0,
  };
}

/**
 * Each connection sends requests back to back until `until` (at least one each).
 * @param {Agent} agent
 * @param {Target} target
 * @param {number} connections
 * @param {number} until  performance.now() deadline
 */
async function phase(agent, target, connections, until) {
  /** @type {Sample[]} */
  const samples = [];
  const loop = async () => {
    do samples.push(await send(agent, target));
    while (performance.now() < until);
  };
  await Promise.all(Array.from({ length: connections }, loop));
  return samples;
}

/**
 * @template W
 * @typedef {{ start(): void | Promise<void>, stop(): W | Promise<W> }} Window  Opened after the
 *   warm-up, closed after the last measured request has finished.
 */

/**
 * Warm up, then measure: `connections` concurrent connections for `durationMs`.
 * @template W
 * @param {Target} target
 * @param {{ connections: number, warmupMs: number, durationMs: number, window: Window<W> }} options
 * @returns {Promise<{ summary: Summary, window: W }>}
 */
export async function runLoad(target, { connections, warmupMs, durationMs, window }) {
  const agent = new Agent({ keepAlive: true, maxSockets: connections });
  try {
    await phase(agent, target, connections, performance.now() + warmupMs);
    await window.start();
    const started = performance.now();
    const samples = await phase(agent, target, connections, started + durationMs);
    const wallMs = performance.now() - started;
    const measured = await window.stop();
    return { summary: summarize(samples, wallMs), window: measured };
  } finally {
    agent.destroy();
  }
}

/**
 * One streamed request read no faster than `bytesPerSecond`: the reader pauses after each chunk
 * for as long as the chunk "should" have taken, so a gateway that does not apply backpressure
 * to its upstream has to hold the difference in memory.
 * @param {Target} target
 * @param {number} bytesPerSecond
 * @param {(bytes: number) => void} [onBytes]  Told the running total after each chunk.
 * @returns {Promise<Sample>}
 */
export function readSlowly(target, bytesPerSecond, onBytes) {
  return new Promise((resolve) => {
    const started = performance.now();
    let bytes = 0;
    let tail = "";
    /** @param {number} status @param {string | null} error */
    const done = (status, error) => resolve({ status, latencyMs: performance.now() - started, ttfbMs: null, ttftMs: null, bytes, error });
    const req = request(target.url, { method: "POST", headers: { ...target.headers, "content-length": Buffer.byteLength(target.body) } }, (res) => {
      const status = res.statusCode ?? 0;
      const firstByteAt = performance.now();
      res.setEncoding("utf8");
      res.on("data", (/** @type {string} */ chunk) => {
        bytes += chunk.length;
        tail = (tail + chunk).slice(-CARRY);
        onBytes?.(bytes);
        // Pause only when more than 10 ms ahead of the schedule: one timer per small SSE event
        // would make the reader slow for the wrong reason (timer granularity).
        const ahead = (bytes / bytesPerSecond) * 1000 - (performance.now() - firstByteAt);
        if (ahead > 10) {
          res.pause();
          setTimeout(() => res.resume(), ahead);
        }
      });
      res.once("end", () => {
        if (status < 200 || status >= 300) done(status, `HTTP ${status}: ${tail}`);
        else done(status, tail.trimEnd().endsWith("data: [DONE]") ? null : `stream ended without [DONE]: …${tail}`);
      });
      res.once("error", (err) => done(status, `response: ${err.message}`));
    });
    req.once("error", (err) => done(0, `request: ${err.message}`));
    req.end(target.body);
  });
}
