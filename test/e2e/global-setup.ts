/**
 * Starts `tools/dev.mjs` once for the whole run: free ports, a fresh D1 state directory, every
 * provider on the mock (a developer's `.dev.vars` and real keys are ignored: the Worker's
 * variables come from a file written here), and hands the gateway's URL and key to the tests
 * through `inject("switchyard")`.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join, resolve } from "node:path";
import type { TestProject } from "vitest/node";

export interface Switchyard {
  url: string;
  apiKey: string;
  adminToken: string;
  mockUrl: string;
}

declare module "vitest" {
  export interface ProvidedContext {
    switchyard: Switchyard;
  }
}

const ROOT = resolve(import.meta.dirname, "../..");
const READY_TIMEOUT_MS = 90_000;

/** Worker variables for the run: short upstream timeouts so a hanging upstream fails over fast. */
const WORKER_VARS = {
  UPSTREAM_CONNECT_TIMEOUT_MS: "2000",
  UPSTREAM_FIRST_TOKEN_TIMEOUT_MS: "2000",
  // As in .dev.vars.example: EU workspaces run on local workerd, which has no DO jurisdictions.
  RESIDENCY_LOCAL_FALLBACK: "1",
};

function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => done(port));
    });
  });
}

function waitForReady(child: ChildProcess, output: () => string): Promise<Switchyard> {
  return new Promise((done, fail) => {
    const timer = setTimeout(() => fail(new Error(`tools/dev.mjs not ready after ${READY_TIMEOUT_MS / 1000} s:\n${output()}`)), READY_TIMEOUT_MS);
    const onData = () => {
      const match = /^SWITCHYARD_READY (.+)$/m.exec(output());
      if (!match) return;
      clearTimeout(timer);
      child.stdout?.off("data", onData);
      done(JSON.parse(match[1]!) as Switchyard);
    };
    child.stdout?.on("data", onData);
    child.once("exit", (code) => {
      clearTimeout(timer);
      fail(new Error(`tools/dev.mjs exited with ${code} before it was ready:\n${output()}`));
    });
  });
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const stateDir = mkdtempSync(join(tmpdir(), "switchyard-e2e-"));
  const varsFile = join(stateDir, "e2e.dev.vars");
  writeFileSync(varsFile, Object.entries(WORKER_VARS).map(([k, v]) => `${k}=${v}\n`).join(""));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PATH: `${join(ROOT, "node_modules", ".bin")}${delimiter}${process.env.PATH ?? ""}`,
    PORT: String(await freePort()),
    MOCK_PORT: String(await freePort()),
    INSPECTOR_PORT: String(await freePort()),
    SWITCHYARD_STATE_DIR: stateDir,
    SWITCHYARD_DEV_VARS: varsFile,
    SWITCHYARD_MOCK_ALL: "1",
    // The `$` checks that values reach the Worker verbatim (wrangler expands `$VAR` in env files).
    ADMIN_TOKEN: `e2e$HOME-${crypto.randomUUID()}`,
    WRANGLER_SEND_METRICS: "false",
    MOCK_LOG: "0",
  };
  delete env.DEV_API_KEY;
  const child = spawn(process.execPath, [join(ROOT, "tools", "dev.mjs")], { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr.on("data", (d: Buffer) => (output += d.toString()));
  if (process.env.SWITCHYARD_E2E_LOG === "1") {
    child.stdout.pipe(process.stdout);
    child.stderr.pipe(process.stderr);
  }

  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(stateDir, { recursive: true, force: true });
  };

  try {
    project.provide("switchyard", await waitForReady(child, () => output));
  } catch (error) {
    await stop();
    throw error;
  }
  return stop;
}
