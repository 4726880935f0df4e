// @ts-check
/**
 * @module bench/build
 * Both bundles come from `wrangler deploy --dry-run`, offline: the production gateway exactly as
 * `npm run deploy` would upload it, and the instrumented entry (bench/metered-entry.ts) with the
 * same configuration and bundler settings, only another entry point.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { delimiter, join } from "node:path";

/**
 * @param {string} root  Repository root.
 * @param {string} outdir
 * @param {string[]} entry  Empty for wrangler.toml's `main`, else the script to bundle instead.
 */
function dryRun(root, outdir, entry) {
  const bin = join(root, "node_modules", ".bin");
  return new Promise((resolve, reject) => {
    const child = spawn(join(bin, "wrangler"), ["deploy", "--dry-run", "--outdir", outdir, ...entry], {
      cwd: root,
      env: { ...process.env, PATH: `${bin}${delimiter}${process.env.PATH ?? ""}`, WRANGLER_SEND_METRICS: "false", CI: "true" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (d) => (output += d));
    child.stderr.on("data", (d) => (output += d));
    child.once("error", reject);
    child.once("exit", (code) => (code === 0 ? resolve(undefined) : reject(new Error(`wrangler deploy --dry-run ${entry.join(" ")} failed (exit ${code}):\n${output}`))));
  });
}

/**
 * Build both bundles (in parallel) and return the path of each entry module.
 * @param {string} root
 * @param {string} buildDir  bench/.build
 * @returns {Promise<{ gateway: string, metered: string }>}
 */
export async function buildBundles(root, buildDir) {
  const gatewayDir = join(buildDir, "gateway");
  const meteredDir = join(buildDir, "metered");
  await Promise.all([dryRun(root, gatewayDir, []), dryRun(root, meteredDir, [join("bench", "metered-entry.ts")])]);
  const out = { gateway: join(gatewayDir, "index.js"), metered: join(meteredDir, "metered-entry.js") };
  for (const file of Object.values(out)) if (!existsSync(file)) throw new Error(`wrangler wrote no ${file}`);
  return out;
}
