// @ts-check
/**
 * @module bench/targets
 * The Workers under test, each served by its own Miniflare, i.e. its own workerd process, on
 * 127.0.0.1: not `wrangler dev`, whose proxy in front of workerd costs several times the floor,
 * and not Miniflare's entry socket either, which routes every request through Miniflare's entry
 * Worker in the same process (≈ 460 µs CPU and 0.6 ms more per request on the benchmark machine,
 * for a Worker that only answers "ok"). Each Worker gets a direct socket
 * (`unsafeDirectSockets`): workerd's HTTP server straight into the Worker, as in production.
 * D1 and Durable Object state live in a fresh directory on tmpfs (/dev/shm when there is one)
 * that `dispose()` removes: with Miniflare's default, a temporary directory on the disk, every
 * SQLite commit waits for the disk, which added latency and run-to-run noise to the gateway (and
 * not to the floor, which stores nothing) that says nothing about the gateway's code.
 *
 * The gateway gets the bindings of wrangler.toml (read through wrangler's own
 * `unstable_getMiniflareWorkerOptions`: D1 `DB`, the `LEDGER`, `LEDGER_SHARD` and `HEALTH` SQLite
 * Durable Objects, the trace queues and their consumers, the trace content bucket, compatibility
 * date and flags) with its variables replaced by `[vars]` plus the bench's
 * secrets, so a developer's .dev.vars never leaks in. Every catalog provider is wired to the mock
 * the way `npm start` wires it (tools/dev.mjs `wireProviders`).
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { Miniflare, convertV4MiniflareOptions } from "miniflare";
import { unstable_getMiniflareWorkerOptions, unstable_readConfig } from "wrangler";
import { admin, wireProviders } from "../tools/dev.mjs";
import { bounded } from "./bounded.mjs";
import { kill, withNewChild } from "./proc.mjs";

/** Limits for what the bench's machinery takes (a few seconds when all is well). */
const START_LIMIT_MS = 45_000;
const SETUP_LIMIT_MS = 45_000;
const DISPOSE_LIMIT_MS = 20_000;

/**
 * @typedef {object} Instance
 * @property {string} name
 * @property {URL} url
 * @property {number} pid  The workerd process.
 * @property {() => Promise<void>} dispose
 *
 * @typedef {Instance & { adminToken: string, mockUrl: string }} Gateway
 */

/**
 * @param {string} name
 * @param {Parameters<typeof convertV4MiniflareOptions>[0]} options
 * @returns {Promise<Instance & { mf: Miniflare }>}
 */
async function serve(name, options) {
  const stateDir = mkdtempSync(join(existsSync("/dev/shm") ? "/dev/shm" : tmpdir(), `switchyard-bench-${name}-`));
  /** @type {Miniflare | undefined} */
  let started;
  try {
    const { value, pid } = await withNewChild("workerd", () =>
      bounded(`${name}: workerd ready`, START_LIMIT_MS, async () => {
        const converted = convertV4MiniflareOptions({ host: "127.0.0.1", port: 0, unsafeDirectSockets: [{ host: "127.0.0.1", port: 0 }], ...options });
        started = new Miniflare({ ...converted, resourcePersistencePath: stateDir });
        await started.ready;
        return { mf: started, url: await started.unsafeGetDirectURL() };
      }),
    );
    const { mf, url } = value;
    const dispose = async () => {
      await disposeWithin(name, mf, pid);
      rmSync(stateDir, { recursive: true, force: true });
    };
    return { name, url, pid, mf, dispose };
  } catch (error) {
    // withNewChild has killed the workerd; what is left of Miniflare lives in this process.
    if (started) await disposeWithin(name, started, undefined);
    rmSync(stateDir, { recursive: true, force: true });
    throw error;
  }
}

/**
 * Miniflare's dispose, bounded: past the limit the workerd is killed and the bench goes on (its
 * numbers are taken by then; a process left running would skew every later phase).
 * @param {string} name
 * @param {Miniflare} mf
 * @param {number | undefined} pid
 */
async function disposeWithin(name, mf, pid) {
  try {
    await bounded(`${name}: Miniflare dispose`, DISPOSE_LIMIT_MS, () => mf.dispose());
  } catch (error) {
    console.error(`[bench] ${error instanceof Error ? error.message : String(error)}${pid ? `; killing workerd ${pid}` : ""}`);
    if (pid) kill(pid);
  }
}

/** @type {ReturnType<typeof readGatewayOptions> | undefined} */
let cachedOptions;

/**
 * wrangler.toml as Miniflare worker options, without the parts that do not apply to a prebuilt
 * bundle (module rules, the config's root path) and with only `[vars]` as variables (wrangler
 * also reads .dev.vars into the bindings, and says so once; they are dropped here).
 * @param {string} root
 */
function gatewayOptions(root) {
  cachedOptions ??= readGatewayOptions(root);
  return cachedOptions;
}

/** @param {string} root */
function readGatewayOptions(root) {
  const configPath = join(root, "wrangler.toml");
  const { workerOptions } = unstable_getMiniflareWorkerOptions(configPath);
  const { modulesRules, rootPath, bindings, ...rest } = workerOptions;
  return {
    options: rest,
    /** The gateway's runtime, for the floor and the calibration Worker too. */
    compatibility: { compatibilityDate: String(rest.compatibilityDate), compatibilityFlags: /** @type {string[]} */ (rest.compatibilityFlags ?? []) },
    vars: /** @type {Record<string, string>} */ ({ ...unstable_readConfig({ config: configPath }).vars }),
  };
}

/**
 * The floor (bench/floor-worker.js), with the gateway's compatibility date and flags.
 * @param {string} root
 * @param {string} mockUrl
 */
export async function startFloor(root, mockUrl) {
  const { compatibility } = gatewayOptions(root);
  const script = join(root, "bench", "floor-worker.js");
  return serve("floor", {
    ...compatibility,
    modules: true,
    scriptPath: script,
    modulesRoot: dirname(script),
    bindings: { UPSTREAM: `${mockUrl}/openai/v1`, UPSTREAM_KEY: "bench" },
  });
}

/**
 * The calibration Worker (bench/calibration-worker.js) with a local D1 database of its own.
 * @param {string} root
 */
export async function startCalibration(root) {
  const { compatibility } = gatewayOptions(root);
  const script = join(root, "bench", "calibration-worker.js");
  const instance = await serve("calibration", {
    ...compatibility,
    modules: true,
    scriptPath: script,
    modulesRoot: dirname(script),
    d1Databases: { DB: "bench-calibration" },
  });
  try {
    await bounded("calibration: its table", SETUP_LIMIT_MS, async () => {
      const db = await instance.mf.getD1Database("DB");
      await db.prepare("CREATE TABLE bench_rows (id TEXT PRIMARY KEY NOT NULL, workspace TEXT NOT NULL, n INTEGER NOT NULL, note TEXT)").run();
      await db.prepare("CREATE INDEX bench_rows_workspace ON bench_rows (workspace)").run();
    });
  } catch (error) {
    await instance.dispose();
    throw error;
  }
  return instance;
}

/**
 * A gateway bundle with wrangler.toml's bindings, its D1 migrated and its catalog seeded.
 * @param {string} root
 * @param {string} name
 * @param {string} scriptPath  The bundle's entry module.
 * @param {string} mockUrl
 * @param {Record<string, string>} [extraVars]  e.g. the metered entry's BENCH_LEDGER_DELAY_MS.
 * @param {{ inspectorPort?: number }} [runtime]  e.g. the V8 inspector for bench/profile.mjs.
 * @returns {Promise<Gateway>}
 */
export async function startGateway(root, name, scriptPath, mockUrl, extraVars = {}, runtime = {}) {
  const { options, vars } = gatewayOptions(root);
  const seed = JSON.parse(readFileSync(join(root, "src", "catalog", "seed.json"), "utf8"));
  const { vars: providerVars } = wireProviders(seed.providers, {}, mockUrl, true);
  const adminToken = `bench-${randomBytes(18).toString("hex")}`;
  // src/auth/secrets.ts wants at least 32 characters; 32 random bytes in base64 are 44.
  const masterKey = randomBytes(32).toString("base64");
  const instance = await serve(name, {
    ...options,
    modules: true,
    scriptPath,
    modulesRoot: dirname(scriptPath),
    bindings: { ...vars, ...providerVars, ADMIN_TOKEN: adminToken, MASTER_KEY: masterKey, ...extraVars },
    ...runtime,
  });
  try {
    await bounded(`${name}: migrations and catalog seed`, SETUP_LIMIT_MS, async () => {
      await migrate(instance.mf, join(root, "migrations"));
      await admin(instance.url, adminToken, "POST", "/catalog/seed");
    });
  } catch (error) {
    await instance.dispose();
    throw error;
  }
  return { name, url: instance.url, pid: instance.pid, adminToken, mockUrl, dispose: instance.dispose };
}

/**
 * Apply migrations/*.sql in order; drizzle separates statements with `--> statement-breakpoint`.
 * @param {Miniflare} mf
 * @param {string} dir
 */
async function migrate(mf, dir) {
  const db = await mf.getD1Database("DB");
  for (const file of readdirSync(dir).filter((f) => f.endsWith(".sql")).sort()) {
    for (const statement of readFileSync(join(dir, file), "utf8").split("--> statement-breakpoint")) {
      if (statement.trim()) await db.prepare(statement).run();
    }
  }
}

/**
 * A workspace with ample credit, an inference key and one trace destination (a webhook to the
 * mock's sink), so every request pays for its trace: its share of a batched enqueue, and delivery.
 * `shards` > 1 sets `ledger_shards`; `traces: false` leaves the destination out, so the workspace
 * produces no trace at all.
 * @param {Gateway} gateway
 * @param {string} workspace
 * @param {{ shards?: number, traces?: boolean }} [options]
 * @returns {Promise<string>} the API key
 */
export async function provision(gateway, workspace, { shards, traces = true } = {}) {
  const call = (/** @type {string} */ method, /** @type {string} */ path, /** @type {unknown} */ body) => admin(gateway.url, gateway.adminToken, method, path, body);
  await call("PUT", `/workspaces/${workspace}`, { name: `Bench ${workspace}`, ...(shards ? { ledger_shards: shards } : {}) });
  await call("POST", `/workspaces/${workspace}/credits`, { amount: "1000000", note: "bench" });
  if (traces) {
    await call("PUT", `/workspaces/${workspace}/destinations/bench-sink`, {
      type: "webhook",
      url: `${gateway.mockUrl}/__mock/sink`,
      signing_secret: `bench-${randomBytes(16).toString("hex")}`,
    });
  }
  const created = await call("POST", `/workspaces/${workspace}/keys`, { name: "bench" });
  if (typeof created.key !== "string") throw new Error(`The admin API returned no key: ${JSON.stringify(created)}`);
  return created.key;
}
