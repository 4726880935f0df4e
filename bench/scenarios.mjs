// @ts-check
/**
 * @module bench/scenarios
 * What is measured and how: request bodies, floor-versus-gateway runs with CPU per request, the
 * CPU case, the memory case, metering runs and distance runs. bench/run.mjs decides the order.
 */
import { cpuWindow, rssBytes } from "./proc.mjs";
import { readSlowly, runLoad, send } from "./load.mjs";
import { Agent } from "node:http";

export const OPENAI_MODEL = "openai/gpt-4o-mini";
export const ANTHROPIC_MODEL = "anthropic/claude-haiku-4.5";
export const HELLO = "Hello [[words:20]]";
export const CHAT_PATH = "/api/v1/chat/completions";

/**
 * One load each, for the tools that study a single case (bench/profile.mjs, bench/ab.mjs).
 * @type {Record<string, { model: string, content: string, stream: boolean, maxTokens?: number }>}
 */
export const LOAD_CASES = {
  nonstream: { model: OPENAI_MODEL, content: HELLO, stream: false },
  stream: { model: OPENAI_MODEL, content: HELLO, stream: true },
  translate: { model: ANTHROPIC_MODEL, content: HELLO, stream: true },
  words: { model: ANTHROPIC_MODEL, content: "Hello [[words:1000]]", stream: true, maxTokens: 1000 },
};

/**
 * `--name value` from the command line, else `fallback` (the single-case tools' options).
 * @param {string} name
 * @param {string} fallback
 */
export function option(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] ? /** @type {string} */ (process.argv[i + 1]) : fallback;
}

/**
 * The request body of `LOAD_CASES[name]` and whether it streams; an unknown name is an error
 * that lists the known ones.
 * @param {string} name
 */
export function loadCase(name) {
  const chosen = LOAD_CASES[name];
  if (!chosen) throw new Error(`--case must be one of ${Object.keys(LOAD_CASES).join(", ")}`);
  return { body: chatBody(chosen.model, chosen.content, { stream: chosen.stream, maxTokens: chosen.maxTokens ?? 64 }), stream: chosen.stream };
}

/**
 * @typedef {import("./targets.mjs").Instance} Instance
 * @typedef {import("./load.mjs").Summary} Summary
 * @typedef {import("./load.mjs").Target} Target
 * @typedef {{ instance: Instance, key: string, path?: string }} Endpoint  A Worker, the API key to
 *   send and the path (default: the chat completions route).
 * @typedef {{ warmupMs: number, durationMs: number }} Timing
 *
 * @typedef {Summary & { cpuMicrosPerRequest: number, workerdCpuPct: number, clientCpuPct: number, mockCpuPct: number, otherCpuPct: number }} Measured
 *   CPU: of the Worker's workerd process per completed request; and how busy each process was
 *   during the window (% of one core), to tell when the client or the mock is the bottleneck,
 *   and everything else on the machine (`other`), which should be near 0.
 */

/**
 * A client request body.
 * @param {string} model
 * @param {string} content
 * @param {{ stream?: boolean, maxTokens?: number }} [options]
 */
export function chatBody(model, content, { stream = false, maxTokens = 64 } = {}) {
  return JSON.stringify({ model, messages: [{ role: "user", content }], max_tokens: maxTokens, ...(stream ? { stream: true } : {}) });
}

/**
 * @param {Endpoint} endpoint
 * @param {string} body
 * @param {boolean} stream
 * @returns {Target}
 */
function target(endpoint, body, stream) {
  return {
    url: new URL(endpoint.path ?? CHAT_PATH, endpoint.instance.url),
    headers: { authorization: `Bearer ${endpoint.key}`, "content-type": "application/json" },
    body,
    stream,
  };
}

/**
 * The body the gateway sends upstream for `body` (an openai/… model): sent once through the
 * gateway and read back from the mock. The floor forwards bodies unchanged, so sending it this
 * body makes its upstream request the gateway's.
 * @param {Endpoint} gateway
 * @param {import("./mock.mjs").MockChild} mock
 * @param {string} body
 * @param {boolean} stream
 * @returns {Promise<Record<string, unknown>>}
 */
export async function upstreamBodyOf(gateway, mock, body, stream) {
  await mock.clearRequests();
  const agent = new Agent();
  try {
    const sample = await send(agent, target(gateway, body, stream));
    if (sample.error) throw new Error(`Capturing the upstream body failed: ${sample.error}`);
  } finally {
    agent.destroy();
  }
  const recorded = await mock.requests();
  const last = recorded.at(-1);
  if (!last) throw new Error("The mock recorded no request");
  return last.body;
}

/**
 * The gateway's upstream body for another prompt and token limit, derived from a captured one.
 * @param {Record<string, unknown>} template  from {@link upstreamBodyOf}
 * @param {string} content
 * @param {number} maxTokens
 */
export function withPrompt(template, content, maxTokens) {
  const limit = "max_completion_tokens" in template ? "max_completion_tokens" : "max_tokens";
  return JSON.stringify({ ...template, messages: [{ role: "user", content }], [limit]: maxTokens });
}

/**
 * One load run against one Worker, with the CPU its workerd used per request.
 * @param {Endpoint} endpoint
 * @param {string} body
 * @param {boolean} stream
 * @param {number} connections
 * @param {Timing} timing
 * @param {number} mockPid
 * @returns {Promise<Measured>}
 */
export async function measure(endpoint, body, stream, connections, timing, mockPid) {
  const window = cpuWindow({ workerd: endpoint.instance.pid, client: process.pid, mock: mockPid });
  const { summary, window: cpu } = await runLoad(target(endpoint, body, stream), { connections, ...timing, window });
  const pct = (/** @type {string} */ name) => ((cpu.cpuMicros[name] ?? 0) / (cpu.wallMs * 1000)) * 100;
  return {
    ...summary,
    cpuMicrosPerRequest: summary.requests ? (cpu.cpuMicros.workerd ?? 0) / summary.requests : NaN,
    workerdCpuPct: pct("workerd"),
    clientCpuPct: pct("client"),
    mockCpuPct: pct("mock"),
    otherCpuPct: pct("machine") - pct("workerd") - pct("client") - pct("mock"),
  };
}

/**
 * What one large stream read slowly costs in memory. RSS of the Worker's workerd: sampled every
 * 20 ms, baseline = mean of 10 samples just before; RSS also counts garbage V8 has not collected
 * yet and heap pages it keeps after collecting. With `heap` (the isolate's inspector), also the
 * JavaScript heap: live (used right after a forced full collection) before, once mid-stream when
 * `midAtBytes` have been read, and after; and the largest used size sampled every 100 ms. Live
 * mid-stream minus live before is what the stream itself holds: a relay that buffered the
 * answer ahead of a slow reader would show it there.
 * @param {Endpoint} endpoint
 * @param {string} body
 * @param {number} bytesPerSecond
 * @param {{ heap?: import("./inspector.mjs").HeapProbe, midAtBytes?: number }} [options]
 */
export async function memoryCase(endpoint, body, bytesPerSecond, { heap, midAtBytes = 0 } = {}) {
  const pid = endpoint.instance.pid;
  const liveBefore = heap ? await heap.liveBytes() : null;
  /** @type {number[]} */
  const before = [];
  for (let i = 0; i < 10; i++) {
    before.push(rssBytes(pid));
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const baseline = before.reduce((a, b) => a + b, 0) / before.length;
  let peak = baseline;
  const timer = setInterval(() => (peak = Math.max(peak, rssBytes(pid))), 20);
  let heapPeak = 0;
  let sampling = false;
  const heapTimer = heap
    ? setInterval(() => {
        if (sampling) return;
        sampling = true;
        heap
          .usage()
          .then((u) => (heapPeak = Math.max(heapPeak, u.usedBytes)))
          .catch(() => undefined)
          .finally(() => (sampling = false));
      }, 100)
    : null;
  /** @type {Promise<number> | null} */
  let liveMid = null;
  const onBytes = (/** @type {number} */ bytes) => {
    if (heap && midAtBytes > 0 && liveMid === null && bytes >= midAtBytes) liveMid = heap.liveBytes();
  };
  const sample = await readSlowly(target(endpoint, body, true), bytesPerSecond, onBytes).finally(() => {
    clearInterval(timer);
    if (heapTimer) clearInterval(heapTimer);
  });
  peak = Math.max(peak, rssBytes(pid));
  const mb = (/** @type {number} */ bytes) => bytes / 2 ** 20;
  const heapResult =
    heap && liveBefore !== null
      ? { liveBeforeMb: mb(liveBefore), liveMidMb: liveMid ? mb(await liveMid) : null, liveAfterMb: mb(await heap.liveBytes()), peakUsedMb: mb(heapPeak) }
      : null;
  return { bytes: sample.bytes, seconds: sample.latencyMs / 1000, baselineMb: mb(baseline), peakMb: mb(peak), deltaMb: mb(peak - baseline), heap: heapResult, error: sample.error };
}

/**
 * @typedef {object} Meter  The counters of bench/metered-entry.ts.
 * @property {number} workerInvocations
 * @property {number} doRequests
 * @property {number} ledgerRequests  The part of doRequests made on Ledger and LedgerShard stubs.
 * @property {number} doAlarms
 * @property {number} doCallMs
 * @property {number} doSetAlarms
 * @property {number} doRowsRead
 * @property {number} doRowsWritten
 * @property {number} d1Queries  Statements (a batch counts each of its statements).
 * @property {number} d1Calls  Round trips to D1 (a batch is one).
 * @property {number} d1RowsRead
 * @property {number} d1RowsWritten
 * @property {number} queueOperations
 * @property {number} queueWrites
 * @property {number} queueReads
 * @property {number} queueDeletes
 * @property {number} queueInvocations
 * @property {number} r2ClassA
 * @property {number} r2ClassB
 */

/**
 * A call on one of the metered gateway's bench routes (bench/metered-entry.ts).
 * @param {Instance} instance
 * @param {"GET" | "POST"} method
 * @param {string} path
 * @returns {Promise<Meter>}
 */
export async function meterCall(instance, method, path) {
  const res = await fetch(new URL(path, instance.url), { method });
  if (!res.ok) throw new Error(`${method} ${path} → ${res.status}: ${await res.text()}`);
  return /** @type {Meter} */ (await res.json());
}

/**
 * Billable operations of a load run on the metered gateway: the meter is reset after the
 * warm-up and read `settleMs` after the last response, once the settlements and generation
 * records (waitUntil), a LedgerShard's flush alarm (about a second) and the trace queues (the
 * producer's 50 ms window; the TRACES consumer waits up to 5 s to fill a batch, the retry path
 * 2 s) have run. The meter counts only the queue traffic of requests started after its reset.
 * @param {Endpoint} endpoint
 * @param {string} body
 * @param {boolean} stream
 * @param {number} connections
 * @param {Timing & { settleMs: number }} timing
 * @returns {Promise<{ summary: Summary, meter: Meter }>}
 */
export async function meteringRun(endpoint, body, stream, connections, { settleMs, ...timing }) {
  const window = {
    start: async () => void (await meterCall(endpoint.instance, "POST", "/__bench/meter/reset")),
    stop: async () => {
      await new Promise((resolve) => setTimeout(resolve, settleMs));
      return meterCall(endpoint.instance, "GET", "/__bench/meter");
    },
  };
  const { summary, window: meter } = await runLoad(target(endpoint, body, stream), { connections, ...timing, window });
  return { summary, meter };
}
