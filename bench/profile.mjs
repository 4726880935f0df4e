#!/usr/bin/env node
// @ts-check
/**
 * @module bench/profile
 * `npm run bench:profile -- [--case nonstream|stream|translate|words] [--connections N] [--seconds S]`:
 * the production gateway under one load case with V8's sampling profiler attached through
 * workerd's inspector, so "where does the CPU go" has an answer in functions, not guesses.
 * Prints the functions with the most self time and the most inclusive time, and writes the
 * profile to bench/.build/gateway.cpuprofile (open it in Chrome DevTools, Performance tab).
 *
 * What it sees: the gateway's isolate, which in Miniflare also runs its Durable Objects and the
 * trace queue consumers (same script). It does not see workerd's own C++ (HTTP, the SQLite of
 * local D1 and DOs, the KJ event loop), which `npm run bench` counts in the process's CPU.
 */
import { writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { buildBundles } from "./build.mjs";
import { cdp, freePort } from "./inspector.mjs";
import { startMockChild } from "./mock.mjs";
import { loadCase, measure, option as arg } from "./scenarios.mjs";
import { provision, startGateway } from "./targets.mjs";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const BUILD = join(ROOT, "bench", ".build");


/**
 * @typedef {{ id: number, callFrame: { functionName: string, url: string, lineNumber: number, columnNumber: number }, hitCount: number, children?: number[] }} ProfileNode
 * @typedef {{ nodes: ProfileNode[], startTime: number, endTime: number, samples: number[], timeDeltas: number[] }} Profile
 */

/**
 * Self and inclusive sample counts per function (name + location), recursion counted once.
 * @param {Profile} profile
 */
function summarize(profile) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  /** @type {Map<number, number>} */
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  /** @param {ProfileNode} n */
  const label = (n) => {
    const { functionName, url, lineNumber } = n.callFrame;
    const file = url ? url.split("/").slice(-1)[0] : "";
    return `${functionName || "(anonymous)"}${file ? ` ${file}:${lineNumber + 1}` : ""}`;
  };
  /** @type {Map<string, number>} */
  const self = new Map();
  /** @type {Map<string, number>} */
  const total = new Map();
  for (const id of profile.samples) {
    const node = byId.get(id);
    if (!node) continue;
    self.set(label(node), (self.get(label(node)) ?? 0) + 1);
    const seen = new Set();
    for (let at = /** @type {number | undefined} */ (id); at !== undefined; at = parent.get(at)) {
      const l = label(/** @type {ProfileNode} */ (byId.get(at)));
      if (seen.has(l)) continue;
      seen.add(l);
      total.set(l, (total.get(l) ?? 0) + 1);
    }
  }
  return { self, total, samples: profile.samples.length };
}

async function main() {
  const which = arg("case", "nonstream");
  const { body, stream } = loadCase(which);
  const connections = Number(arg("connections", "8"));
  const seconds = Number(arg("seconds", "10"));
  const top = Number(arg("top", "40"));

  const bundles = await buildBundles(ROOT, BUILD);
  const mock = await startMockChild(ROOT);
  const inspectorPort = await freePort();
  const gateway = await startGateway(ROOT, "profile", bundles.gateway, mock.url, {}, { inspectorPort });
  try {
    const key = await provision(gateway, "bench");
    const endpoint = { instance: gateway, key };
    // Warm the JIT and the isolate caches before profiling.
    await measure(endpoint, body, stream, connections, { warmupMs: 0, durationMs: 2000 }, mock.pid);

    const targets = /** @type {Array<{ id: string, webSocketDebuggerUrl: string }>} */ (await (await fetch(`http://127.0.0.1:${inspectorPort}/json/list`)).json());
    const target = targets.find((t) => t.id.includes("profile")) ?? targets[0];
    if (!target) throw new Error("workerd's inspector lists no isolate");
    const client = await cdp(target.webSocketDebuggerUrl);
    await client.send("Profiler.enable");
    await client.send("Profiler.setSamplingInterval", { interval: 100 });
    await client.send("Profiler.start");
    const run = await measure(endpoint, body, stream, connections, { warmupMs: 0, durationMs: seconds * 1000 }, mock.pid);
    const { profile } = /** @type {{ profile: Profile }} */ (await client.send("Profiler.stop"));
    client.close();

    const file = join(BUILD, "gateway.cpuprofile");
    writeFileSync(file, JSON.stringify(profile));
    const { self, total, samples } = summarize(profile);
    const wallUs = profile.endTime - profile.startTime;
    const idle = self.get("(idle)") ?? 0;
    console.log(`case ${which} @${connections}: ${run.requests} requests, ${run.rps.toFixed(0)} req/s, ${run.errors} errors, workerd CPU ${run.cpuMicrosPerRequest.toFixed(0)} µs/request`);
    console.log(`isolate: ${samples} samples over ${(wallUs / 1e6).toFixed(1)} s, ${(((samples - idle) / samples) * 100).toFixed(0)} % not idle; ≈ ${(((samples - idle) / samples) * wallUs / run.requests).toFixed(0)} µs of JavaScript per request`);
    /** @param {string} title @param {Map<string, number>} counts */
    const print = (title, counts) => {
      console.log(`\n${title} (% of non-idle samples)`);
      const busy = samples - idle;
      for (const [name, n] of [...counts].filter(([l]) => l !== "(idle)" && l !== "(root)").sort((a, b) => b[1] - a[1]).slice(0, top)) {
        console.log(`${((n / busy) * 100).toFixed(1).padStart(6)} %  ${name}`);
      }
    };
    print("Self time", self);
    print("Inclusive time", total);
    console.log(`\nprofile: ${file}`);
  } finally {
    await gateway.dispose();
    await mock.close();
  }
}

main().catch((error) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
  process.exit(1);
});
