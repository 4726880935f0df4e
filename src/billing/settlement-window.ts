/**
 * @module billing/settlement-window
 * Platform-keyed settlements in windows (window-batcher.ts): the settlements an isolate's
 * requests make to one ledger object within SETTLEMENT_WINDOW_MS leave in one `settleBatch`
 * call. Durable Objects bill every call, and a call costs the object more than the settlement
 * it carries, so under load a request's second call (admission is the first) becomes a fraction
 * of one.
 *
 * Only settlements nobody waits for come here. A BYOK answer reports the fee the ledger decides,
 * so it settles at once. A hold outlives its answer by up to one window, and until settled it
 * keeps its reservation and its concurrency slot, so a client sending its next request as the
 * last one ends must not need either: `mayWaitForWindow` lets a settlement wait only when its
 * admission left ample credit (HEADROOM_FACTOR reservations, as for parallel admission), no rate
 * limit near its edge, and neither key nor workspace limits concurrency. Everything else settles
 * at once, as before.
 */
import type { KeyContext } from "../auth/api-keys";
import { WindowBatcher } from "../window-batcher";
import { HEADROOM_FACTOR } from "./admission-outlook";
import type { AdmissionTarget } from "./admission-target";
import type { Headroom, SettleInput, SettleOutcome, SettleResult } from "./ledger-schema";
import { MAX_SETTLE_BATCH } from "./ledger-schema";

/** As long as the trace and generation windows the same requests wait on anyway. */
export const SETTLEMENT_WINDOW_MS = 50;
/** One call's settlements (the object takes up to MAX_SETTLE_BATCH). */
export const SETTLEMENT_WINDOW_MAX = 50;
/** A batch call answers in milliseconds; only a torn-down sender stalls this long. */
const SETTLEMENT_STALL_MS = 10_000;

/** What the admission answered about the room left after this request's hold. */
export interface AdmittedRoom {
  reservedMicros: number;
  headroom: Headroom;
}

/** Whether this request's settlement may wait for its window (see the module's comment). */
export function mayWaitForWindow(auth: KeyContext, room: AdmittedRoom): boolean {
  if (auth.key.concurrency !== null || auth.workspace.concurrency !== null) return false;
  return !room.headroom.ratesTight && room.headroom.freeMicros >= HEADROOM_FACTOR * Math.max(1, room.reservedMicros);
}

/** A settlement waiting in its window; the call that carries it fills in `outcome`. */
interface Pending {
  target: AdmissionTarget;
  input: SettleInput;
  outcome: SettleOutcome | null;
}

async function sendWindow(_objectKey: string, pending: Pending[]): Promise<void> {
  const first = pending[0];
  if (!first) return;
  const outcomes = await first.target.settleBatch(pending.map((p) => p.input));
  pending.forEach((p, i) => {
    p.outcome = outcomes[i] ?? { ok: false, error: "settleBatch answered fewer outcomes than it was sent" };
  });
}

export function settlementWindows(windowMs = SETTLEMENT_WINDOW_MS, maxItems = Math.min(SETTLEMENT_WINDOW_MAX, MAX_SETTLE_BATCH)): WindowBatcher<string, Pending> {
  return new WindowBatcher<string, Pending>("settlement", sendWindow, { windowMs, maxItems, maxWeight: Number.POSITIVE_INFINITY, stallMs: SETTLEMENT_STALL_MS }, (p) => ({
    generationId: p.input.generationId,
    holdId: p.input.holdId,
  }));
}

/** The isolate's windows, one per ledger object. */
const isolateWindows = settlementWindows();

/**
 * Settle through `target`'s window. Resolves with the ledger's answer once the call carrying it
 * has returned; rejects when that call or this settlement failed (the caller logs it). Call it
 * from the request being settled, and keep the promise in its `waitUntil`.
 */
export async function settleInWindow(target: AdmissionTarget, input: SettleInput, windows: WindowBatcher<string, Pending> = isolateWindows): Promise<SettleResult> {
  const pending: Pending = { target, input, outcome: null };
  await windows.add(target.objectKey, pending);
  const outcome = pending.outcome as SettleOutcome | null;
  if (outcome?.ok) return outcome.result;
  throw new Error(outcome ? `settlement refused: ${outcome.error}` : "settlement's batch call failed");
}
