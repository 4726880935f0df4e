/**
 * @module billing/admission-outlook
 * Whether a request may start upstream while its admission is still on the way.
 *
 * A Durable Object lives in one place, so a far-away ledger costs its round trip on every request.
 * When this isolate's last admission for the same key (by the same object) left ample credit and
 * no rate limit near its edge, the next request is admitted *in parallel* with its first upstream
 * attempt: the admission is still the one that decides, no byte reaches the client before it
 * answers, and a refusal aborts the upstream at once. A wrong guess costs the operator an aborted
 * upstream call, never an overdraft. Near any edge — or with no recent view — admission runs first.
 */
import type { AdmitResult, Headroom } from "./ledger-schema";

/** A view older than this is not trusted: other isolates may have spent meanwhile. */
export const OUTLOOK_TTL_MS = 10_000;
/** Parallel only when the free credit covers this many of the request's full reservation. */
export const HEADROOM_FACTOR = 4;
/** Views kept per isolate; the oldest is dropped beyond this. */
const MAX_VIEWS = 10_000;

interface View extends Headroom {
  at: number;
}

const views = new Map<string, View>();

/** The view's name: one per admitting object and key (key limits and key rates differ). */
export function outlookScope(targetName: string, workspaceId: string, keyId: string): string {
  return `${workspaceId}\u0000${targetName}\u0000${keyId}`;
}

/**
 * Whether a request whose largest possible reservation is `reservationMicros` may be admitted in
 * parallel with its upstream call.
 */
export function mayAdmitInParallel(scope: string, reservationMicros: number, now = Date.now()): boolean {
  const view = views.get(scope);
  if (!view || now - view.at > OUTLOOK_TTL_MS || view.ratesTight) return false;
  return view.freeMicros >= HEADROOM_FACTOR * Math.max(1, reservationMicros);
}

/** Remember what an admission answered; a refusal forgets the view, so the next request waits. */
export function recordOutlook(scope: string, result: AdmitResult, now = Date.now()): void {
  views.delete(scope);
  if (!result.ok) return;
  if (views.size >= MAX_VIEWS) {
    const oldest = views.keys().next();
    if (!oldest.done) views.delete(oldest.value);
  }
  views.set(scope, { ...result.headroom, at: now });
}

/** Forget every view (tests). */
export function forgetOutlooks(): void {
  views.clear();
}
