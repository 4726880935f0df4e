#!/usr/bin/env node
// @ts-check
/**
 * @module bench/ab
 * `npm run bench:ab -- [--base REF] [--case nonstream|stream|translate|words] [--connections N]
 * [--rounds R] [--seconds S]`: the production gateway built from git REF (default HEAD) against
 * the working tree's, side by side in one run, driven in alternating pairs (base first in even
 * rounds, the working tree first in odd ones).
 *
 * Why: on this VM the floor alone moves by a third between runs of `npm run bench`, so a change
 * worth a few per cent cannot be seen there. Paired runs a few seconds apart share the drift; the
 * median of the paired differences, and how many pairs agree on its sign, can see it.
 *
 * Both sides run with the working tree's wrangler.toml, migrations and seed (startGateway), so
 * compare request-path changes, not schema changes. REF is checked out in a temporary git
 * worktree that borrows this checkout's node_modules and is removed afterwards.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { buildBundles } from "./build.mjs";
import { startMockChild } from "./mock.mjs";
import { LOAD_CASES, chatBody, measure } from "./scenarios.mjs";
import { provision, startGateway } from "./targets.mjs";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const BUILD = join(ROOT, "bench", ".build", "ab");

/** @param {string} name @param {string} fallback */
function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] ? /** @type {string} */ (process.argv[i + 1]) : fallback;
}

/** @param {number[]} xs */
function median(xs) {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? /** @type {number} */ (sorted[mid]) : (/** @type {number} */ (sorted[mid - 1]) + /** @type {number} */ (sorted[mid])) / 2;
}

/**
 * Bundle REF in a temporary worktree.
 * @param {string} ref
 * @returns {Promise<{ gateway: string, commit: string }>}
 */
async function buildRef(ref) {
  const commit = execFileSync("git", ["rev-parse", "--short", `${ref}^{commit}`], { cwd: ROOT, encoding: "utf8" }).trim();
  const tree = mkdtempSync(join(tmpdir(), "switchyard-ab-"));
  execFileSync("git", ["worktree", "add", "--detach", "--force", tree, commit], { cwd: ROOT, stdio: "ignore" });
  try {
    symlinkSync(join(ROOT, "node_modules"), join(tree, "node_modules"), "dir");
    const { gateway } = await buildBundles(tree, join(BUILD, "base"));
    return { gateway, commit };
  } finally {
    execFileSync("git", ["worktree", "remove", "--force", tree], { cwd: ROOT, stdio: "ignore" });
    if (existsSync(tree)) rmSync(tree, { recursive: true, force: true });
  }
}

async function main() {
  const which = arg("case", "nonstream");
  const chosen = LOAD_CASES[which];
  if (!chosen) throw new Error(`--case must be one of ${Object.keys(LOAD_CASES).join(", ")}`);
  const connections = Number(arg("connections", "32"));
  const rounds = Number(arg("rounds", "6"));
  const seconds = Number(arg("seconds", "3"));
  if (!(rounds >= 2 && connections >= 1 && seconds > 0)) throw new Error("--rounds ≥ 2, --connections ≥ 1, --seconds > 0");

  const [base, work] = await Promise.all([buildRef(arg("base", "HEAD")), buildBundles(ROOT, join(BUILD, "work"))]);
  const mock = await startMockChild(ROOT);
  const sides = {
    base: await startGateway(ROOT, "ab-base", base.gateway, mock.url),
    work: await startGateway(ROOT, "ab-work", work.gateway, mock.url),
  };
  try {
    const endpoints = {
      base: { instance: sides.base, key: await provision(sides.base, "bench") },
      work: { instance: sides.work, key: await provision(sides.work, "bench") },
    };
    const body = chatBody(chosen.model, chosen.content, { stream: chosen.stream, maxTokens: chosen.maxTokens ?? 64 });
    const timing = { warmupMs: 1000, durationMs: seconds * 1000 };
    /** @type {Array<Record<"base" | "work", { cpu: number, rps: number, errors: number }>>} */
    const pairs = [];
    for (let round = 0; round < rounds; round++) {
      /** @type {Partial<Record<"base" | "work", { cpu: number, rps: number, errors: number }>>} */
      const pair = {};
      /** @type {Array<"base" | "work">} */
      const order = round % 2 ? ["work", "base"] : ["base", "work"];
      for (const side of order) {
        const run = await measure(endpoints[side], body, chosen.stream, connections, timing, mock.pid);
        pair[side] = { cpu: run.cpuMicrosPerRequest, rps: run.rps, errors: run.errors };
      }
      const done = /** @type {Record<"base" | "work", { cpu: number, rps: number, errors: number }>} */ (pair);
      pairs.push(done);
      console.log(`round ${round + 1}/${rounds}: CPU µs/request base ${done.base.cpu.toFixed(0)}, work ${done.work.cpu.toFixed(0)}; req/s ${done.base.rps.toFixed(0)} / ${done.work.rps.toFixed(0)}`);
    }
    const errors = pairs.reduce((n, p) => n + p.base.errors + p.work.errors, 0);
    const cpuDiffs = pairs.map((p) => p.work.cpu - p.base.cpu);
    const rpsDiffs = pairs.map((p) => p.work.rps - p.base.rps);
    const baseCpu = median(pairs.map((p) => p.base.cpu));
    console.log(`\n${which} @${connections}, ${rounds} pairs of ${seconds} s; base ${base.commit}, work = the working tree${errors ? `; ${errors} ERRORS` : ""}`);
    console.log(`CPU µs/request, median: base ${baseCpu.toFixed(0)}, work ${median(pairs.map((p) => p.work.cpu)).toFixed(0)}`);
    console.log(`  paired difference (work − base), median: ${median(cpuDiffs) >= 0 ? "+" : ""}${median(cpuDiffs).toFixed(0)} µs (${((median(cpuDiffs) / baseCpu) * 100).toFixed(1)} %); work lower in ${cpuDiffs.filter((d) => d < 0).length} of ${rounds} pairs`);
    console.log(`req/s, median: base ${median(pairs.map((p) => p.base.rps)).toFixed(0)}, work ${median(pairs.map((p) => p.work.rps)).toFixed(0)}; paired difference ${median(rpsDiffs) >= 0 ? "+" : ""}${median(rpsDiffs).toFixed(0)}, work higher in ${rpsDiffs.filter((d) => d > 0).length} of ${rounds} pairs`);
    if (errors) process.exitCode = 1;
  } finally {
    await sides.base.dispose();
    await sides.work.dispose();
    await mock.close();
  }
}

main().catch((error) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
  process.exit(1);
});
