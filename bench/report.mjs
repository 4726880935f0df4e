// @ts-check
/**
 * @module bench/report
 * The targets, judged on a run's numbers, and the results as markdown (bench/results.md); the
 * same data goes to results.json as it is.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { availableParallelism, release, totalmem } from "node:os";
import { join } from "node:path";
import { PRICES, PRICES_READ_ON, PRICE_SOURCES } from "./cloudflare-prices.mjs";

/**
 * @typedef {import("./scenarios.mjs").Measured} Measured
 * @typedef {import("./scenarios.mjs").Meter} Meter
 * @typedef {import("./load.mjs").Summary} Summary
 * @typedef {{ floorRps: number, gatewayRps: number, rpsRatio: number, addedP50Ms: number, floorCpuMicros: number, gatewayCpuMicros: number, cpuRatio: number }} PairSummary
 * @typedef {{ id: string, title: string, model: string, stream: boolean, connections: number, floor: Measured, gateway: Measured, pairs: PairSummary[] }} ScenarioResult
 *   `floor` and `gateway`: the pair (of `pairs`, one per floor-then-gateway run) with the median throughput ratio.
 * @typedef {{ liveBeforeMb: number, liveMidMb: number | null, liveAfterMb: number, peakUsedMb: number }} HeapResult
 * @typedef {{ bytes: number, seconds: number, baselineMb: number, peakMb: number, deltaMb: number, heap: HeapResult | null, error: string | null }} MemoryResult
 * @typedef {{ id: string, title: string, stream: boolean, connections: number, cpuFrom: string, summary: Summary, meter: Meter, cost: ReturnType<typeof import("./cost.mjs").costPerMillionRequests> }} MeteringResult
 * @typedef {{ variant: string, title: string, delayMs: number, slowUpstreamMs: number, baseline: Measured, delayed: Measured }} DistanceResult
 * @typedef {{ path: string, connections: number, run: Measured }} CalibrationResult
 * @typedef {{ id: string, title: string, model: string, stream: boolean, connections: number, on: Measured, off: Measured, bare: Measured, doCallsPerRequest: { on: number, off: number, bare: number } }} LedgerResult
 * @typedef {object} Results
 * @property {CalibrationResult[]} calibration
 * @property {ScenarioResult[]} scenarios
 * @property {{ words: number, connections: number, floor: Measured, jsRelay: Measured, gateway: Measured }} cpuCase
 *   `jsRelay`: the floor with `?relay=js`, the same stream read and re-emitted by JavaScript.
 * @property {{ words: number, bytesPerSecond: number, floor: MemoryResult, gateway: MemoryResult[], gatewayFastReader: MemoryResult, heap: MemoryResult[] }} memory
 *   `heap`: the slow-reader runs again, on a gateway with its inspector attached (JavaScript heap readings).
 * @property {MeteringResult[]} metering
 * @property {DistanceResult[]} distance
 * @property {LedgerResult[]} ledger
 * @typedef {{ target: string, measured: string, met: boolean }} TargetRow
 */

/** "A few MB" made a number. */
const MEMORY_LIMIT_MB = 5;
/** Other processes busier than this (% of one core) during a measured run make the report warn. */
const OTHER_LOAD_WARNING_PCT = 20;

/**
 * The measured run during which the rest of the machine was busiest.
 * @param {Results} r
 */
function otherLoad(r) {
  /** @type {Array<[string, Measured]>} */
  const runs = [
    ...r.calibration.map((c) => /** @type {[string, Measured]} */ ([`calibration ${c.path} @${c.connections}`, c.run])),
    ...r.scenarios.flatMap((s) => /** @type {Array<[string, Measured]>} */ ([[`${s.id} floor`, s.floor], [`${s.id} gateway`, s.gateway]])),
    ["cpu case floor", r.cpuCase.floor],
    ["cpu case floor, JavaScript relay", r.cpuCase.jsRelay],
    ["cpu case gateway", r.cpuCase.gateway],
    ...r.ledger.flatMap((l) =>
      /** @type {Array<[string, Measured]>} */ ([
        [`ledger on ${l.id}`, l.on],
        [`ledger off ${l.id}`, l.off],
        [`ledger off, no traces ${l.id}`, l.bare],
      ]),
    ),
    ...r.distance.flatMap((d) => /** @type {Array<[string, Measured]>} */ ([[`distance ${d.variant} +${d.slowUpstreamMs} ms, delay 0`, d.baseline], [`distance ${d.variant} +${d.slowUpstreamMs} ms, delayed`, d.delayed]])),
  ];
  return runs.reduce((worst, [what, run]) => (run.otherCpuPct > worst.pct ? { what, pct: run.otherCpuPct } : worst), { what: "", pct: -Infinity });
}

/**
 * @param {string} root
 */
export function machineInfo(root) {
  const cpu = /^model name\s*:\s*(.*)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? "unknown";
  const version = (/** @type {string} */ pkg) => JSON.parse(readFileSync(join(root, "node_modules", pkg, "package.json"), "utf8")).version;
  const workerd = execFileSync(join(root, "node_modules", "workerd", "bin", "workerd"), ["--version"], { encoding: "utf8" }).trim();
  const git = (/** @type {string[]} */ args) => execFileSync("git", args, { cwd: root, encoding: "utf8" }).trim();
  // The bundles are built from the working tree: say which commit, and whether src/ differed from it.
  const srcChanged = git(["status", "--porcelain", "--", "src", "wrangler.toml", "migrations"]) !== "";
  return {
    commit: `${git(["rev-parse", "--short", "HEAD"])}${srcChanged ? " + uncommitted changes in src/, wrangler.toml or migrations/" : ""}`,
    cpu,
    cores: availableParallelism(),
    memoryGb: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    node: process.version,
    workerd: `${workerd} (npm workerd ${version("workerd")})`,
    miniflare: version("miniflare"),
    wrangler: version("wrangler"),
  };
}

const f0 = (/** @type {number} */ n) => (Number.isFinite(n) ? n.toFixed(0) : "–");
const f1 = (/** @type {number} */ n) => (Number.isFinite(n) ? n.toFixed(1) : "–");
const f2 = (/** @type {number} */ n) => (Number.isFinite(n) ? n.toFixed(2) : "–");
/** The middle value (the mean of the two middle ones for an even count). */
export function median(/** @type {number[]} */ values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] ?? NaN) : ((sorted[mid - 1] ?? NaN) + (sorted[mid] ?? NaN)) / 2;
}
/** Live JavaScript heap mid-stream above its level before the stream, MB (NaN without a reading). */
const heldMidStream = (/** @type {MemoryResult} */ m) => (m.heap?.liveMidMb ?? Number.NaN) - (m.heap?.liveBeforeMb ?? Number.NaN);
const signed = (/** @type {number} */ n, digits = 2) => (Number.isFinite(n) ? `${n >= 0 ? "+" : ""}${n.toFixed(digits)}` : "–");
const usd = (/** @type {number} */ n) => `$${n < 0.01 && n > 0 ? n.toPrecision(2) : n.toFixed(3)}`;

/** The calibration's batch path, and the rows it writes per call. */
function batchCalibration(/** @type {Results} */ r) {
  const path = r.calibration.find((c) => c.path.startsWith("/d1-batch"))?.path ?? "";
  return { path, rows: Number(new URL(path || "/?rows=NaN", "http://x").searchParams.get("rows")) };
}

/**
 * What local D1 costs the workerd process (calibration, from the run whose connection count is
 * nearest to `connections`): per call carrying one row (`/d1` − `/null`), and per further row in
 * the same batch call ((`/d1-batch` − `/d1`) ÷ (rows − 1)).
 * @param {Results} r
 * @param {number} connections
 */
function localD1Micros(r, connections) {
  const [nearest] = r.calibration.map((c) => c.connections).sort((a, b) => Math.abs(a - connections) - Math.abs(b - connections));
  const cpu = (/** @type {string} */ path) => r.calibration.find((c) => c.connections === nearest && c.path === path)?.run.cpuMicrosPerRequest ?? NaN;
  const batch = batchCalibration(r);
  return { perCall: cpu("/d1") - cpu("/null"), perExtraRow: (cpu(batch.path) - cpu("/d1")) / (batch.rows - 1) };
}

/**
 * D1 calls (round trips) and statements per gateway request, from the non-streaming metering run.
 * @param {Results} r
 */
function d1PerRequest(r) {
  const meter = r.metering.find((m) => m.id === "nonstream")?.meter;
  if (!meter) return { calls: NaN, statements: NaN };
  return { calls: meter.d1Calls / meter.workerInvocations, statements: meter.d1Queries / meter.workerInvocations };
}

/**
 * Local D1's CPU per gateway request (an estimate): its calls and their further statements, each
 * at the calibrated price.
 * @param {Results} r
 * @param {number} connections
 */
function localD1PerRequest(r, connections) {
  const cost = localD1Micros(r, connections);
  const { calls, statements } = d1PerRequest(r);
  return calls * cost.perCall + Math.max(0, statements - calls) * cost.perExtraRow;
}

/**
 * The gateway's CPU per request without what local D1 costs (an estimate).
 * @param {Results} r
 * @param {Measured} gateway
 * @param {number} connections
 */
function withoutLocalD1(r, gateway, connections) {
  return gateway.cpuMicrosPerRequest - localD1PerRequest(r, connections);
}

/**
 * @param {Results} r
 * @returns {TargetRow[]}
 */
export function evaluateTargets(r) {
  /** @type {TargetRow[]} */
  const rows = [];
  const scenario = (/** @type {string} */ id) => {
    const s = r.scenarios.find((x) => x.id === id);
    if (!s) throw new Error(`No scenario ${id}`);
    return s;
  };
  /** `values`' median, and all of them in run order when there is more than one. */
  const summary = (/** @type {number[]} */ values, /** @type {(n: number) => string} */ format) => {
    const mid = median(values);
    return { mid, runs: values.length > 1 ? `; median of ${values.length} runs: ${values.map(format).join(", ")}` : "" };
  };
  for (const id of ["nonstream@32", "stream@32"]) {
    const { floor, gateway, title, pairs } = scenario(id);
    const { mid, runs } = summary(pairs.map((p) => p.rpsRatio), f2);
    rows.push({ target: `Throughput ≥ 0.7 × floor at 32 connections (${title})`, measured: `${f0(gateway.rps)} vs ${f0(floor.rps)} req/s = ${f2(mid)} ×${runs}`, met: mid >= 0.7 });
  }
  for (const id of ["nonstream@1", "stream@1"]) {
    const { floor, gateway, title, pairs } = scenario(id);
    const { mid, runs } = summary(pairs.map((p) => p.addedP50Ms), (n) => signed(n));
    rows.push({ target: `Added p50 latency ≤ 1 ms at 1 connection (${title})`, measured: `${signed(mid)} ms (${f2(gateway.latencyMs.p50)} vs ${f2(floor.latencyMs.p50)} ms in the median-throughput run${runs})`, met: mid <= 1 });
  }
  for (const id of ["nonstream@1", "nonstream@32"]) {
    const { floor, gateway, connections, pairs } = scenario(id);
    const { mid, runs } = summary(pairs.map((p) => p.cpuRatio), f2);
    const adjusted = withoutLocalD1(r, gateway, connections);
    rows.push({
      target: `CPU per request ≤ 2 × floor (non-streaming, ${connections} connection${connections > 1 ? "s" : ""})`,
      measured: `${f2(mid)} ×${runs} (median-throughput run: ${f0(gateway.cpuMicrosPerRequest)} vs ${f0(floor.cpuMicrosPerRequest)} µs; without local D1, est.: ${f0(adjusted)} µs = ${f2(adjusted / floor.cpuMicrosPerRequest)} ×)`,
      met: mid <= 2,
    });
  }
  const cpu = r.cpuCase.gateway.cpuMicrosPerRequest;
  rows.push({
    target: `Streamed ${r.cpuCase.words.toLocaleString("en")}-chunk Anthropic translation ≤ 3 ms CPU`,
    measured: `${f0(cpu)} µs (without local D1, est.: ${f0(withoutLocalD1(r, r.cpuCase.gateway, r.cpuCase.connections))} µs; floor ${f0(r.cpuCase.floor.cpuMicrosPerRequest)} µs; the floor relaying the chunks in JavaScript, nothing else: ${f0(r.cpuCase.jsRelay.cpuMicrosPerRequest)} µs)`,
    met: cpu <= 3000,
  });
  const streamed = (r.memory.gateway[0]?.bytes ?? 0) / 1e6;
  const held = r.memory.heap.map(heldMidStream);
  const worstHeld = Math.max(...held);
  rows.push({
    target: `${f1(streamed)} MB stream raises the isolate's memory by at most a few MB (live JS heap mid-stream, ≤ ${MEMORY_LIMIT_MB} MB)`,
    measured: `${held.map((h) => signed(h, 2)).join(" MB, ")} MB live heap, slow reader, 2 runs (process RSS: +${r.memory.gateway.map((m) => f1(m.deltaMb)).join(" MB, +")} MB; JS heap peak incl. garbage above live before: ${r.memory.heap.map((m) => signed((m.heap?.peakUsedMb ?? NaN) - (m.heap?.liveBeforeMb ?? NaN), 1)).join(" MB, ")} MB)`,
    met: worstHeld <= MEMORY_LIMIT_MB,
  });
  for (const m of r.metering) {
    rows.push({
      target: `≤ $3 per million requests (${m.title})`,
      measured: `${usd(m.cost.totalUsdPerMillion)} at ${m.connections} connections (${usd(m.cost.lowTrafficUsdPerMillion)} when every trace travels alone)`,
      met: m.cost.totalUsdPerMillion <= 3,
    });
  }
  for (const d of r.distance) {
    const added = (d.delayed.ttftMs?.p50 ?? NaN) - (d.baseline.ttftMs?.p50 ?? NaN);
    rows.push({
      target: `Ledger ${d.delayMs} ms away: added p50 TTFT ≤ 10 ms (${d.title}, upstream first token +${d.slowUpstreamMs} ms)`,
      measured: `${signed(added, 1)} ms`,
      met: added <= 10,
    });
  }
  return rows;
}

/**
 * @param {string[]} header
 * @param {Array<Array<string | number>>} rows
 */
function table(header, rows) {
  return [`| ${header.join(" | ")} |`, `| ${header.map(() => "---").join(" | ")} |`, ...rows.map((row) => `| ${row.join(" | ")} |`)].join("\n");
}

/** @param {{ p50: number, p99: number } | null} spread */
const pp = (spread) => (spread ? `${f2(spread.p50)} / ${f2(spread.p99)}` : "–");

/**
 * @param {Results & { mode: string, date: string, machine: ReturnType<typeof machineInfo>, config: Record<string, number>, targets: TargetRow[], failures: string[], totalSeconds: number }} report
 */
export function renderMarkdown(report) {
  const m = report.machine;
  const out = [];
  out.push(
    "# Switchyard benchmark results",
    "",
    `Written by \`npm run bench${report.mode === "smoke" ? ":smoke" : ""}\` on ${report.date} (${report.mode} run, ${f0(report.totalSeconds)} s). How to run it and what each scenario means: bench/README.md.`,
    "",
    ...(report.mode === "smoke" ? ["**Smoke run**: durations of a fraction of a second, cold isolates; the timings below mean nothing. Only failed requests and meters count.", ""] : []),
    "## Machine",
    "",
    table(
      ["", ""],
      [
        ["Gateway source", `commit ${m.commit}`],
        ["CPU", `${m.cpu}, ${m.cores} cores`],
        ["Memory", `${m.memoryGb} GB`],
        ["Kernel", m.kernel],
        ["Node (load generator, mock provider)", m.node],
        ["workerd", m.workerd],
        ["Miniflare", m.miniflare],
        ["wrangler (bundling)", m.wrangler],
      ],
    ),
    "",
    "Everything runs on this one machine: the load generator, the mock provider (a separate Node process) and one workerd process per Worker under test, competing for the same cores.",
    "",
    "## Targets",
    "",
    table(["Target", "Measured", "Met"], report.targets.map((t) => [t.target, t.measured, t.met ? "yes" : "**no**"])),
    "",
  );
  if (report.failures.length) out.push("## Failed requests", "", ...report.failures.map((f) => `- ${f}`), "");
  const busiest = otherLoad(report);
  if (busiest.pct > OTHER_LOAD_WARNING_PCT) {
    out.push(`**Other processes (or the hypervisor) competed for the cores**: up to ${f0(busiest.pct)} % of a core during ${busiest.what}. The timings of such runs are skewed; rerun on a quiet machine.`, "");
  }

  out.push(
    "## Calibration: what workerd and local D1 cost by themselves",
    "",
    `bench/calibration-worker.js, ${report.config.calibrationMs} ms per run: \`/null\` answers "ok"; \`/d1\` first writes one row to Miniflare's local D1 (JavaScript Workers and a Durable Object in the same workerd process, i.e. CPU a deployed Worker is not billed for); \`${batchCalibration(report).path}\` writes ${batchCalibration(report).rows} rows in one batch call. The gateway writes its generation records in windows, one batch call each (${f2(d1PerRequest(report).calls)} D1 calls and ${f2(d1PerRequest(report).statements)} statements per request in the metering run); the "without local D1" figures below subtract the calls and their further statements at these prices.`,
    "",
    table(
      ["Connections", "/null req/s", "/null CPU µs", "/d1 req/s", "/d1 CPU µs", "Batch req/s", "Batch CPU µs", "Local D1 call, CPU µs", "Each further row in a call, CPU µs"],
      [...new Set(report.calibration.map((c) => c.connections))].map((connections) => {
        const run = (/** @type {string} */ path) => /** @type {Measured} */ (report.calibration.find((c) => c.connections === connections && c.path === path)?.run);
        const batch = run(batchCalibration(report).path);
        const cost = localD1Micros(report, connections);
        return [connections, f0(run("/null").rps), f0(run("/null").cpuMicrosPerRequest), f0(run("/d1").rps), f0(run("/d1").cpuMicrosPerRequest), f0(batch.rps), f0(batch.cpuMicrosPerRequest), f0(cost.perCall), f0(cost.perExtraRow)];
      }),
    ),
    "",
  );

  out.push(
    "## Floor and gateway",
    "",
    `Each run: ${report.config.warmupMs} ms warm-up, then ${report.config.durationMs} ms measured; floor and gateway alternate, ${report.config.repeats} time${report.config.repeats > 1 ? "s" : ""} per scenario. Shown: the run whose throughput ratio is the median (every run is in "Run to run" below). Latency and TTFT in ms (p50 / p99); CPU: µs of the Worker's workerd process per request.`,
    "",
    table(
      ["Scenario", "Conns", "Floor req/s", "Gateway req/s", "Ratio", "Floor latency", "Gateway latency", "Added p50", "Floor TTFT", "Gateway TTFT", "Floor CPU", "Gateway CPU", "CPU ratio", "Gateway CPU without local D1 (est.)", "Errors"],
      report.scenarios.map((s) => [
        s.title,
        s.connections,
        f0(s.floor.rps),
        f0(s.gateway.rps),
        f2(s.gateway.rps / s.floor.rps),
        pp(s.floor.latencyMs),
        pp(s.gateway.latencyMs),
        signed(s.gateway.latencyMs.p50 - s.floor.latencyMs.p50),
        s.stream ? pp(s.floor.ttftMs) : "–",
        s.stream ? pp(s.gateway.ttftMs) : "–",
        f0(s.floor.cpuMicrosPerRequest),
        f0(s.gateway.cpuMicrosPerRequest),
        f2(s.gateway.cpuMicrosPerRequest / s.floor.cpuMicrosPerRequest),
        `${f0(withoutLocalD1(report, s.gateway, s.connections))} (${f2(withoutLocalD1(report, s.gateway, s.connections) / s.floor.cpuMicrosPerRequest)} ×)`,
        `${s.floor.errors} / ${s.gateway.errors}`,
      ]),
    ),
    "",
    `How busy each process was during each run (% of one core; the machine has ${m.cores}), to see what limited throughput. "Other" is every other process on the machine plus CPU the hypervisor took from this VM (steal); much above 0 means something else competed for the cores and skewed the run.`,
    "",
    table(
      ["Scenario", "Conns", "Floor: workerd / client / mock / other", "Gateway: workerd / client / mock / other", "Bytes per answer (floor / gateway)"],
      report.scenarios.map((s) => [
        s.title,
        s.connections,
        `${f0(s.floor.workerdCpuPct)} / ${f0(s.floor.clientCpuPct)} / ${f0(s.floor.mockCpuPct)} / ${f0(s.floor.otherCpuPct)}`,
        `${f0(s.gateway.workerdCpuPct)} / ${f0(s.gateway.clientCpuPct)} / ${f0(s.gateway.mockCpuPct)} / ${f0(s.gateway.otherCpuPct)}`,
        `${f0(s.floor.bytesPerRequest)} / ${f0(s.gateway.bytesPerRequest)}`,
      ]),
    ),
    "",
  );

  if (report.config.repeats > 1) {
    out.push(
      "### Run to run",
      "",
      "Every floor-then-gateway run of each scenario, in order. The targets above take each figure's median over these runs.",
      "",
      table(
        ["Scenario", "Conns", "Floor req/s", "Gateway req/s", "Ratio", "Added p50 ms", "Floor CPU µs", "Gateway CPU µs", "CPU ratio"],
        report.scenarios.flatMap((s) =>
          s.pairs.map((p, i) => [
            i === 0 ? s.title : "",
            i === 0 ? s.connections : "",
            f0(p.floorRps),
            f0(p.gatewayRps),
            f2(p.rpsRatio),
            signed(p.addedP50Ms),
            f0(p.floorCpuMicros),
            f0(p.gatewayCpuMicros),
            f2(p.cpuRatio),
          ]),
        ),
      ),
      "",
    );
  }

  const c = report.cpuCase;
  out.push(
    `## CPU: streamed ${c.words.toLocaleString("en")}-chunk Anthropic translation`,
    "",
    `\`anthropic/claude-haiku-4.5\`, \`[[words:${c.words}]]\`, ${c.connections} connections, ${report.config.cpuCaseMs} ms measured. The floor forwards the same ${c.words.toLocaleString("en")} words from the mock's OpenAI path (it cannot translate); "JavaScript relay" is the floor reading each upstream chunk and enqueueing it on a pull-based stream (\`?relay=js\`), nothing else: the runtime's cost of any Worker touching a stream's chunks.`,
    "",
    table(
      ["", "Requests", "req/s", "Latency p50 / p99 ms", "CPU µs per request"],
      [
        ["Floor", c.floor.requests, f0(c.floor.rps), pp(c.floor.latencyMs), f0(c.floor.cpuMicrosPerRequest)],
        ["Floor, JavaScript relay", c.jsRelay.requests, f0(c.jsRelay.rps), pp(c.jsRelay.latencyMs), f0(c.jsRelay.cpuMicrosPerRequest)],
        ["Gateway", c.gateway.requests, f0(c.gateway.rps), pp(c.gateway.latencyMs), f0(c.gateway.cpuMicrosPerRequest)],
      ],
    ),
    "",
  );

  const mem = report.memory;
  out.push(
    "## Memory: one large stream read slowly",
    "",
    `\`[[words:${mem.words}]]\` streamed through the Anthropic translation, read at about ${mem.bytesPerSecond / 1e6} MB/s (and once as fast as possible); workerd's RSS sampled every 20 ms, baseline = mean of 10 samples just before.`,
    "",
    "Reader-bound: whether the reader, not the producer, set the pace (took ≥ 90 % of bytes ÷ read rate); only then does a gateway that ignores backpressure have to hold the difference.",
    "",
    table(
      ["", "Streamed", "Took", "Reader-bound", "RSS before", "RSS peak", "Peak − baseline"],
      [
        ["Floor (OpenAI path, same words)", mem.floor, mem.bytesPerSecond],
        ["Gateway, reader as fast as it can (first large stream; not a target)", mem.gatewayFastReader, Infinity],
        ...mem.gateway.map((g, i) => [`Gateway, slow reader, run ${i + 1}`, g, mem.bytesPerSecond]),
      ].map(([name, r, rate]) => {
        const x = /** @type {MemoryResult} */ (r);
        const readerBound = !Number.isFinite(rate) ? "–" : x.seconds >= (0.9 * x.bytes) / Number(rate) ? "yes" : "no";
        return [String(name), `${f1(x.bytes / 1e6)} MB`, `${f1(x.seconds)} s`, readerBound, `${f1(x.baselineMb)} MB`, `${f1(x.peakMb)} MB`, `+${f1(x.deltaMb)} MB`];
      }),
    ),
    "",
    "RSS counts garbage V8 has not collected yet and heap pages it keeps after collecting. So the same slow reads run again on a gateway started with workerd's inspector (the RSS runs above have none attached: attaching it and forcing collections changes how RSS moves), which reads the isolate's live JavaScript heap — used size right after a forced full collection — before the stream, once mid-stream (at half the bytes) and after, and samples the used size (garbage included) every 100 ms. Held mid-stream = live mid-stream − live before: what the stream itself keeps while the reader lags.",
    "",
    table(
      ["", "Streamed", "Took", "Live heap before / mid-stream / after", "Held mid-stream", "Heap peak (garbage included)"],
      mem.heap.map((x, i) => {
        const h = x.heap;
        return [
          `Gateway, slow reader, run ${i + 1}`,
          `${f1(x.bytes / 1e6)} MB`,
          `${f1(x.seconds)} s`,
          h ? `${f1(h.liveBeforeMb)} / ${h.liveMidMb === null ? "–" : f1(h.liveMidMb)} / ${f1(h.liveAfterMb)} MB` : "–",
          h?.liveMidMb == null ? "–" : `${signed(heldMidStream(x), 2)} MB`,
          h ? `${f1(h.peakUsedMb)} MB` : "–",
        ];
      }),
    ),
    "",
  );

  out.push(
    "## Billable operations and cost per million requests",
    "",
    `Instrumented gateway (bench/metered-entry.ts) in its own run (its CPU is not used), ${report.config.meteringMs} ms of load after the warm-up; meters read ${report.config.settleMs} ms after the last response. Prices: bench/cloudflare-prices.mjs, read ${PRICES_READ_ON}; included monthly allowances and the $5 minimum left out. Workers CPU comes from the floor-versus-gateway scenario named in each section.`,
    "",
  );
  for (const run of report.metering) {
    const meter = run.meter;
    const n = meter.workerInvocations;
    out.push(
      `### ${run.title} (${n} requests, ${run.connections} connections; CPU from ${run.cpuFrom})`,
      "",
      `Per request: ${f2(meter.doRequests / n)} Durable Object calls (${f2(meter.ledgerRequests / n)} to the ledger, the rest to the Health object), ${f2(meter.doAlarms / n)} alarms, ${f2(meter.doRowsRead / n)} DO rows read, ${f2(meter.doRowsWritten / n)} DO rows written (${f2(meter.doSetAlarms / n)} of them setAlarm), ${f2(meter.d1Calls / n)} D1 calls (${f2(meter.d1Queries / n)} statements), ${f2(meter.d1RowsRead / n)} D1 rows read, ${f2(meter.d1RowsWritten / n)} D1 rows written.`,
      "",
      table(
        ["Item", "Units per request", "Price per million units", "$ per million requests", "Note"],
        [
          ...run.cost.lines.map((line) => [line.item, line.unitsPerRequest.toPrecision(3), `$${PRICES[line.key].usdPerMillion}`, usd(line.usdPerMillionRequests), line.note]),
          ["**Total**", "", "", `**${usd(run.cost.totalUsdPerMillion)}**`, ""],
          ["Total at low traffic", "", "", usd(run.cost.lowTrafficUsdPerMillion), "each trace alone in its message and consumer batch (3 queue operations and 1 consumer invocation per request)"],
        ],
      ),
      "",
    );
  }

  out.push(
    "## Ledger distance",
    "",
    `Streaming, 1 connection, TTFT p50 / p99 in ms; ${report.config.distanceMs} ms per cell. Every call on a ledger stub waits the delay before it is made (bench/metered-entry.ts); baseline: the same bundle with no delay, in the same run.`,
    "",
    table(
      ["Variant", "Upstream first-token delay", "Requests (0 / delayed)", "TTFT, delay 0", "TTFT, delayed", "Added p50", "Added p99"],
      report.distance.map((d) => [
        d.title,
        `${d.slowUpstreamMs} ms`,
        `${d.baseline.requests} / ${d.delayed.requests}`,
        pp(d.baseline.ttftMs),
        pp(d.delayed.ttftMs),
        signed((d.delayed.ttftMs?.p50 ?? NaN) - (d.baseline.ttftMs?.p50 ?? NaN), 1),
        signed((d.delayed.ttftMs?.p99 ?? NaN) - (d.baseline.ttftMs?.p99 ?? NaN), 1),
      ]),
    ),
    "",
    "## Ledger on and off: what admission and settlement add",
    "",
    `The metered gateway (bench/metered-entry.ts) with its ledger objects, and the same process with every ledger call answered in the Worker instead (\`POST /__bench/ledger/off\`: admitted with room to spare, settled as charged, nothing stored). Each row: runs in the order on, off, bare, bare, off, on, on, off, bare, ${Math.round(report.config.durationMs / 2)} ms each after ${report.config.warmupMs} ms warm-up; each side shows its run with the median CPU per request. Latency and TTFT p50 in ms; CPU: µs of the workerd process (Worker, Durable Objects and local D1) per request.`,
    "",
    table(
      ["Scenario", "Conns", "req/s on / off", "Ratio", "Latency p50 on / off", "Added p50", "TTFT p50 on / off", "CPU on / off", "Added CPU", "Ledger calls per request on / off", "Errors"],
      report.ledger.map((l) => [
        l.title,
        l.connections,
        `${f0(l.on.rps)} / ${f0(l.off.rps)}`,
        f2(l.on.rps / l.off.rps),
        `${f2(l.on.latencyMs.p50)} / ${f2(l.off.latencyMs.p50)}`,
        signed(l.on.latencyMs.p50 - l.off.latencyMs.p50),
        l.stream ? `${f2(l.on.ttftMs?.p50 ?? NaN)} / ${f2(l.off.ttftMs?.p50 ?? NaN)}` : "–",
        `${f0(l.on.cpuMicrosPerRequest)} / ${f0(l.off.cpuMicrosPerRequest)}`,
        `${signed(l.on.cpuMicrosPerRequest - l.off.cpuMicrosPerRequest, 0)} µs`,
        `${f2(l.doCallsPerRequest.on)} / ${f2(l.doCallsPerRequest.off)}`,
        `${l.on.errors} / ${l.off.errors}`,
      ]),
    ),
    "",
    "Before the upstream call a request makes one of those calls (admission); the other (settlement) runs after the answer, off the client's path. The distance runs above show it: a ledger 50 ms away adds about one 50 ms round trip, not two.",
    "",
    "### Where the gateway's CPU goes",
    "",
    `The same runs, with two more per case (\`bare\`, twice, between the off runs): ledger off and a workspace that exports no traces, so nothing is enqueued, consumed or delivered in the process. CPU in µs of the workerd process per request. Differences: the ledger objects (on − off), trace export — enqueue, the consumer and its webhook delivery, which in production run as separate consumer invocations (off − bare); what is left is the request path plus its generation record in local D1 (calibrated above, subtracted in the last columns). The floor's CPU is from the floor-versus-gateway run of the same case.`,
    "",
    table(
      ["Scenario", "Conns", "All on", "Ledger objects", "Trace export", "Request path", "Local D1 (est.)", "Request path without local D1", "Floor", "Ratio to floor"],
      report.ledger.map((l) => {
        const floor = report.scenarios.find((s) => s.id === l.id)?.floor.cpuMicrosPerRequest ?? NaN;
        const d1 = localD1PerRequest(report, l.connections);
        const path = l.bare.cpuMicrosPerRequest - d1;
        return [
          l.title,
          l.connections,
          f0(l.on.cpuMicrosPerRequest),
          f0(l.on.cpuMicrosPerRequest - l.off.cpuMicrosPerRequest),
          f0(l.off.cpuMicrosPerRequest - l.bare.cpuMicrosPerRequest),
          f0(l.bare.cpuMicrosPerRequest),
          f0(d1),
          f0(path),
          f0(floor),
          `${f2(path / floor)} ×`,
        ];
      }),
    ),
    "",
    "",
    "## How the numbers are measured",
    "",
    "- **Targets under test**: the production bundle (`wrangler deploy --dry-run`) and the floor (bench/floor-worker.js, a pass-through Worker), each in its own Miniflare/workerd process, served on a direct workerd socket on 127.0.0.1 (Miniflare's entry socket would add its entry Worker to every request), in front of the mock provider (tools/mock-provider) in its own Node process. D1 and Durable Objects are Miniflare's local implementations inside the gateway's workerd process. Every `fetch()` from a Worker passes through Miniflare's outbound interceptor (a JavaScript Worker in the same process), for the floor and the gateway alike.",
    "- **Requests**: `POST /api/v1/chat/completions`, `openai/gpt-4o-mini`, prompt `Hello [[words:20]]` (20 words), `max_tokens` 64; the floor is sent the exact body the gateway sends upstream (captured from the mock), so the mock does the same work for both.",
    "- **Load**: node:http with a keep-alive agent, N connections each sending back to back; req/s = completed requests ÷ measured wall time.",
    "- **Latency**: first byte sent to last byte received. **TTFT**: to the first SSE event carrying non-empty content (the gateway's `: SWITCHYARD PROCESSING` comment and the role chunk do not count).",
    "- **CPU per request**: utime + stime of the target's workerd process (all threads; /proc/<pid>/stat, clock ticks of `getconf CLK_TCK`) over the measured window ÷ requests completed. For the gateway this includes its Durable Objects and the local D1 simulation (see Calibration), which a deployed Worker is not billed for as CPU; for both, Miniflare's outbound interceptor.",
    "- **Memory**: VmRSS of the gateway's workerd process (/proc/<pid>/status).",
    `- **Prices**: ${PRICE_SOURCES.join(", ")}.`,
    "",
  );
  return `${out.join("\n")}\n`;
}
