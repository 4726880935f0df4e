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
import { median } from "./report.mjs";
import { loadCase, measure, option as arg } from "./scenarios.mjs";
import { provision, startGateway } from "./targets.mjs";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const BUILD = join(ROOT, "bench", ".build", "ab");

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
  const { body, stream } = loadCase(which);
  const connections = Number(arg("connections", "32"));
  const rounds = Number(arg("rounds", "6"));
  const seconds = Number(arg("seconds", "3"));
  if (!(rounds >= 2 && connections >= 1 && seconds > 0)) throw new Error("--rounds ≥ 2, --connections ≥ 1, --seconds > 0");

  const [baseBuild, workBuild] = await Promise.all([buildRef(arg("base", "HEAD")), buildBundles(ROOT, join(BUILD, "work"))]);
  const mock = await startMockChild(ROOT);
  const sides = {
    base: await startGateway(ROOT, "ab-base", baseBuild.gateway, mock.url),
    work: await startGateway(ROOT, "ab-work", workBuild.gateway, mock.url),
  };
  try {
    const endpoints = {
      base: { instance: sides.base, key: await provision(sides.base, "bench") },
      work: { instance: sides.work, key: await provision(sides.work, "bench") },
    };
    const timing = { warmupMs: 1000, durationMs: seconds * 1000 };
    /** @param {"base" | "work"} side */
    const runSide = async (side) => {
      const run = await measure(endpoints[side], body, stream, connections, timing, mock.pid);
      return { cpu: run.cpuMicrosPerRequest, rps: run.rps, errors: run.errors };
    };
    const pairs = [];
    for (let round = 0; round < rounds; round++) {
      // Who goes first alternates, so a drift within a pair favours neither side.
      const work = round % 2 ? await runSide("work") : null;
      const base = await runSide("base");
      const pair = { base, work: work ?? (await runSide("work")) };
      pairs.push(pair);
      console.log(`round ${round + 1}/${rounds}: CPU µs/request base ${pair.base.cpu.toFixed(0)}, work ${pair.work.cpu.toFixed(0)}; req/s ${pair.base.rps.toFixed(0)} / ${pair.work.rps.toFixed(0)}`);
    }
    const errors = pairs.reduce((n, p) => n + p.base.errors + p.work.errors, 0);
    const baseCpu = median(pairs.map((p) => p.base.cpu));
    const cpuDiffs = pairs.map((p) => p.work.cpu - p.base.cpu);
    const cpuDiff = median(cpuDiffs);
    const rpsDiffs = pairs.map((p) => p.work.rps - p.base.rps);
    const rpsDiff = median(rpsDiffs);
    const signed = (/** @type {number} */ n) => `${n >= 0 ? "+" : ""}${n.toFixed(0)}`;
    console.log(`\n${which} @${connections}, ${rounds} pairs of ${seconds} s; base ${baseBuild.commit}, work = the working tree${errors ? `; ${errors} ERRORS` : ""}`);
    console.log(`CPU µs/request, median: base ${baseCpu.toFixed(0)}, work ${median(pairs.map((p) => p.work.cpu)).toFixed(0)}`);
    console.log(`  paired difference (work − base), median: ${signed(cpuDiff)} µs (${((cpuDiff / baseCpu) * 100).toFixed(1)} %); work lower in ${cpuDiffs.filter((d) => d < 0).length} of ${rounds} pairs`);
    console.log(`req/s, median: base ${median(pairs.map((p) => p.base.rps)).toFixed(0)}, work ${median(pairs.map((p) => p.work.rps)).toFixed(0)}; paired difference ${signed(rpsDiff)}, work higher in ${rpsDiffs.filter((d) => d > 0).length} of ${rounds} pairs`);
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
