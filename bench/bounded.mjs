// @ts-check
/**
 * @module bench/bounded
 * Time limits for the benchmark's own machinery. A measurement that hangs (a workerd that never
 * reports ready, a dispose that never returns) must end the run with the name of what hung, not
 * hold CI until its own limit kills it without a word.
 */

/** A bounded operation ran past its limit. */
export class Overdue extends Error {
  /** @param {string} what @param {number} limitMs */
  constructor(what, limitMs) {
    super(`${what} did not finish within ${limitMs >= 1000 ? `${limitMs / 1000} s` : `${limitMs} ms`}`);
    this.name = "Overdue";
  }
}

/**
 * `run()`, or an {@link Overdue} rejection once `limitMs` have passed. The operation itself is
 * not cancelled (most of what the bench awaits cannot be); the caller decides what to kill.
 * @template T
 * @param {string} what
 * @param {number} limitMs
 * @param {() => Promise<T>} run
 * @returns {Promise<T>}
 */
export async function bounded(what, limitMs, run) {
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  const overdue = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Overdue(what, limitMs)), limitMs);
  });
  try {
    return /** @type {T} */ (await Promise.race([run(), overdue]));
  } finally {
    clearTimeout(timer);
  }
}

/**
 * `start()`, and once more if the first try ran out of time. For starting workerd instances:
 * a start that hangs says nothing about the code under test, and the first try's process has
 * been killed by then (bench/targets.mjs), so the second starts on a quiet machine.
 * @template T
 * @param {() => Promise<T>} start
 * @returns {Promise<T>}
 */
export async function againIfOverdue(start) {
  try {
    return await start();
  } catch (error) {
    if (!(error instanceof Overdue)) throw error;
    console.error(`[bench] ${error.message}; starting it once more`);
    return start();
  }
}
