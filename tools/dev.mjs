#!/usr/bin/env node
// @ts-check
/**
 * @module dev
 * `npm start`: the gateway under `wrangler dev` with the mock provider alongside, fully offline.
 *
 * 1. Reads `.dev.vars` (or the file named by SWITCHYARD_DEV_VARS; `none` skips it).
 * 2. Wires every catalog provider without a real `<PREFIX>_API_KEY` to the mock provider
 *    (`SWITCHYARD_MOCK_ALL=1`: every provider, real keys ignored).
 * 3. Applies the local D1 migrations (DB and DB_EU), starts `wrangler dev` on 127.0.0.1:PORT, seeds the catalog
 *    and provisions workspace `dev` with an API key through the admin API.
 * 4. Prints a banner and a last line `SWITCHYARD_READY {json}` for scripts and tests.
 *
 * Environment: PORT (8787), MOCK_PORT (8790, or any free port when that one is taken),
 * SWITCHYARD_STATE_DIR (wrangler's `--persist-to`), SWITCHYARD_DEV_VARS, SWITCHYARD_MOCK_ALL,
 * ADMIN_TOKEN, MASTER_KEY (generated per run when unset), DEV_API_KEY, INSPECTOR_PORT, MOCK_LOG=1. Arguments are passed on to `wrangler dev`
 * (`-c/--config` and `-e/--env` also to the migrations).
 *
 * Variables reach the Worker through a generated `--env-file` (mode 600, deleted on exit): with
 * `--env-file`, wrangler 4 ignores `.dev.vars`, and values override `[vars]` from wrangler.toml.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { startMockProvider } from "./mock-provider/server.mjs";
import { isMain } from "./is-main.mjs";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const BIN = join(ROOT, "node_modules", ".bin");
const HOST = "127.0.0.1";

/**
 * @typedef {{ slug: string, name?: string, family: "openai" | "anthropic" | "gemini", envPrefix: string,
 *   baseUrl?: string | null, options?: { vertex?: boolean, deploymentInPath?: boolean } }} SeedProvider
 * @typedef {{ slug: string, envPrefix: string, target: "mock" | "real", baseUrl: string | null }} Wiring
 */

/**
 * KEY=VALUE lines as `.dev.vars` and `.env` files hold them: comments, blank lines, `export`,
 * and single or double quotes are understood.
 * @param {string} text
 * @returns {Record<string, string>}
 */
export function parseDotenv(text) {
  /** @type {Record<string, string>} */
  const out = {};
  for (const line of text.split(/\r?\n/)) {
    const match = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*=\s*(.*?)\s*$/.exec(line);
    if (!match) continue;
    let value = match[2] ?? "";
    const quote = value[0];
    if ((quote === '"' || quote === "'") && value.endsWith(quote) && value.length >= 2) {
      value = value.slice(1, -1);
      if (quote === '"') value = value.replace(/\\n/g, "\n");
    } else {
      value = value.replace(/\s+#.*$/, "");
    }
    out[/** @type {string} */ (match[1])] = value;
  }
  return out;
}

/**
 * One line of an env file that wrangler reads back verbatim: single quotes stop dotenv from
 * interpreting the value, and `\$` stops dotenv-expand from substituting variables.
 * @param {string} key
 * @param {string} value
 */
export function envFileLine(key, value) {
  if (/[\r\n']/.test(value)) throw new Error(`${key}: values with quotes or line breaks are not supported`);
  return `${key}='${value.replace(/\$/g, "\\$")}'`;
}

/**
 * Route providers without a real key to the mock: `<PREFIX>_API_KEY=mock-key` and
 * `<PREFIX>_BASE_URL=<mock>/<prefix lower-case>` plus the family's version path (`/v1`, Gemini
 * `/v1beta`; none for Vertex and Azure-style deployment paths).
 * @param {SeedProvider[]} providers
 * @param {Record<string, string | undefined>} known  .dev.vars overlaid with the process env.
 * @param {string} mockUrl
 * @param {boolean} mockAll  Ignore real keys.
 * @returns {{ vars: Record<string, string>, wiring: Wiring[] }}
 */
export function wireProviders(providers, known, mockUrl, mockAll) {
  /** @type {Record<string, string>} */
  const vars = {};
  /** @type {Wiring[]} */
  const wiring = [];
  for (const p of providers) {
    const keyVar = `${p.envPrefix}_API_KEY`;
    const urlVar = `${p.envPrefix}_BASE_URL`;
    const realKey = mockAll ? undefined : known[keyVar];
    if (realKey) {
      vars[keyVar] = realKey;
      const url = known[urlVar];
      if (url) vars[urlVar] = url;
      const baseUrl = url ?? p.baseUrl ?? null;
      if (!baseUrl) console.warn(`[dev] ${p.slug}: ${keyVar} is set but no base URL: set ${urlVar} too`);
      wiring.push({ slug: p.slug, envPrefix: p.envPrefix, target: "real", baseUrl });
      continue;
    }
    const noSuffix = p.options?.vertex || p.options?.deploymentInPath;
    const suffix = noSuffix ? "" : p.family === "gemini" ? "/v1beta" : "/v1";
    const url = `${mockUrl}/${p.envPrefix.toLowerCase()}${suffix}`;
    vars[keyVar] = "mock-key";
    vars[urlVar] = url;
    wiring.push({ slug: p.slug, envPrefix: p.envPrefix, target: "mock", baseUrl: url });
  }
  return { vars, wiring };
}

/** @returns {SeedProvider[]} */
function readSeedProviders() {
  const file = join(ROOT, "src", "catalog", "seed.json");
  if (!existsSync(file)) {
    console.warn(`[dev] ${file} not found: no provider is wired to the mock`);
    return [];
  }
  const seed = JSON.parse(readFileSync(file, "utf8"));
  return Array.isArray(seed.providers) ? seed.providers : [];
}

/** @returns {{ vars: Record<string, string>, source: string | null }} */
function readDevVars() {
  const setting = process.env.SWITCHYARD_DEV_VARS;
  if (setting === "none") return { vars: {}, source: null };
  const file = setting ? resolve(setting) : join(ROOT, ".dev.vars");
  if (!existsSync(file)) {
    if (setting) throw new Error(`SWITCHYARD_DEV_VARS=${setting}: file not found`);
    return { vars: {}, source: null };
  }
  return { vars: parseDotenv(readFileSync(file, "utf8")), source: file };
}

/** @param {number} port */
function portIsFree(port) {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, HOST, () => server.close(() => resolve(true)));
  });
}

/** Environment for wrangler: Node 22 from node_modules/.bin first, no telemetry, only our env file. */
function wranglerEnv() {
  return {
    ...process.env,
    PATH: `${BIN}${delimiter}${process.env.PATH ?? ""}`,
    WRANGLER_SEND_METRICS: "false",
    CLOUDFLARE_LOAD_DEV_VARS_FROM_DOT_ENV: "true",
    CLOUDFLARE_INCLUDE_PROCESS_ENV: "false",
    // Offline: use miniflare's placeholder `request.cf` instead of fetching one (a 3 s timeout).
    CLOUDFLARE_CF_FETCH_ENABLED: process.env.CLOUDFLARE_CF_FETCH_ENABLED ?? "false",
  };
}

/**
 * Flags that select the configuration, shared by `wrangler dev` and `wrangler d1 migrations apply`.
 * @param {string[]} args
 */
function configFlags(args) {
  /** @type {string[]} */
  const out = [];
  args.forEach((arg, i) => {
    if (/^(-c|--config|-e|--env)$/.test(arg) && args[i + 1] !== undefined) out.push(arg, /** @type {string} */ (args[i + 1]));
    else if (/^--(config|env)=/.test(arg)) out.push(arg);
  });
  return out;
}

/**
 * Apply the local D1 migrations to one database binding (DB, and DB_EU: the generation records of
 * EU workspaces have the same schema).
 * @param {string} binding
 * @param {string[]} args
 */
function applyMigrations(binding, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(join(BIN, "wrangler"), ["d1", "migrations", "apply", binding, "--local", ...args], {
      cwd: ROOT,
      env: { ...wranglerEnv(), CI: "true" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (d) => (output += d));
    child.stderr.on("data", (d) => (output += d));
    child.once("error", reject);
    child.once("exit", (code) => (code === 0 ? resolve(undefined) : reject(new Error(`D1 migrations of ${binding} failed (exit ${code}):\n${output}`))));
  });
}

/**
 * @param {string} url
 * @param {() => boolean} alive
 */
async function waitForWorker(url, alive, timeoutMs = 90_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!alive()) throw new Error("wrangler dev exited before the Worker answered");
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  throw new Error(`The Worker did not answer at ${url} within ${timeoutMs / 1000} s`);
}

/**
 * One admin API call; throws with the gateway's error message on a non-2xx answer.
 * @param {string | URL} base  The gateway's origin.
 * @param {string} token
 * @param {string} method
 * @param {string} path
 * @param {unknown} [body]
 */
export async function admin(base, token, method, path, body) {
  const res = await fetch(new URL(`/admin/v1${path}`, base), {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} /admin/v1${path} → ${res.status}: ${text}`);
  return JSON.parse(text);
}

/**
 * @param {{ url: string, apiKey: string, adminToken: string, adminTokenSource: string, mockUrl: string, wiring: Wiring[], stateDir: string }} info
 */
function banner(info) {
  const mocked = info.wiring.filter((w) => w.target === "mock").map((w) => w.slug);
  const real = info.wiring.filter((w) => w.target === "real").map((w) => w.slug);
  const body = JSON.stringify({ model: "openai/gpt-4o-mini", messages: [{ role: "user", content: "Hello" }] });
  return [
    "",
    "Switchyard is running",
    `  API base     ${info.url}/api/v1   (also ${info.url}/v1)`,
    `  API key      ${info.apiKey}`,
    `  Admin token  ${info.adminTokenSource}   (Authorization: Bearer … on ${info.url}/admin/v1)`,
    `  Mock         ${info.mockUrl}   faults: POST /__mock/faults · hits: GET /__mock/hits`,
    `  Providers    mock: ${mocked.join(", ") || "none"}`,
    ...(real.length ? [`               real keys: ${real.join(", ")}`] : []),
    `  D1 state     ${info.stateDir}`,
    "",
    "Try it:",
    `  curl ${info.url}/api/v1/chat/completions \\`,
    `    -H "Authorization: Bearer ${info.apiKey}" -H "Content-Type: application/json" \\`,
    `    -d '${body}'`,
    "",
    `SWITCHYARD_READY ${JSON.stringify({ url: info.url, apiKey: info.apiKey, adminToken: info.adminToken, mockUrl: info.mockUrl })}`,
  ].join("\n");
}

async function main() {
  const passThrough = process.argv.slice(2);
  const port = Number(process.env.PORT ?? 8787);
  if (!(await portIsFree(port))) throw new Error(`Port ${port} is in use on ${HOST}: set PORT to another port`);

  const devVars = readDevVars();
  const mockPortSetting = process.env.MOCK_PORT;
  const mockPort = mockPortSetting ? Number(mockPortSetting) : (await portIsFree(8790)) ? 8790 : 0;
  const mock = await startMockProvider({ port: mockPort, host: HOST, log: process.env.MOCK_LOG === "1" });

  /** @type {Record<string, string | undefined>} */
  const known = { ...devVars.vars, ...process.env };
  const { vars: wired, wiring } = wireProviders(readSeedProviders(), known, mock.url, process.env.SWITCHYARD_MOCK_ALL === "1");
  const adminToken = process.env.ADMIN_TOKEN || devVars.vars.ADMIN_TOKEN || `dev-${randomBytes(18).toString("hex")}`;
  const adminTokenSource = process.env.ADMIN_TOKEN
    ? "from the ADMIN_TOKEN environment variable"
    : devVars.vars.ADMIN_TOKEN
      ? `ADMIN_TOKEN from ${devVars.source}`
      : `${adminToken} (generated for this run; set ADMIN_TOKEN in .dev.vars to keep one)`;
  const devApiKey = process.env.DEV_API_KEY || devVars.vars.DEV_API_KEY || undefined;
  // BYOK keys are encrypted under MASTER_KEY; one shorter than 32 characters counts as unset.
  const configuredMasterKey = [process.env.MASTER_KEY, devVars.vars.MASTER_KEY].find((v) => v && v.length >= 32);
  const masterKey = configuredMasterKey ?? randomBytes(32).toString("hex");
  if (!configuredMasterKey) {
    console.log("MASTER_KEY generated for this run: BYOK keys stored now will not decrypt after a restart (set MASTER_KEY in .dev.vars to keep them).");
  }

  /** @type {Record<string, string>} */
  const workerVars = { ...devVars.vars, ...wired, ADMIN_TOKEN: adminToken, MASTER_KEY: masterKey };
  delete workerVars.DEV_API_KEY; // provisioning input, not a Worker variable
  const secretsDir = mkdtempSync(join(tmpdir(), "switchyard-dev-"));
  const envFile = join(secretsDir, "worker.env");
  writeFileSync(envFile, `${Object.entries(workerVars).map(([k, v]) => envFileLine(k, v)).join("\n")}\n`, { mode: 0o600 });

  const stateDir = process.env.SWITCHYARD_STATE_DIR ? resolve(process.env.SWITCHYARD_STATE_DIR) : join(ROOT, ".wrangler", "state");
  const persist = process.env.SWITCHYARD_STATE_DIR ? ["--persist-to", stateDir] : [];

  /** @type {import("node:child_process").ChildProcess | null} */
  let wrangler = null;
  let stopping = false;
  const cleanup = async () => {
    rmSync(secretsDir, { recursive: true, force: true });
    await mock.close();
  };
  /** @param {number} code */
  const shutdown = async (code) => {
    if (stopping) return;
    stopping = true;
    const child = wrangler;
    if (child && child.exitCode === null && child.signalCode === null && child.pid) {
      const exited = new Promise((r) => child.once("exit", r));
      killGroup(child.pid, "SIGTERM");
      const timer = setTimeout(() => child.pid && killGroup(child.pid, "SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
    }
    await cleanup();
    process.exit(code);
  };
  process.on("SIGINT", () => void shutdown(0));
  process.on("SIGTERM", () => void shutdown(0));

  try {
    console.log("[dev] applying local D1 migrations…");
    for (const binding of ["DB", "DB_EU"]) await applyMigrations(binding, [...configFlags(passThrough), ...persist]);

    const inspector = process.env.INSPECTOR_PORT ? ["--inspector-port", process.env.INSPECTOR_PORT] : [];
    const args = ["dev", "--ip", HOST, "--port", String(port), "--show-interactive-dev-session=false", "--env-file", envFile, ...persist, ...inspector, ...passThrough];
    console.log(`[dev] starting wrangler dev on ${HOST}:${port}…`);
    // Its own process group, so stopping it also stops the workerd processes it started.
    const child = spawn(join(BIN, "wrangler"), args, { cwd: ROOT, env: wranglerEnv(), stdio: ["ignore", "inherit", "inherit"], detached: true });
    wrangler = child;
    child.once("exit", (code, signal) => {
      if (stopping) return;
      stopping = true;
      console.error(`[dev] wrangler dev exited (${signal ?? `code ${code}`})`);
      // bin/wrangler runs the CLI in a child process: take down whatever is left of the group.
      if (child.pid) killGroup(child.pid, "SIGTERM");
      void cleanup().then(() => process.exit(code || 1));
    });

    const url = `http://${HOST}:${port}`;
    await waitForWorker(url, () => child.exitCode === null && child.signalCode === null);
    await admin(url, adminToken, "POST", "/catalog/seed");
    await admin(url, adminToken, "PUT", "/workspaces/dev", { name: "Development" });
    // Development credits: top up to keep at least $10 available (the purchase fee applies).
    const { data: balance } = await admin(url, adminToken, "GET", "/workspaces/dev/credits");
    if (balance.balance < 10) await admin(url, adminToken, "POST", "/workspaces/dev/credits", { amount: "100", note: "npm start" });
    const created = await admin(url, adminToken, "POST", "/workspaces/dev/keys", { name: "dev", ...(devApiKey ? { key: devApiKey } : {}) });
    if (typeof created.key !== "string") throw new Error(`The admin API returned no key: ${JSON.stringify(created)}`);
    console.log(banner({ url, apiKey: created.key, adminToken, adminTokenSource, mockUrl: mock.url, wiring, stateDir }));
  } catch (error) {
    console.error(`[dev] ${error instanceof Error ? error.message : String(error)}`);
    await shutdown(1);
  }
}

/**
 * @param {number} pid  A process group leader started by this script.
 * @param {NodeJS.Signals} signal
 */
function killGroup(pid, signal) {
  try {
    process.kill(-pid, signal);
  } catch {
    // Already gone.
  }
}

if (isMain(import.meta.url)) {
  main().catch((error) => {
    console.error(`[dev] ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  });
}
