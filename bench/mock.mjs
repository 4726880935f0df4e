// @ts-check
/**
 * @module bench/mock
 * The mock provider (tools/mock-provider) in a child process: with only two cores, sharing the
 * load generator's event loop would make the mock the bottleneck of the floor and hide the
 * gateway's own cost. Recorded requests are read through its control API.
 */
import { spawn } from "node:child_process";
import { join } from "node:path";

/**
 * @typedef {object} MockChild
 * @property {string} url
 * @property {number} pid
 * @property {() => Promise<void>} clearRequests
 * @property {() => Promise<Array<{ path: string, body: Record<string, unknown> }>>} requests  Oldest first.
 * @property {() => Promise<void>} close
 */

/**
 * @param {string} root  Repository root.
 * @returns {Promise<MockChild>}
 */
export async function startMockChild(root) {
  const child = spawn(process.execPath, [join(root, "tools", "mock-provider", "server.mjs"), "--port", "0", "--host", "127.0.0.1"], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const url = await new Promise((resolve, reject) => {
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
      const match = /listening on (http:\/\/\S+)/.exec(out);
      if (match) resolve(match[1]);
    });
    child.once("error", reject);
    child.once("exit", (code) => reject(new Error(`The mock provider exited (code ${code}) before listening: ${out}`)));
  });
  if (!child.pid) throw new Error("The mock provider has no pid");
  const exited = new Promise((resolve) => child.once("exit", resolve));
  return {
    url,
    pid: child.pid,
    async clearRequests() {
      await (await fetch(`${url}/__mock/requests`, { method: "DELETE" })).arrayBuffer();
    },
    async requests() {
      const res = await fetch(`${url}/__mock/requests`);
      const { data } = /** @type {{ data: Array<{ path: string, body: Record<string, unknown> }> }} */ (await res.json());
      return data;
    },
    async close() {
      child.kill("SIGTERM");
      await exited;
    },
  };
}
