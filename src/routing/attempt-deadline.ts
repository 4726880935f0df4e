/**
 * @module routing/attempt-deadline
 * One upstream attempt's time limit, moved as the attempt goes: connect within the connect
 * timeout, then (the consumer moves it) finish, or send the next event, within its own limit. One
 * timer per attempt, set again only when it fires before a deadline that moved later: a timer per
 * phase cost a setTimeout and a clearTimeout each, which showed in the request path's profile.
 */
export class AttemptDeadline {
  #at: number;
  #firesAt: number;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #expired = false;
  #expiry: Promise<never> | undefined;
  #rejectExpiry: ((reason: unknown) => void) | undefined;
  readonly #onExpire: () => void;

  constructor(ms: number, onExpire: () => void) {
    this.#onExpire = onExpire;
    this.#at = this.#firesAt = Date.now() + ms;
    this.#timer = setTimeout(this.#check, ms);
  }

  /** Whether the deadline passed (and `onExpire` ran): the attempt's failure is a timeout. */
  get expired(): boolean {
    return this.#expired;
  }

  /** The attempt now has `ms` from now. */
  extend(ms: number): void {
    if (this.#timer === undefined) return;
    this.#at = Date.now() + ms;
    // Earlier than the timer is set for: only then is it set again.
    if (this.#at < this.#firesAt) this.#arm(ms);
  }

  /**
   * `work`, or a rejection the moment the deadline passes: `onExpire` aborts the attempt, but a
   * body that ignores the abort must not hold the request past its limit.
   */
  within<T>(work: Promise<T>): Promise<T> {
    if (this.#expired) return Promise.reject(timeoutError());
    if (!this.#expiry) {
      this.#expiry = new Promise<never>((_, reject) => (this.#rejectExpiry = reject));
      this.#expiry.catch(() => {});
    }
    return Promise.race([work, this.#expiry]);
  }

  /** The attempt is over (or handed to something that watches it itself). */
  clear(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #arm(ms: number): void {
    clearTimeout(this.#timer);
    this.#firesAt = Date.now() + ms;
    this.#timer = setTimeout(this.#check, ms);
  }

  readonly #check = (): void => {
    const left = this.#at - Date.now();
    if (left > 0) {
      this.#arm(left);
      return;
    }
    this.#timer = undefined;
    this.#expired = true;
    this.#onExpire();
    this.#rejectExpiry?.(timeoutError());
  };
}

function timeoutError(): DOMException {
  return new DOMException("upstream timeout", "TimeoutError");
}
