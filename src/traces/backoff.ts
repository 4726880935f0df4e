/**
 * @module traces/backoff
 * How long a failed delivery waits before its next attempt: exponential from 10 s, doubling per
 * attempt up to 15 minutes, so a destination that is down for an hour is retried a handful of
 * times, not hammered; a destination that says when to come back (Retry-After) is believed,
 * within the queue's 12-hour limit on delays.
 */

export const RETRY_BASE_SECONDS = 10;
export const RETRY_MAX_SECONDS = 15 * 60;
/** Queues accept delays up to 12 hours. */
export const QUEUE_MAX_DELAY_SECONDS = 12 * 60 * 60;

/** The delay before the next attempt of a message that has had `attempts` attempts (1 after the first). */
export function retryDelaySeconds(attempts: number, retryAfterSeconds: number | null = null): number {
  if (retryAfterSeconds !== null && Number.isFinite(retryAfterSeconds)) {
    return Math.min(QUEUE_MAX_DELAY_SECONDS, Math.max(1, Math.ceil(retryAfterSeconds)));
  }
  const exponent = Math.max(0, Math.min(attempts - 1, 20));
  return Math.min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2 ** exponent);
}
