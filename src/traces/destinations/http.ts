/**
 * @module traces/destinations/http
 * What every destination's delivery reports, and how an HTTP answer becomes that report: 2xx is
 * delivered; 408, 425, 429 and 5xx (and no answer at all) are worth a retry, with the
 * destination's Retry-After when it gives one; any other 4xx is permanent — the request itself is
 * wrong (bad credentials, unknown endpoint) and retrying would only hide it.
 */

/** The outcome of delivering one trace to one destination. */
export type DeliveryOutcome =
  | { ok: true; status: number | null }
  | { ok: false; retryable: boolean; error: string; status: number | null; retryAfterSeconds: number | null };

/** An HTTP delivery that has not answered after this long is abandoned (and retried later). */
export const DELIVERY_TIMEOUT_MS = 15_000;

const RETRYABLE_4XX = new Set([408, 425, 429]);

export function isRetryableStatus(status: number): boolean {
  return status >= 500 || RETRYABLE_4XX.has(status);
}

/** Seconds to wait from a Retry-After header (delta-seconds or an HTTP date); null when absent or unreadable. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | null {
  if (value === null || value.trim() === "") return null;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return null;
  return Math.max(0, Math.ceil((date - now) / 1000));
}

/** The outcome an HTTP response stands for; reads at most a short excerpt of an error body. */
export async function outcomeOf(response: Response, what: string): Promise<DeliveryOutcome> {
  if (response.ok) {
    await response.body?.cancel();
    return { ok: true, status: response.status };
  }
  const excerpt = (await response.text().catch(() => "")).slice(0, 200).replace(/\s+/g, " ").trim();
  return {
    ok: false,
    retryable: isRetryableStatus(response.status),
    error: `${what} answered HTTP ${response.status}${excerpt ? `: ${excerpt}` : ""}`,
    status: response.status,
    retryAfterSeconds: parseRetryAfter(response.headers.get("retry-after")),
  };
}

/** A failure with no HTTP answer (DNS, reset, timeout): always worth a retry. */
export function networkFailure(what: string, error: unknown): DeliveryOutcome {
  const timeout = error instanceof DOMException && (error.name === "TimeoutError" || error.name === "AbortError");
  const detail = timeout ? `no answer within ${DELIVERY_TIMEOUT_MS / 1000} s` : error instanceof Error ? error.message : String(error);
  return { ok: false, retryable: true, error: `${what} could not be reached: ${detail}`, status: null, retryAfterSeconds: null };
}

/** POST with the delivery timeout; never throws. */
export async function post(url: string, init: { headers: Record<string, string>; body: string }, what: string): Promise<DeliveryOutcome> {
  try {
    const response = await fetch(url, { method: "POST", headers: init.headers, body: init.body, signal: AbortSignal.timeout(DELIVERY_TIMEOUT_MS) });
    return await outcomeOf(response, what);
  } catch (error) {
    return networkFailure(what, error);
  }
}

/** A permanent failure that is the destination's configuration, not the network. */
export function misconfigured(error: string): DeliveryOutcome {
  return { ok: false, retryable: false, error, status: null, retryAfterSeconds: null };
}

/** Run `task` over `items` with at most `limit` at a time, results in order (Workers allow 6 open connections). */
export async function mapLimited<T, R>(items: readonly T[], limit: number, task: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await task(items[index] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
