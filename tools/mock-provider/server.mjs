#!/usr/bin/env node
// @ts-check
/**
 * @module mock-provider/server
 * A deterministic, fast stand-in for upstream LLM providers: OpenAI chat completions, Anthropic
 * Messages and Gemini generateContent, streamed or not, with faults on demand. Used by `npm start`
 * (offline development), the end-to-end tests and the benchmarks. See README.md for the behaviour.
 *
 * Standalone: `node tools/mock-provider/server.mjs --port 8790 [--host 127.0.0.1] [--log]`.
 */
import { createServer } from "node:http";
import { route } from "./family.mjs";
import { FaultRegistry, isFault } from "./faults.mjs";
import { isRecord, makePlan, parseDirectives } from "./plan.mjs";
import { isMain } from "../is-main.mjs";

/** @typedef {import("node:http").IncomingMessage} Req */
/** @typedef {import("node:http").ServerResponse} Res */
/** @typedef {import("./family.mjs").Route} Route */
/** @typedef {{ at: number, path: string, family: string, model: string, stream: boolean, body: Record<string, unknown> }} RecordedRequest */

const RECORDED = 100;

/**
 * @typedef {object} State
 * @property {number} seq
 * @property {Map<string, number>} hits
 * @property {FaultRegistry} faults
 * @property {RecordedRequest[]} requests
 * @property {Set<Res>} hanging  Responses held open by the "hang" fault, ended on close.
 * @property {{ received: number, bytes: number }} sink  What `POST /__mock/sink` (a trace
 *   webhook to point a destination at) has received.
 * @property {((line: string) => void) | null} log
 */

/**
 * @typedef {object} MockProvider
 * @property {string} url  e.g. `http://127.0.0.1:8790`
 * @property {number} port
 * @property {() => Record<string, number>} hits  Requests per first path segment, e.g. `{"/openai": 3}`.
 * @property {() => void} resetHits
 * @property {(prefix: string, fault: string, count?: number) => void} setFault
 * @property {() => void} clearFaults
 * @property {() => RecordedRequest[]} requests  The last 100 provider requests, oldest first.
 * @property {() => Promise<void>} close
 */

/**
 * Start the mock on `host:port` (port 0: any free port).
 * @param {{ port?: number, host?: string, log?: boolean | ((line: string) => void) }} [options]
 * @returns {Promise<MockProvider>}
 */
export async function startMockProvider({ port = 0, host = "127.0.0.1", log = false } = {}) {
  /** @type {State} */
  const state = {
    seq: 0,
    hits: new Map(),
    faults: new FaultRegistry(),
    requests: [],
    hanging: new Set(),
    sink: { received: 0, bytes: 0 },
    log: typeof log === "function" ? log : log ? (line) => console.log(line) : null,
  };
  const server = createServer({ keepAliveTimeout: 65_000, headersTimeout: 66_000 }, (req, res) => {
    handle(state, req, res).catch((err) => {
      if (!res.headersSent) send(res, 500, "application/json", JSON.stringify({ error: { message: String(err) } }));
      else res.destroy();
    });
  });
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve(undefined));
  });
  const address = server.address();
  const actualPort = typeof address === "object" && address ? address.port : port;
  return {
    url: `http://${host}:${actualPort}`,
    port: actualPort,
    hits: () => Object.fromEntries(state.hits),
    resetHits: () => state.hits.clear(),
    setFault: (prefix, fault, count) => void state.faults.add(prefix, fault, count ?? null),
    clearFaults: () => state.faults.clear(),
    requests: () => [...state.requests],
    close: () =>
      new Promise((resolve) => {
        for (const res of state.hanging) res.destroy();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/**
 * @param {Res} res
 * @param {number} status
 * @param {string} type
 * @param {string} body
 * @param {Record<string, string>} [headers]
 */
function send(res, status, type, body, headers) {
  res.writeHead(status, { "content-type": type, "content-length": Buffer.byteLength(body), ...headers });
  res.end(body);
}

/** @param {Req} req */
async function readBody(req) {
  /** @type {Buffer[]} */
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return Buffer.concat(chunks).toString("utf8");
}

/** @param {number} ms */
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** @param {string} path */
const segment = (path) => {
  const end = path.indexOf("/", 1);
  return end < 0 ? path : path.slice(0, end);
};

/**
 * @param {State} state
 * @param {Req} req
 * @param {Res} res
 */
async function handle(state, req, res) {
  const url = req.url ?? "/";
  const q = url.indexOf("?");
  const path = q < 0 ? url : url.slice(0, q);
  const query = q < 0 ? "" : url.slice(q + 1);
  if (path === "/__mock" || path.startsWith("/__mock/")) return control(state, req, res, path);
  const r = route(path, query);
  if (!r) {
    await readBody(req);
    return send(res, 404, "application/json", JSON.stringify({ error: { message: `The mock has no route for ${path}` } }));
  }
  const key = segment(path);
  state.hits.set(key, (state.hits.get(key) ?? 0) + 1);
  const log = state.log;
  if (log) {
    const started = Date.now();
    res.once("close", () => {
      const outcome = res.writableFinished ? res.statusCode : `${res.headersSent ? res.statusCode : "-"} (connection closed early)`;
      log(`[mock] ${req.method} ${url} → ${outcome} ${Date.now() - started}ms`);
    });
  }
  const family = r.family;
  const raw = await readBody(req);
  if (req.method !== "POST") return send(res, 405, "application/json", family.error(405, `${req.method} is not allowed here`));
  /** @type {unknown} */
  let body;
  try {
    body = JSON.parse(raw);
  } catch {
    return send(res, 400, "application/json", family.error(400, "The request body is not valid JSON"));
  }
  if (!isRecord(body)) return send(res, 400, "application/json", family.error(400, "The request body must be a JSON object"));
  if (!family.authorized(req.headers, query)) {
    return send(res, 401, "application/json", family.error(401, "Missing API key (the mock accepts any non-empty key)"));
  }
  const conv = family.read(body, r);
  state.requests.push({ at: Date.now(), path, family: family.name, model: conv.model, stream: conv.stream, body });
  if (state.requests.length > RECORDED) state.requests.shift();
  const { directives, text } = parseDirectives(conv.lastUserText);
  const armed = state.faults.take(path);
  if (armed?.startsWith("slow:")) directives.slowMs = Number(armed.slice(5));
  else if (armed) directives.fault = armed;
  if (directives.slowMs > 0) {
    await sleep(directives.slowMs);
    if (res.destroyed) return;
  }
  const fault = directives.fault;
  const streamType = r.sse ? "text/event-stream" : "application/json";
  if (fault !== null && /^[45]\d\d$/.test(fault)) {
    const status = Number(fault);
    const headers = status === 429 ? { "retry-after": "1" } : undefined;
    return send(res, status, "application/json", family.error(status, `Mock fault: HTTP ${status}`), headers);
  }
  switch (fault) {
    case "reset":
      return void req.socket.resetAndDestroy();
    case "hang":
      state.hanging.add(res);
      res.once("close", () => state.hanging.delete(res));
      return;
    case "malformed":
      return conv.stream
        ? send(res, 200, streamType, family.malformed.sse)
        : send(res, 200, "application/json", family.malformed.json);
  }
  const plan = makePlan(conv, directives, text);
  const seq = ++state.seq;
  if (!plan.stream) {
    if (fault === "error-event") return send(res, 500, "application/json", family.error(500, "Mock fault: error event"));
    const json = family.json(plan, seq);
    if (fault === "midstream") return cutJson(res, json);
    return send(res, 200, "application/json", json);
  }
  const { events, head } = family.events(plan, seq, body, r);
  const cut = fault === "midstream" || fault === "error-event" ? Math.min(head + 2, events.length - 1) : null;
  const tail = fault === "error-event" ? family.errorEvent("Mock fault: error in the middle of the stream") : null;
  res.writeHead(200, { "content-type": streamType, "cache-control": "no-cache" });
  writeEvents(res, events, cut, tail, directives.gapMs);
}

/**
 * Send half of a JSON body with its full length announced, then drop the connection.
 * @param {Res} res
 * @param {string} json
 */
function cutJson(res, json) {
  res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(json) });
  res.write(json.slice(0, json.length >> 1), () => setImmediate(() => res.destroy()));
}

/**
 * Write the events, optionally `gapMs` apart. With `cut`, stop after that many events and either
 * end with `tail` (an in-stream error event) or drop the connection.
 * @param {Res} res
 * @param {string[]} events
 * @param {number | null} cut
 * @param {string | null} tail
 * @param {number} gapMs
 */
function writeEvents(res, events, cut, tail, gapMs) {
  const end = cut ?? events.length;
  /** @param {number} i */
  const write = (i) => {
    const event = /** @type {string} */ (events[i]);
    if (i < end - 1) res.write(event);
    else if (cut === null) res.end(event);
    else if (tail !== null) res.end(event + tail);
    else res.write(event, () => setImmediate(() => res.destroy()));
  };
  if (gapMs <= 0) {
    for (let i = 0; i < end; i++) write(i);
    return;
  }
  let i = 0;
  const step = () => {
    if (res.destroyed) return;
    write(i++);
    if (i < end) setTimeout(step, gapMs);
  };
  step();
}

/**
 * The control API under `/__mock`.
 * @param {State} state
 * @param {Req} req
 * @param {Res} res
 * @param {string} path
 */
async function control(state, req, res, path) {
  const raw = await readBody(req);
  /** @param {number} status @param {unknown} value */
  const reply = (status, value) => send(res, status, "application/json", JSON.stringify(value));
  const what = `${req.method} ${path}`;
  switch (what) {
    case "GET /__mock/hits":
      return reply(200, Object.fromEntries(state.hits));
    case "DELETE /__mock/hits":
      state.hits.clear();
      return reply(200, {});
    case "GET /__mock/faults":
      return reply(200, { data: state.faults.list() });
    case "DELETE /__mock/faults":
      state.faults.clear();
      return reply(200, { data: [] });
    // A trace destination for local runs and the benchmark: accepts any POST, counts it.
    case "POST /__mock/sink":
      state.sink.received++;
      state.sink.bytes += Buffer.byteLength(raw);
      return reply(200, { ok: true });
    case "GET /__mock/sink":
      return reply(200, state.sink);
    case "DELETE /__mock/sink":
      state.sink = { received: 0, bytes: 0 };
      return reply(200, state.sink);
    case "GET /__mock/requests":
      return reply(200, { data: state.requests });
    case "DELETE /__mock/requests":
      state.requests = [];
      return reply(200, { data: [] });
    case "DELETE /__mock":
      state.hits.clear();
      state.faults.clear();
      state.requests = [];
      return reply(200, {});
    case "POST /__mock/faults": {
      /** @type {unknown} */
      let input;
      try {
        input = JSON.parse(raw);
      } catch {
        input = null;
      }
      const fault = isRecord(input) && typeof input.fault === "number" ? String(input.fault) : isRecord(input) ? input.fault : undefined;
      const count = isRecord(input) ? input.count : undefined;
      const prefix = isRecord(input) ? (input.prefix ?? "/") : undefined;
      if (typeof prefix !== "string" || !prefix.startsWith("/") || !isFault(fault) || !(count == null || (typeof count === "number" && Number.isInteger(count) && count > 0))) {
        return reply(400, {
          error: {
            message:
              'Expected {"prefix":"/openai","fault":"500"|"503"|"429"|"4xx/5xx"|"reset"|"hang"|"midstream"|"error-event"|"malformed"|"slow:MS","count"?:N}',
          },
        });
      }
      return reply(201, { data: state.faults.add(prefix, /** @type {string} */ (fault), count ?? null) });
    }
    default:
      return reply(404, { error: { message: `No control route ${what}` } });
  }
}

/** @param {string[]} argv */
function parseArgs(argv) {
  /** @type {{ port: number, host: string, log: boolean }} */
  const out = { port: Number(process.env.MOCK_PORT ?? 8790), host: "127.0.0.1", log: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--port") out.port = Number(argv[++i]);
    else if (arg === "--host") out.host = String(argv[++i]);
    else if (arg === "--log") out.log = true;
    else throw new Error(`Unknown argument ${arg}. Usage: server.mjs [--port N] [--host H] [--log]`);
  }
  return out;
}

if (isMain(import.meta.url)) {
  const mock = await startMockProvider(parseArgs(process.argv.slice(2)));
  console.log(`mock provider listening on ${mock.url}`);
  const stop = () => void mock.close().then(() => process.exit(0));
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}
