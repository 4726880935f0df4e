// @ts-check
/**
 * @module mock-provider/faults
 * Faults armed through the control API (`POST /__mock/faults`): each applies to the next `count`
 * requests whose path starts with `prefix` (forever when `count` is omitted). The first matching
 * rule wins and is consumed. Directives in the prompt (`[[fault:…]]`) need no registry.
 */

/**
 * A fault name: an HTTP status ("500", "503", "429", any 4xx/5xx), "reset", "hang", "midstream",
 * "error-event", "malformed", or "slow:MS".
 * @typedef {string} Fault
 * @typedef {{ id: number, prefix: string, fault: Fault, remaining: number | null }} FaultRule
 */

const KNOWN = /^(?:[45]\d\d|reset|hang|midstream|error-event|malformed|slow:\d+)$/;

/** @param {unknown} fault */
export const isFault = (fault) => typeof fault === "string" && KNOWN.test(fault);

export class FaultRegistry {
  /** @type {FaultRule[]} */
  #rules = [];
  #nextId = 1;

  /**
   * @param {string} prefix
   * @param {Fault} fault
   * @param {number | null} count
   */
  add(prefix, fault, count) {
    const rule = { id: this.#nextId++, prefix, fault, remaining: count };
    this.#rules.push(rule);
    return rule;
  }

  /**
   * The fault for this path, consuming one use of its rule.
   * @param {string} path
   * @returns {Fault | null}
   */
  take(path) {
    if (this.#rules.length === 0) return null;
    const i = this.#rules.findIndex((r) => path.startsWith(r.prefix));
    if (i < 0) return null;
    const rule = /** @type {FaultRule} */ (this.#rules[i]);
    if (rule.remaining !== null && --rule.remaining <= 0) this.#rules.splice(i, 1);
    return rule.fault;
  }

  list() {
    return this.#rules.map((r) => ({ ...r }));
  }

  clear() {
    this.#rules = [];
  }
}
