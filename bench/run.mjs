#!/usr/bin/env node
// @ts-check
/**
 * @module bench/run
 * `npm run bench`: the gateway against a bare pass-through Worker (the floor), both in front of
 * the mock provider, plus metering, memory and ledger-distance runs; writes bench/results.md and
 * bench/results.json. `npm run bench:smoke` (`--smoke`): the same with tiny durations, results in
 * bench/.build/, and a non-zero exit on any failed request or on meters that stayed at zero,
 * never on a timing. A full run also exits non-zero when a request failed, after writing the
 * results. See bench/README.md.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { againIfOverdue, bounded } from "./bounded.mjs";
import { buildBundles } from "./build.mjs";
import { costPerMillionRequests } from "./cost.mjs";
import { freePort, heapProbe } from "./inspector.mjs";
import { startMockChild } from "./mock.mjs";
import { kill, workerdChildren } from "./proc.mjs";
import { machineInfo, renderMarkdown, evaluateTargets } from "./report.mjs";
import {
  ANTHROPIC_MODEL,
  CHAT_PATH,
  HELLO,
  OPENAI_MODEL,
  chatBody,
  measure,
  memoryCase,
  meterCall,
  meteringRun,
  upstreamBodyOf,
  withPrompt,
} from "./scenarios.mjs";
import { provision, startCalibration, startFloor, startGateway } from "./targets.mjs";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const BUILD = join(ROOT, "bench", ".build");

/**
 * @typedef {object} Config
 * @property {number} warmupMs
 * @property {number} durationMs  Each floor-versus-gateway run.
 * @property {number} repeats  Floor-then-gateway runs per scenario; the report takes medians.
 * @property {number} cpuCaseMs
 * @property {number} calibrationMs  Each calibration run.
 * @property {number} memoryWords  Words of the large stream (~300 bytes each out of the gateway).
 * @property {number} meteringMs
 * @property {number} settleMs  Wait after a metering run before reading the meter (the trace
 *   consumers' batch timeouts, 5 s then 2 s, plus slack).
 * @property {number} distanceWarmupMs
 * @property {number} distanceMs
 * @property {number} stepLimitMs  Longest any one step may take before the run fails naming it.
 * @property {number} runLimitMs  Longest the whole run may take (a watchdog ends it past that).
 */

/** @type {Config} */
const FULL = { warmupMs: 1000, durationMs: 5000, repeats: 3, cpuCaseMs: 3000, calibrationMs: 2000, memoryWords: 34_000, meteringMs: 3000, settleMs: 8000, distanceWarmupMs: 500, distanceMs: 4000, stepLimitMs: 600_000, runLimitMs: 3_600_000 };
/** @type {Config} */
const SMOKE = { warmupMs: 0, durationMs: 200, repeats: 1, cpuCaseMs: 200, calibrationMs: 100, memoryWords: 1000, meteringMs: 200, settleMs: 300, distanceWarmupMs: 0, distanceMs: 100, stepLimitMs: 120_000, runLimitMs: 900_000 };
const SMOKE_RUN = process.argv.includes("--smoke");
const CONFIG = SMOKE_RUN ? SMOKE : FULL;

/** Floor-versus-gateway scenarios; translation sends the floor the OpenAI equivalent. */
const SCENARIOS = [
  { id: "nonstream@1", title: "non-streaming", model: OPENAI_MODEL, stream: false, connections: 1 },
  { id: "nonstream@32", title: "non-streaming", model: OPENAI_MODEL, stream: false, connections: 32 },
  { id: "stream@1", title: "streaming", model: OPENAI_MODEL, stream: true, connections: 1 },
  { id: "stream@32", title: "streaming", model: OPENAI_MODEL, stream: true, connections: 32 },
  { id: "translate@1", title: "streaming, Anthropic upstream (floor: OpenAI)", model: ANTHROPIC_MODEL, stream: true, connections: 1 },
  { id: "translate@32", title: "streaming, Anthropic upstream (floor: OpenAI)", model: ANTHROPIC_MODEL, stream: true, connections: 32 },
];

const CPU_CASE_WORDS = 1000;
const CPU_CASE_CONNECTIONS = 2;
const METERING_CONNECTIONS = 4;
const SHARDS = 4;
const DELAY_MS = 50;
const SLOW_UPSTREAM_MS = [0, 200];
/** Read the large stream at about 1 MB/s: slower than the gateway produces it on the benchmark machine. */
const SLOW_READ_BYTES_PER_SECOND = 1e6;
const CALIBRATION_CONNECTIONS = [1, 32];
/** Rows per call in the `/d1-batch` calibration (a generation window carries several records). */
const CALIBRATION_BATCH_ROWS = 10;

/** The step under way, for the watchdog's last word. */
let current = "setup";

/** @param {string} line */
const log = (line) => console.log(`[bench] ${line}`);

/**
 * @template T
 * @param {string} what
 * @param {() => Promise<T>} run
 */
async function step(what, run) {
  const started = performance.now();
  current = what;
  const value = await bounded(what, CONFIG.stepLimitMs, run);
  log(`${what} (${((performance.now() - started) / 1000).toFixed(1)} s)`);
  return value;
}

/** @param {import("./load.mjs").Summary} s */
const brief = (s) =>
  `${s.rps.toFixed(0)} req/s, p50 ${s.latencyMs.p50.toFixed(2)} ms${s.ttftMs ? `, ttft p50 ${s.ttftMs.p50.toFixed(2)} ms` : ""}${s.errors ? `, ${s.errors} ERRORS` : ""}`;

/**
 * @typedef {import("./targets.mjs").Instance} Instance
 * @typedef {import("./mock.mjs").MockChild} MockChild
 * @typedef {import("./scenarios.mjs").Measured} Measured
 * @typedef {{ gateway: string, metered: string }} Bundles
 * @typedef {<I extends Instance>(started: Promise<I>) => Promise<I>} Track
 */

/**
 * Run one phase; every instance it starts through `track` is disposed when it ends, so phases
 * never compete with each other for the cores.
 * @template T
 * @param {(track: Track) => Promise<T>} run
 */
async function phase(run) {
  /** @type {Instance[]} */
  const live = [];
  try {
    return await run(async (started) => {
      const instance = await started;
      live.push(instance);
      return instance;
    });
  } finally {
    for (const instance of live) await instance.dispose();
  }
}

/**
 * What workerd and Miniflare's local D1 cost per request by themselves.
 * @param {Config} config
 * @param {MockChild} mock
 */
function calibrate(config, mock) {
  return phase(async (track) => {
    const instance = await step("calibration worker started", () => track(againIfOverdue(() => startCalibration(ROOT))));
    const timing = { warmupMs: config.warmupMs, durationMs: config.calibrationMs };
    const runs = [];
    for (const connections of CALIBRATION_CONNECTIONS) {
      for (const path of ["/null", "/d1", `/d1-batch?rows=${CALIBRATION_BATCH_ROWS}`]) {
        const run = await step(`calibration ${path} @${connections}`, () => measure({ instance, key: "", path }, "{}", false, connections, timing, mock.pid));
        runs.push({ path, connections, run });
      }
    }
    return runs;
  });
}

/**
 * The floor and the production gateway side by side: the scenarios, the CPU case, the memory case
 * (RSS; the JavaScript heap is read by `heapRuns` on a gateway of its own).
 * @param {Config} config
 * @param {MockChild} mock
 * @param {Bundles} bundles
 */
function compare(config, mock, bundles) {
  return phase(async (track) => {
    const floor = await step("floor started", () => track(againIfOverdue(() => startFloor(ROOT, mock.url))));
    const gateway = await step("gateway started", () => track(againIfOverdue(() => startGateway(ROOT, "gateway", bundles.gateway, mock.url))));
    const gatewayEp = { instance: gateway, key: await provision(gateway, "bench") };
    const floorEp = { instance: floor, key: "unused-by-the-floor" };
    // What the gateway sends upstream for openai/gpt-4o-mini, as JSON and as a stream request.
    const upstream = {
      json: await upstreamBodyOf(gatewayEp, mock, chatBody(OPENAI_MODEL, HELLO), false),
      sse: await upstreamBodyOf(gatewayEp, mock, chatBody(OPENAI_MODEL, HELLO, { stream: true }), true),
    };
    const timing = { warmupMs: config.warmupMs, durationMs: config.durationMs };

    /** @type {import("./report.mjs").ScenarioResult[]} */
    const scenarios = [];
    for (const s of SCENARIOS) {
      const floorBody = JSON.stringify(s.stream ? upstream.sse : upstream.json);
      /** @type {Array<{ floor: Measured, gateway: Measured }>} */
      const pairs = [];
      // Floor and gateway alternate, so a slow spell of the machine weighs on both sides of a pair.
      for (let i = 1; i <= config.repeats; i++) {
        const run = config.repeats > 1 ? ` (run ${i} of ${config.repeats})` : "";
        const fl = await step(`${s.id} floor${run}`, () => measure(floorEp, floorBody, s.stream, s.connections, timing, mock.pid));
        const gw = await step(`${s.id} gateway${run}`, () => measure(gatewayEp, chatBody(s.model, HELLO, { stream: s.stream }), s.stream, s.connections, timing, mock.pid));
        log(`  floor ${brief(fl)} | gateway ${brief(gw)}`);
        pairs.push({ floor: fl, gateway: gw });
      }
      // The detailed tables show the pair with the median throughput ratio; targets take each metric's median over the pairs.
      const byRatio = [...pairs].sort((a, b) => a.gateway.rps / a.floor.rps - b.gateway.rps / b.floor.rps);
      const median = /** @type {{ floor: Measured, gateway: Measured }} */ (byRatio[Math.floor((byRatio.length - 1) / 2)]);
      scenarios.push({ ...s, floor: median.floor, gateway: median.gateway, pairs: pairs.map(pairSummary) });
    }

    const cpuContent = `Hello [[words:${CPU_CASE_WORDS}]]`;
    const cpuTiming = { warmupMs: config.warmupMs, durationMs: config.cpuCaseMs };
    const cpuCase = {
      words: CPU_CASE_WORDS,
      connections: CPU_CASE_CONNECTIONS,
      floor: await step("cpu case floor", () => measure(floorEp, withPrompt(upstream.sse, cpuContent, CPU_CASE_WORDS), true, CPU_CASE_CONNECTIONS, cpuTiming, mock.pid)),
      jsRelay: await step("cpu case floor, JavaScript relay", () =>
        measure({ ...floorEp, path: `${CHAT_PATH}?relay=js` }, withPrompt(upstream.sse, cpuContent, CPU_CASE_WORDS), true, CPU_CASE_CONNECTIONS, cpuTiming, mock.pid),
      ),
      gateway: await step("cpu case gateway", () =>
        measure(gatewayEp, chatBody(ANTHROPIC_MODEL, cpuContent, { stream: true, maxTokens: CPU_CASE_WORDS }), true, CPU_CASE_CONNECTIONS, cpuTiming, mock.pid),
      ),
    };
    log(
      `  gateway ${cpuCase.gateway.cpuMicrosPerRequest.toFixed(0)} µs CPU per 1,000-chunk translated stream (floor ${cpuCase.floor.cpuMicrosPerRequest.toFixed(0)} µs, JavaScript relay ${cpuCase.jsRelay.cpuMicrosPerRequest.toFixed(0)} µs)`,
    );

    const bigContent = `Hello [[words:${config.memoryWords}]]`;
    const bigGatewayBody = chatBody(ANTHROPIC_MODEL, bigContent, { stream: true, maxTokens: config.memoryWords });
    const memory = {
      words: config.memoryWords,
      bytesPerSecond: SLOW_READ_BYTES_PER_SECOND,
      floor: await step("memory floor", () => memoryCase(floorEp, withPrompt(upstream.sse, bigContent, config.memoryWords), SLOW_READ_BYTES_PER_SECOND)),
      // First, read as fast as it comes: the first large stream may grow the isolate's heap for
      // good, and with no backlog to hold this shows the stream's own working set.
      gatewayFastReader: await step("memory gateway (fast reader)", () => memoryCase(gatewayEp, bigGatewayBody, Infinity)),
      gateway: [
        await step("memory gateway (slow reader, 1st)", () => memoryCase(gatewayEp, bigGatewayBody, SLOW_READ_BYTES_PER_SECOND)),
        await step("memory gateway (slow reader, 2nd)", () => memoryCase(gatewayEp, bigGatewayBody, SLOW_READ_BYTES_PER_SECOND)),
      ],
    };
    log(`  gateway RSS +${memory.gateway.map((m) => m.deltaMb.toFixed(1)).join(" / +")} MB for ${(memory.gateway[0]?.bytes ?? 0) / 1e6} MB streamed`);
    return { scenarios, cpuCase, memory };
  });
}

/**
 * What the targets read from one floor-then-gateway pair.
 * @param {{ floor: Measured, gateway: Measured }} pair
 * @returns {import("./report.mjs").PairSummary}
 */
function pairSummary({ floor, gateway }) {
  return {
    floorRps: floor.rps,
    gatewayRps: gateway.rps,
    rpsRatio: gateway.rps / floor.rps,
    addedP50Ms: gateway.latencyMs.p50 - floor.latencyMs.p50,
    floorCpuMicros: floor.cpuMicrosPerRequest,
    gatewayCpuMicros: gateway.cpuMicrosPerRequest,
    cpuRatio: gateway.cpuMicrosPerRequest / floor.cpuMicrosPerRequest,
  };
}

/**
 * The isolate's JavaScript heap while the memory case's large stream is read slowly (twice, after
 * one fast read), on a production gateway of its own started with workerd's inspector
 * (bench/inspector.mjs): attaching it and forcing collections changes how the process's RSS
 * behaves (tens of MB more in a trial run), so the RSS figures come from the untouched gateway of
 * `compare` and the throughput runs never have a debugger attached.
 * @param {Config} config
 * @param {MockChild} mock
 * @param {Bundles} bundles
 * @returns {Promise<Array<import("./report.mjs").MemoryResult>>}
 */
function heapRuns(config, mock, bundles) {
  return phase(async (track) => {
    const inspectorPort = await freePort();
    const gateway = await step("gateway started with its inspector (heap)", () => track(againIfOverdue(() => startGateway(ROOT, "memory", bundles.gateway, mock.url, {}, { inspectorPort }))));
    const endpoint = { instance: gateway, key: await provision(gateway, "bench") };
    const heap = await heapProbe(inspectorPort, "memory", new URL("/", gateway.url));
    try {
      const body = chatBody(ANTHROPIC_MODEL, `Hello [[words:${config.memoryWords}]]`, { stream: true, maxTokens: config.memoryWords });
      const fast = await step("heap: fast reader", () => memoryCase(endpoint, body, Infinity, { heap }));
      const midAtBytes = Math.floor(fast.bytes / 2);
      const runs = [
        await step("heap: slow reader, 1st", () => memoryCase(endpoint, body, SLOW_READ_BYTES_PER_SECOND, { heap, midAtBytes })),
        await step("heap: slow reader, 2nd", () => memoryCase(endpoint, body, SLOW_READ_BYTES_PER_SECOND, { heap, midAtBytes })),
      ];
      const held = runs.map((m) => (m.heap?.liveMidMb ?? NaN) - (m.heap?.liveBeforeMb ?? NaN));
      log(`  live JS heap mid-stream ${held.map((h) => `${h >= 0 ? "+" : ""}${h.toFixed(2)}`).join(" / ")} MB above its level before`);
      return runs;
    } finally {
      heap.close();
    }
  });
}

const METERING_CASES = [
  { id: "nonstream", title: "non-streaming", workspace: "bench", stream: false, cpuFrom: "nonstream@32" },
  { id: "stream", title: "streaming", workspace: "bench", stream: true, cpuFrom: "stream@32" },
  { id: "stream-sharded", title: `streaming, workspace with ${SHARDS} ledger shards`, workspace: "bench-sharded", stream: true, cpuFrom: "stream@32" },
];

/** (i) every ledger object far; (ii) shards near the traffic, only the Ledger far. */
const DISTANCE_VARIANTS = [
  { id: "all-far", title: `ledger objects ${DELAY_MS} ms away (unsharded workspace)`, scope: "all", workspace: "bench" },
  { id: "shards-near", title: `${SHARDS} shards near, Ledger ${DELAY_MS} ms away`, scope: "ledger", workspace: "bench-sharded" },
];

/**
 * Provision both bench workspaces on a gateway.
 * @param {import("./targets.mjs").Gateway} gateway
 * @returns {Promise<Record<string, import("./scenarios.mjs").Endpoint>>}
 */
async function workspaces(gateway) {
  return {
    bench: { instance: gateway, key: await provision(gateway, "bench") },
    "bench-sharded": { instance: gateway, key: await provision(gateway, "bench-sharded", { shards: SHARDS }) },
  };
}

/**
 * Streaming TTFT at 1 connection, the mock's first token immediate or `slowMs` late.
 * @param {Config} config
 * @param {MockChild} mock
 * @param {import("./scenarios.mjs").Endpoint} endpoint
 * @param {number} slowMs
 * @param {string} what
 */
function ttftRun(config, mock, endpoint, slowMs, what) {
  const content = slowMs ? `[[slow:${slowMs}]] ${HELLO}` : HELLO;
  const timing = { warmupMs: config.distanceWarmupMs, durationMs: config.distanceMs };
  return step(what, () => measure(endpoint, chatBody(OPENAI_MODEL, content, { stream: true }), true, 1, timing, mock.pid));
}

/**
 * The instrumented gateway with its ledger near: the metering runs and the distance baselines.
 * @param {Config} config
 * @param {MockChild} mock
 * @param {Bundles} bundles
 * @param {import("./report.mjs").ScenarioResult[]} scenarios  for the Workers CPU of each case
 */
function meterAndBaselines(config, mock, bundles, scenarios) {
  return phase(async (track) => {
    const near = await step("metered gateway started", () => track(againIfOverdue(() => startGateway(ROOT, "metered", bundles.metered, mock.url, { BENCH_LEDGER_DELAY_MS: "0" }))));
    const endpoints = await workspaces(near);
    const timing = { warmupMs: config.warmupMs, durationMs: config.meteringMs, settleMs: config.settleMs };
    const metering = [];
    for (const m of METERING_CASES) {
      const body = chatBody(OPENAI_MODEL, HELLO, { stream: m.stream });
      const run = await step(`metering ${m.id}`, () => meteringRun(/** @type {import("./scenarios.mjs").Endpoint} */ (endpoints[m.workspace]), body, m.stream, METERING_CONNECTIONS, timing));
      const cpu = scenarios.find((s) => s.id === m.cpuFrom)?.gateway.cpuMicrosPerRequest ?? NaN;
      const cost = costPerMillionRequests(run.meter, cpu);
      log(`  ${run.meter.workerInvocations} requests: $${cost.totalUsdPerMillion.toFixed(3)} per million`);
      metering.push({ ...m, connections: METERING_CONNECTIONS, ...run, cost });
    }
    /** @type {Map<string, Measured>} variant id + upstream delay → TTFT run */
    const baselines = new Map();
    for (const v of DISTANCE_VARIANTS) {
      for (const slowMs of SLOW_UPSTREAM_MS) {
        const endpoint = /** @type {import("./scenarios.mjs").Endpoint} */ (endpoints[v.workspace]);
        baselines.set(`${v.id}+${slowMs}`, await ttftRun(config, mock, endpoint, slowMs, `distance ${v.id} delay 0, upstream +${slowMs} ms`));
      }
    }
    return { metering, baselines };
  });
}

/**
 * The instrumented gateway with its ledger far away, one instance per variant.
 * @param {Config} config
 * @param {MockChild} mock
 * @param {Bundles} bundles
 * @param {Map<string, Measured>} baselines  from {@link meterAndBaselines}
 */
async function distanceRuns(config, mock, bundles, baselines) {
  /** @type {import("./report.mjs").DistanceResult[]} */
  const distance = [];
  for (const v of DISTANCE_VARIANTS) {
    await phase(async (track) => {
      const vars = { BENCH_LEDGER_DELAY_MS: String(DELAY_MS), BENCH_LEDGER_DELAY_SCOPE: v.scope };
      const far = await step(`metered gateway (${v.id}) started`, () => track(againIfOverdue(() => startGateway(ROOT, `metered-${v.id}`, bundles.metered, mock.url, vars))));
      const endpoint = /** @type {import("./scenarios.mjs").Endpoint} */ ((await workspaces(far))[v.workspace]);
      for (const slowMs of SLOW_UPSTREAM_MS) {
        const delayed = await ttftRun(config, mock, endpoint, slowMs, `distance ${v.id} delay ${DELAY_MS}, upstream +${slowMs} ms`);
        const baseline = /** @type {Measured} */ (baselines.get(`${v.id}+${slowMs}`));
        distance.push({ variant: v.id, title: v.title, delayMs: DELAY_MS, slowUpstreamMs: slowMs, baseline, delayed });
        log(`  ttft p50 ${baseline.ttftMs?.p50.toFixed(1)} → ${delayed.ttftMs?.p50.toFixed(1)} ms`);
      }
    });
  }
  return distance;
}

const LEDGER_CASES = SCENARIOS.filter((s) => s.model === OPENAI_MODEL);
/** The ledger on/off/bare runs of one case, in order: three per side, interleaved. */
const LEDGER_ORDER = /** @type {const} */ (["on", "off", "bare", "bare", "off", "on", "on", "off", "bare"]);

/**
 * What admission and settlement add, and what is left without them: the metered gateway with its
 * ledger on and switched off (bench/metered-entry.ts), and "bare" — ledger off and a workspace
 * that exports no traces (no enqueue, no consumer, no delivery in the process). Same process.
 * Each case runs LEDGER_ORDER (three runs per side, interleaved), so a drift over time (JIT, heap,
 * D1 file growth) weighs on every side alike; a side's figures are those of its run with the
 * median CPU per request, so one run disturbed by the machine does not move the differences.
 * @param {Config} config
 * @param {MockChild} mock
 * @param {Bundles} bundles
 */
function ledgerCost(config, mock, bundles) {
  return phase(async (track) => {
    const instance = await step("metered gateway (ledger on/off) started", () => track(againIfOverdue(() => startGateway(ROOT, "metered-ledger", bundles.metered, mock.url, { BENCH_LEDGER_DELAY_MS: "0" }))));
    const traced = { instance, key: await provision(instance, "bench") };
    const quiet = { instance, key: await provision(instance, "bench-quiet", { traces: false }) };
    const timing = { warmupMs: config.warmupMs, durationMs: Math.round(config.durationMs / 2) };
    /** @type {import("./report.mjs").LedgerResult[]} */
    const cases = [];
    for (const s of LEDGER_CASES) {
      /** @type {Record<"on" | "off" | "bare", Measured[]>} */
      const runs = { on: [], off: [], bare: [] };
      /** @type {Record<"on" | "off" | "bare", { requests: number, ledgerRequests: number }>} */
      const calls = { on: { requests: 0, ledgerRequests: 0 }, off: { requests: 0, ledgerRequests: 0 }, bare: { requests: 0, ledgerRequests: 0 } };
      for (const side of LEDGER_ORDER) {
        await meterCall(instance, "POST", `/__bench/ledger/${side === "on" ? "on" : "off"}`);
        await meterCall(instance, "POST", "/__bench/meter/reset");
        const endpoint = side === "bare" ? quiet : traced;
        const run = await step(`ledger ${side} ${s.id}`, () => measure(endpoint, chatBody(s.model, HELLO, { stream: s.stream }), s.stream, s.connections, timing, mock.pid));
        // Settlements run after the response (waitUntil): let them land before reading the meter.
        await new Promise((resolve) => setTimeout(resolve, Math.min(config.settleMs, 1500)));
        const meter = await meterCall(instance, "GET", "/__bench/meter");
        calls[side].requests += meter.workerInvocations;
        calls[side].ledgerRequests += meter.ledgerRequests;
        runs[side].push(run);
      }
      await meterCall(instance, "POST", "/__bench/ledger/on");
      const on = medianByCpu(runs.on);
      const off = medianByCpu(runs.off);
      const bare = medianByCpu(runs.bare);
      const perRequest = (/** @type {"on" | "off" | "bare"} */ side) => calls[side].ledgerRequests / calls[side].requests;
      log(`  on ${brief(on)} | off ${brief(off)} | bare ${brief(bare)}; ledger calls per request ${perRequest("on").toFixed(2)} / ${perRequest("off").toFixed(2)}`);
      cases.push({ ...s, on, off, bare, doCallsPerRequest: { on: perRequest("on"), off: perRequest("off"), bare: perRequest("bare") } });
    }
    return cases;
  });
}

/**
 * The run with the median CPU per request (errors summed over all, so none is hidden).
 * @param {Measured[]} runs
 * @returns {Measured}
 */
function medianByCpu(runs) {
  const sorted = [...runs].sort((a, b) => a.cpuMicrosPerRequest - b.cpuMicrosPerRequest);
  const median = /** @type {Measured} */ (sorted[Math.floor((sorted.length - 1) / 2)]);
  return {
    ...median,
    errors: runs.reduce((n, r) => n + r.errors, 0),
    non2xx: runs.reduce((n, r) => n + r.non2xx, 0),
    errorSamples: runs.flatMap((r) => r.errorSamples),
  };
}

/**
 * @param {Config} config
 * @param {MockChild} mock
 * @param {Bundles} bundles
 */
async function runAll(config, mock, bundles) {
  const calibration = await calibrate(config, mock);
  const { scenarios, cpuCase, memory } = await compare(config, mock, bundles);
  const heap = await heapRuns(config, mock, bundles);
  const { metering, baselines } = await meterAndBaselines(config, mock, bundles, scenarios);
  const distance = await distanceRuns(config, mock, bundles, baselines);
  const ledger = await ledgerCost(config, mock, bundles);
  return { calibration, scenarios, cpuCase, memory: { ...memory, heap }, metering, distance, ledger };
}

/**
 * Every way a run can have gone wrong that is not a timing: failed requests and meters at zero.
 * @param {Awaited<ReturnType<typeof runAll>>} results
 * @returns {string[]}
 */
function failures(results) {
  /** @type {string[]} */
  const out = [];
  /** @param {string} what @param {import("./load.mjs").Summary} s */
  const check = (what, s) => {
    if (s.requests === 0) out.push(`${what}: no request completed`);
    if (s.errors > 0) out.push(`${what}: ${s.errors} of ${s.requests} requests failed (${s.non2xx} non-2xx): ${s.errorSamples.join(" | ")}`);
  };
  for (const c of results.calibration) check(`calibration ${c.path} @${c.connections}`, c.run);
  for (const s of results.scenarios) {
    check(`${s.id} floor`, s.floor);
    check(`${s.id} gateway`, s.gateway);
  }
  check("cpu case floor", results.cpuCase.floor);
  check("cpu case floor, JavaScript relay", results.cpuCase.jsRelay);
  check("cpu case gateway", results.cpuCase.gateway);
  for (const [i, m] of [results.memory.floor, results.memory.gatewayFastReader, ...results.memory.gateway].entries()) {
    if (m.error) out.push(`memory case ${i === 0 ? "floor" : "gateway"}: ${m.error}`);
  }
  for (const [i, m] of results.memory.heap.entries()) {
    if (m.error) out.push(`heap case, slow reader ${i + 1}: ${m.error}`);
    if (m.heap?.liveMidMb == null) out.push(`heap case, slow reader ${i + 1}: no mid-stream heap reading from the inspector`);
  }
  for (const m of results.metering) {
    check(`metering ${m.id}`, m.summary);
    for (const counter of /** @type {const} */ (["workerInvocations", "doRequests", "doRowsWritten", "d1RowsWritten", "queueOperations"])) {
      if (!(m.meter[counter] > 0)) out.push(`metering ${m.id}: ${counter} is 0`);
    }
  }
  for (const l of results.ledger) {
    check(`ledger on ${l.id}`, l.on);
    check(`ledger off ${l.id}`, l.off);
    check(`ledger off, no traces ${l.id}`, l.bare);
    if (l.doCallsPerRequest.bare !== 0) out.push(`ledger off, no traces ${l.id}: ${l.doCallsPerRequest.bare} Durable Object calls per request (expected none)`);
    if (l.doCallsPerRequest.off !== 0) out.push(`ledger off ${l.id}: ${l.doCallsPerRequest.off} Durable Object calls per request (expected none)`);
    if (!(l.doCallsPerRequest.on > 0)) out.push(`ledger on ${l.id}: no Durable Object call`);
  }
  for (const d of results.distance) {
    check(`distance ${d.variant} +${d.slowUpstreamMs} ms baseline`, d.baseline);
    check(`distance ${d.variant} +${d.slowUpstreamMs} ms delayed`, d.delayed);
  }
  return out;
}

async function main() {
  const outDir = SMOKE_RUN ? BUILD : join(ROOT, "bench");
  mkdirSync(BUILD, { recursive: true });
  const started = performance.now();

  // Before building: the report names the commit (and any uncommitted changes) the bundles come from.
  const machine = machineInfo(ROOT);
  const bundles = await step("bundles built (wrangler deploy --dry-run)", () => buildBundles(ROOT, BUILD));
  const mock = await step("mock provider started", () => startMockChild(ROOT));
  // Unreferenced: it fires only while something else keeps the process alive, e.g. a handle
  // left open after the results are written, which would otherwise hold CI until its own limit.
  setTimeout(() => {
    console.error(`[bench] the run did not finish within ${CONFIG.runLimitMs / 1000} s; the last step begun: ${current}`);
    for (const pid of [...workerdChildren(), mock.pid]) kill(pid);
    process.exit(1);
  }, CONFIG.runLimitMs).unref();
  let results;
  try {
    results = await runAll(CONFIG, mock, bundles);
  } finally {
    await mock.close();
  }
  const report = {
    mode: SMOKE_RUN ? "smoke" : "full",
    date: new Date().toISOString(),
    machine,
    config: CONFIG,
    ...results,
    targets: evaluateTargets(results),
    failures: failures(results),
    totalSeconds: (performance.now() - started) / 1000,
  };
  writeFileSync(join(outDir, "results.json"), `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(join(outDir, "results.md"), renderMarkdown(report));
  log(`results: ${join(outDir, "results.md")} (${report.totalSeconds.toFixed(0)} s)`);
  if (SMOKE_RUN) log(`smoke run: ${report.targets.length} targets evaluated; timings at these durations mean nothing, only failures count`);
  else for (const t of report.targets) log(`${t.met ? "met " : "MISS"} ${t.target}: ${t.measured}`);
  for (const f of report.failures) console.error(`[bench] FAILED ${f}`);
  // Explicit: a Miniflare whose dispose ran out of time (its workerd killed) still holds handles
  // in this process, which would keep it alive after the results are written.
  process.exit(report.failures.length ? 1 : 0);
}

main().catch((error) => {
  console.error(`[bench] ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.exit(1);
});
