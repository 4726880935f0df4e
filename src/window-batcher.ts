/**
 * @module window-batcher
 * Micro-batching of fire-and-forget writes made after a response: what one isolate's requests
 * produce within a short window leaves in one call (traces in one `sendBatch`, generation records
 * in one D1 `batch`). A billed or serialized call per request becomes a call per window.
 *
 * Why it loses nothing a call per request would not: the request hands the promise `add` returns
 * to its `waitUntil`, and that promise resolves only once the call carrying ITS item has settled
 * (done, or failed and handled by the sender), so every request whose item waits in a window
 * keeps its own invocation — and the isolate — alive until then.
 *
 * Every request waits in its own context. workerd refuses a promise that `waitUntil` awaits being
 * resolved from another request ("Cannot perform I/O on behalf of a different request"), so no
 * request ever resolves another's promise: each sleeps on its own timer until the window's end,
 * flushes the window if nobody has (the first timer to fire sends it, so no single request has to
 * survive for the window to leave), and otherwise checks on its own timers until the call
 * carrying its item has settled. If that call never settles (the request running it was torn
 * down), the waiter sends its item again alone after `stallMs`: at least once, so receivers must
 * tolerate a repeat (trace receivers dedupe by generation id; generation inserts ignore a
 * conflict).
 *
 * One window per key, compared as a Map compares them: a queue or D1 binding object (the runtime
 * hands an isolate's requests the same `env`, hence one window per binding; were it not so,
 * windows would simply hold one item each), or a string naming a Durable Object. A window is flushed when its timer fires, or at once when it holds
 * `maxItems` or `maxWeight`. Flushing closes it: items that arrive while its call is in flight
 * open the next window.
 */

export interface WindowOptions {
  /** How long the first item of a window waits for company; 0: only the current turn of the event loop. */
  windowMs: number;
  maxItems: number;
  /** Total weight a window may hold (bytes, say); an item that would pass it starts the next window. */
  maxWeight: number;
  /** After this long past the window's end, a waiter whose call has not settled sends its item alone. */
  stallMs: number;
}

/**
 * Sends one window's items. Must handle its own failures (log, dead-letter): a rejection is
 * logged here and counts as settled, it is never retried.
 */
export type SendWindow<K, T> = (key: K, items: T[]) => Promise<void>;

interface Entry<T> {
  item: T;
  /** The call carrying it settled. */
  settled: boolean;
}

interface Window<K, T> {
  key: K;
  entries: Entry<T>[];
  weight: number;
  openedAt: number;
  flushed: boolean;
}

/** How often a waiter checks on a call another request runs: from 5 ms, doubling to 100 ms. */
const CHECK_FIRST_MS = 5;
const CHECK_MAX_MS = 100;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export class WindowBatcher<K, T> {
  readonly #open = new Map<K, Window<K, T>>();

  /** `what` names the items in logs; `describe` picks an item's identifying fields for them. */
  constructor(
    readonly what: string,
    private readonly send: SendWindow<K, T>,
    private readonly options: WindowOptions,
    private readonly describe: (item: T) => Record<string, unknown> = () => ({}),
  ) {}

  /**
   * Add `item` (of `weight`, at most `maxWeight`) to `key`'s window. Resolves once the call
   * carrying it has settled; never rejects. Call it from the request that produced the item, and
   * hand the promise to that request's `waitUntil`.
   */
  async add(key: K, item: T, weight = 1): Promise<void> {
    let window = this.#open.get(key);
    // An item that would push the window past its weight goes to the next window; this request
    // sends the full one, and waits for that too (its waitUntil is what keeps the call alive).
    let previous: Promise<void> | null = null;
    if (window && window.weight + weight > this.options.maxWeight) {
      previous = this.#flush(window);
      window = undefined;
    }
    if (!window) {
      window = { key, entries: [], weight: 0, openedAt: Date.now(), flushed: false };
      this.#open.set(key, window);
    }
    const entry: Entry<T> = { item, settled: false };
    window.entries.push(entry);
    window.weight += weight;
    const full = window.entries.length >= this.options.maxItems || window.weight >= this.options.maxWeight;
    await Promise.all([previous, full ? this.#flush(window) : this.#wait(window, entry)]);
  }

  /** Sleep until the window's end; send it if nobody has, else wait for the call carrying `entry`. */
  async #wait(window: Window<K, T>, entry: Entry<T>): Promise<void> {
    await sleep(Math.max(0, window.openedAt + this.options.windowMs - Date.now()));
    if (!window.flushed) return this.#flush(window);
    const giveUpAt = Date.now() + this.options.stallMs;
    for (let pause = CHECK_FIRST_MS; !entry.settled; pause = Math.min(pause * 2, CHECK_MAX_MS)) {
      if (Date.now() >= giveUpAt) {
        console.warn(JSON.stringify({ level: "warn", msg: `${this.what}: the batch carrying it did not settle; sending it alone`, waitedMs: this.options.stallMs, ...this.describe(entry.item) }));
        return this.#call(window.key, [entry]);
      }
      await sleep(pause);
    }
  }

  /** Close the window (later items open a new one) and send it from this request. */
  #flush(window: Window<K, T>): Promise<void> {
    window.flushed = true;
    if (this.#open.get(window.key) === window) this.#open.delete(window.key);
    return this.#call(window.key, window.entries);
  }

  async #call(key: K, entries: readonly Entry<T>[]): Promise<void> {
    try {
      await this.send(
        key,
        entries.map((e) => e.item),
      );
    } catch (error) {
      console.error(
        JSON.stringify({
          level: "error",
          msg: `${this.what}: batch failed`,
          items: entries.length,
          first: entries.slice(0, 20).map((e) => this.describe(e.item)),
          error: error instanceof Error ? error.message : String(error),
        }),
      );
    } finally {
      for (const entry of entries) entry.settled = true;
    }
  }
}
