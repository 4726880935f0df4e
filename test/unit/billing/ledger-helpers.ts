/**
 * Helpers for the Ledger Durable Object tests: a fresh object per test (storage is isolated per
 * file, not per test), inputs with round numbers, and the balance = Σ journal check.
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, expect } from "vitest";
import type { Ledger } from "../../../src/billing/ledger";
import type { AdmitInput, KeyConfig } from "../../../src/billing/ledger-schema";

export type LedgerStub = DurableObjectStub<Ledger>;

/** Monday 2030-01-07 12:00:00 UTC: a minute boundary in the future, so no alarm set for it fires during a run. */
export const T0 = Date.UTC(2030, 0, 7, 12, 0, 0);

const opened: LedgerStub[] = [];

/** A ledger nobody else uses. Its alarm is deleted after the test (alarms ignore isolated storage). */
export function freshLedger(): LedgerStub {
  const stub = env.LEDGER.getByName(crypto.randomUUID());
  opened.push(stub);
  return stub;
}

afterEach(async () => {
  for (const stub of opened.splice(0)) await runInDurableObject(stub, (_, state) => state.storage.deleteAlarm());
});

export function keyConfig(overrides: Partial<KeyConfig> = {}): KeyConfig {
  return {
    id: "key-1",
    disabled: false,
    expiresAt: null,
    limitMicros: null,
    limitReset: null,
    includeByokInLimit: false,
    limits: { rpm: null, tpm: null, concurrency: null },
    ...overrides,
  };
}

/**
 * An admission where one completion token costs 1 µ$ (1,000,000 µ$ per million): the reservation
 * is promptMicros + maxTokens.
 */
export function admitInput(overrides: Partial<AdmitInput> = {}): AdmitInput {
  return {
    requestId: crypto.randomUUID(),
    key: keyConfig(),
    workspaceLimits: { rpm: null, tpm: null, concurrency: null },
    promptMicros: 1_000,
    completionPrice: 1_000_000,
    requestedMaxTokens: 1_000,
    modelMaxTokens: 4_096,
    floorTokens: 256,
    promptTokens: 100,
    byok: false,
    now: T0,
    ...overrides,
  };
}

/** Settle input for a hold, charging `costMicros`. */
export function settleInput(holdId: string, costMicros: number, now = T0, tokens = 0) {
  return { holdId, costMicros, tokens, generationId: `gen-${holdId}`, now };
}

/** Balance = Σ journal, and the running totals agree with the journal. */
export async function expectBalanced(stub: LedgerStub): Promise<number> {
  const [view, entries] = await Promise.all([stub.balance(), stub.journal(1000)]);
  const sum = entries.reduce((total, e) => total + e.amountMicros, 0);
  expect(view.balanceMicros).toBe(sum);
  // Credits net of fees; usage is every other debit; the two always explain the balance.
  const credits = entries.filter((e) => e.amountMicros > 0 || e.kind === "fee").reduce((t, e) => t + e.amountMicros, 0);
  const usage = entries.filter((e) => e.amountMicros < 0 && e.kind !== "fee").reduce((t, e) => t - e.amountMicros, 0);
  expect(view.totalCreditsMicros).toBe(credits);
  expect(view.totalUsageMicros).toBe(usage);
  expect(view.balanceMicros).toBe(credits - usage);
  return view.balanceMicros;
}

/** Ids of the holds the ledger keeps in memory (expired ones not yet dropped included). */
export async function holdIds(stub: LedgerStub): Promise<string[]> {
  return (await stub.holds()).map((hold) => hold.id);
}

/**
 * The error an RPC call rejects with. (`expect(rpcPromise).rejects` reads properties of the RPC
 * promise, each a pipelined call that rejects unhandled; awaiting it in a try block does not.)
 */
export async function thrown(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected the call to throw");
}

/** Run the alarm handler directly, whether or not an alarm is scheduled (as a redelivery would). */
export function runAlarmHandler(stub: LedgerStub): Promise<void> {
  return runInDurableObject(stub, (instance: Ledger) => instance.alarm());
}
