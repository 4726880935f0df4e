// @ts-check
/**
 * @module bench/inspector
 * workerd's V8 inspector from Node: a free loopback port to start a Worker with, a minimal
 * Chrome DevTools Protocol client, and the gateway isolate's JavaScript heap (bench/profile.mjs
 * samples CPU through it; the memory case reads the heap after a forced collection, which RSS
 * cannot tell apart from garbage V8 has not collected yet).
 */
import { createServer } from "node:net";

/** A free TCP port on loopback. */
export function freePort() {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolvePort(address.port) : reject(new Error("no port"))));
    });
  });
}

/**
 * A minimal Chrome DevTools Protocol client over Node's WebSocket.
 * @param {string} url
 */
export async function cdp(url) {
  const ws = new WebSocket(url);
  await new Promise((ok, fail) => {
    ws.addEventListener("open", ok, { once: true });
    ws.addEventListener("error", fail, { once: true });
  });
  let next = 0;
  /** @type {Map<number, { ok: (v: any) => void, fail: (e: Error) => void }>} */
  const pending = new Map();
  ws.addEventListener("message", (event) => {
    const message = JSON.parse(String(event.data));
    const waiter = message.id === undefined ? undefined : pending.get(message.id);
    if (!waiter) return;
    pending.delete(message.id);
    if (message.error) waiter.fail(new Error(`${message.error.message}`));
    else waiter.ok(message.result);
  });
  return {
    /** @param {string} method @param {Record<string, unknown>} [params] @returns {Promise<any>} */
    send(method, params = {}) {
      const id = ++next;
      ws.send(JSON.stringify({ id, method, params }));
      return new Promise((ok, fail) => pending.set(id, { ok, fail }));
    },
    close: () => ws.close(),
  };
}

/**
 * @typedef {object} HeapProbe
 * @property {() => Promise<{ usedBytes: number, totalBytes: number }>} usage  V8's heap now, garbage included.
 * @property {() => Promise<number>} liveBytes  Used heap right after a full collection: what the isolate holds.
 * @property {() => void} close
 */

/**
 * The heap of the isolate whose inspector target id contains `name` (Miniflare names targets
 * after the Worker). workerd runs a forced collection only when the isolate next takes work, so
 * while one is pending the probe sends `GET poke` (a cheap route of the Worker) every 20 ms.
 * @param {number} port
 * @param {string} name
 * @param {URL} poke
 * @returns {Promise<HeapProbe>}
 */
export async function heapProbe(port, name, poke) {
  const targets = /** @type {Array<{ id: string, webSocketDebuggerUrl: string }>} */ (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json());
  const target = targets.find((t) => t.id.includes(name)) ?? targets[0];
  if (!target) throw new Error("workerd's inspector lists no isolate");
  const client = await cdp(target.webSocketDebuggerUrl);
  const usage = async () => {
    const { usedSize, totalSize } = /** @type {{ usedSize: number, totalSize: number }} */ (await client.send("Runtime.getHeapUsage"));
    return { usedBytes: usedSize, totalBytes: totalSize };
  };
  return {
    usage,
    liveBytes: async () => {
      let collected = false;
      const gc = client.send("HeapProfiler.collectGarbage").finally(() => (collected = true));
      while (!collected) {
        await Promise.race([gc, fetch(poke).then((r) => r.arrayBuffer())]);
        if (!collected) await new Promise((resolve) => setTimeout(resolve, 20));
      }
      await gc;
      return (await usage()).usedBytes;
    },
    close: () => client.close(),
  };
}
