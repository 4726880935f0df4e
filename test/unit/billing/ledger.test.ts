/**
 * The Ledger Durable Object through its RPC methods: admission, settlement and release; every
 * refusal and its numbers; key state and credit limits across UTC period boundaries; rate limits;
 * alarm expiry; top-ups and the journal.
 */
import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { HOLD_TTL_MS } from "../../../src/billing/ledger";
import { T0, admitInput, expectBalanced, freshLedger, holdIds, keyConfig, runAlarmHandler, settleInput, thrown, type LedgerStub } from "./ledger-helpers";

async function funded(micros: number): Promise<LedgerStub> {
  const stub = freshLedger();
  await stub.topUp(micros, 0);
  return stub;
}

async function admitOk(stub: LedgerStub, overrides: Parameters<typeof admitInput>[0] = {}) {
  const result = await stub.admit(admitInput(overrides));
  if (!result.ok) throw new Error(`expected admission, got ${JSON.stringify(result)}`);
  return result;
}

describe("admission and settlement", () => {
  it("reserves the prompt plus max_tokens, then charges the exact cost and frees the rest", async () => {
    const stub = await funded(1_000_000);
    const { receipt, ...admitted } = await admitOk(stub, { requestId: "req-1" });
    expect(receipt).toEqual({ issuer: "ledger", incarnation: expect.any(String), journalId: 1, at: T0, keyId: "key-1", byok: false, promptTokens: 100 });
    expect(admitted).toEqual({
      ok: true,
      holdId: "req-1",
      reservedMicros: 2_000,
      maxTokens: 1_000,
      capped: false,
      rate: null,
      // What the isolate learns for its next request: credit still free after this hold.
      headroom: { freeMicros: 998_000, ratesTight: false },
    });
    expect(await stub.balance()).toMatchObject({ balanceMicros: 1_000_000, heldMicros: 2_000 });

    const settled = await stub.settle(settleInput("req-1", 1_500));
    expect(settled).toEqual({ settled: true, chargedMicros: 1_500, balanceMicros: 998_500 });
    expect(await stub.balance()).toEqual({ balanceMicros: 998_500, totalCreditsMicros: 1_000_000, totalUsageMicros: 1_500, heldMicros: 0 });
    const [, charge] = await stub.journal();
    expect(charge).toMatchObject({ kind: "charge", amountMicros: -1_500, keyId: "key-1", reference: "gen-req-1", at: T0 });
    expect(await stub.keyUsage("key-1", T0)).toEqual({
      keyId: "key-1",
      usageMicros: 1_500,
      usageDailyMicros: 1_500,
      usageWeeklyMicros: 1_500,
      usageMonthlyMicros: 1_500,
      byokUsageMicros: 0,
      limitRemainingMicros: null,
    });
    await expectBalanced(stub);
  });

  it("releases a hold without charging", async () => {
    const stub = await funded(10_000);
    const { holdId } = await admitOk(stub);
    expect(await stub.release(holdId)).toBe(true);
    expect(await stub.balance()).toMatchObject({ balanceMicros: 10_000, heldMicros: 0 });
    expect(await stub.journal()).toHaveLength(1);
    await expectBalanced(stub);
  });

  it("never charges a hold twice: settle and release are idempotent", async () => {
    const stub = await funded(10_000);
    const a = await admitOk(stub);
    expect((await stub.settle(settleInput(a.holdId, 1_200))).settled).toBe(true);
    expect(await stub.settle(settleInput(a.holdId, 1_200))).toEqual({ settled: false, chargedMicros: 0, balanceMicros: 8_800 });
    expect(await stub.release(a.holdId)).toBe(false);

    const b = await admitOk(stub);
    expect(await stub.release(b.holdId)).toBe(true);
    expect(await stub.release(b.holdId)).toBe(false);
    expect((await stub.settle(settleInput(b.holdId, 1_200))).settled).toBe(false);
    expect(await stub.settle(settleInput("never-admitted", 5))).toMatchObject({ settled: false, chargedMicros: 0 });
    expect(await expectBalanced(stub)).toBe(8_800);
  });

  it("writes no journal entry for a zero charge", async () => {
    const stub = await funded(10_000);
    const { holdId } = await admitOk(stub);
    expect(await stub.settle(settleInput(holdId, 0))).toEqual({ settled: true, chargedMicros: 0, balanceMicros: 10_000 });
    expect((await stub.journal()).map((e) => e.kind)).toEqual(["topup"]);
  });

  it("charges the BYOK fee instead of the cost, and counts the platform cost as BYOK usage", async () => {
    const stub = await funded(10_000);
    const { holdId } = await admitOk(stub, { byok: true });
    const settled = await stub.settle({ ...settleInput(holdId, 1_800), byokFeeMicros: 90, byokUsageMicros: 1_800 });
    expect(settled).toEqual({ settled: true, chargedMicros: 90, balanceMicros: 9_910 });
    expect(await stub.keyUsage("key-1", T0)).toMatchObject({ usageMicros: 90, byokUsageMicros: 1_800 });
    await expectBalanced(stub);
  });

  it("answers a retried admission with the same hold, counted once", async () => {
    const stub = await funded(100_000);
    const key = keyConfig({ limits: { rpm: 2, tpm: null, concurrency: null } });
    const first = await admitOk(stub, { requestId: "req-r", key });
    const again = await admitOk(stub, { requestId: "req-r", key });
    expect(again).toEqual(first);
    expect((await stub.balance()).heldMicros).toBe(2_000);
    await admitOk(stub, { key });
    expect(await stub.admit(admitInput({ key }))).toMatchObject({ ok: false, reason: "rate_limited", limit: "rpm" });
  });

  it("reports the headroom left after a hold: the smaller of workspace credit and key limit, and tight rates", async () => {
    const stub = await funded(100_000);
    // Each admission reserves 2,000 µ$ (admitInput's defaults).
    expect((await admitOk(stub)).headroom).toEqual({ freeMicros: 98_000, ratesTight: false });
    const limited = keyConfig({ id: "key-lim", limitMicros: 10_000, limits: { rpm: null, tpm: null, concurrency: 3 } });
    // Key limit 10,000 − this hold's 2,000 = 8,000 < workspace free 96,000. One live hold of 3 allowed: not tight.
    expect((await admitOk(stub, { key: limited })).headroom).toEqual({ freeMicros: 8_000, ratesTight: false });
    // Two live holds of 3 allowed: more than half used.
    expect((await admitOk(stub, { key: limited })).headroom).toEqual({ freeMicros: 6_000, ratesTight: true });
  });

  it("keeps balance and key state across a restart, and charges a hold lost with it once, from its receipt", async () => {
    const stub = await funded(10_000);
    const admitted = await admitOk(stub);
    await stub.setKey(keyConfig({ id: "key-2", disabled: true }));
    await evictDurableObject(stub);
    // Holds live in memory: the restarted object no longer reserves the request's credit.
    expect(await stub.balance()).toMatchObject({ balanceMicros: 10_000, heldMicros: 0 });
    expect(await stub.admit(admitInput({ key: keyConfig({ id: "key-2" }) }))).toEqual({ ok: false, reason: "key_disabled" });
    // Without the receipt the ledger cannot tell a lost hold from a settled one, and charges nothing.
    expect((await stub.settle(settleInput(admitted.holdId, 2_000))).settled).toBe(false);
    const withReceipt = { ...settleInput(admitted.holdId, 2_000), receipt: admitted.receipt };
    expect(await stub.settle(withReceipt)).toEqual({ settled: true, chargedMicros: 2_000, balanceMicros: 8_000 });
    // A retried settlement finds its charge in the journal, in this instance and the next.
    expect(await stub.settle(withReceipt)).toMatchObject({ settled: false, balanceMicros: 8_000 });
    await evictDurableObject(stub);
    expect(await stub.settle(withReceipt)).toMatchObject({ settled: false, balanceMicros: 8_000 });
    expect((await stub.keyUsage("key-1"))?.usageMicros).toBe(2_000);
    await expectBalanced(stub);
    expect(await runInDurableObject(stub, (_, state) => state.storage.sql.exec("SELECT value FROM ledger_meta WHERE key = 'schema_version'").one().value)).toBe(4);
  });

  it("does not charge a lost hold past its lifetime, as it would not charge a live one", async () => {
    const stub = await funded(10_000);
    const admitted = await admitOk(stub, { now: T0 });
    await evictDurableObject(stub);
    const late = { ...settleInput(admitted.holdId, 2_000, T0 + HOLD_TTL_MS), receipt: admitted.receipt };
    expect(await stub.settle(late)).toMatchObject({ settled: false, balanceMicros: 10_000 });
  });

  it("rebuilds balance and key spend from the checkpoint and the journal after it", async () => {
    const stub = await funded(1_000_000);
    const byokKey = keyConfig({ id: "key-byok" });
    // 70 charges cross one checkpoint (every 64 entries); a BYOK settlement with a zero fee is
    // not in the journal at all and must survive too.
    for (let i = 0; i < 70; i++) {
      const { holdId } = await admitOk(stub, { now: T0 + i });
      await stub.settle(settleInput(holdId, 100 + i, T0 + i));
    }
    const byok = await admitOk(stub, { key: byokKey, byok: true, now: T0 + 100 });
    await stub.settle({ ...settleInput(byok.holdId, 0, T0 + 100), byok: true, byokUsageMicros: 5_000, byokFeeMicros: 0 });
    const before = { balance: await stub.balance(T0 + 200), key: await stub.keyUsage("key-1", T0 + 200), byok: await stub.keyUsage("key-byok", T0 + 200) };
    expect(before.balance.balanceMicros).toBe(1_000_000 - (70 * 100 + (69 * 70) / 2));
    expect(before.byok?.byokUsageMicros).toBe(5_000);
    await evictDurableObject(stub);
    expect({ balance: await stub.balance(T0 + 200), key: await stub.keyUsage("key-1", T0 + 200), byok: await stub.keyUsage("key-byok", T0 + 200) }).toEqual(before);
    await expectBalanced(stub);
  });

  it("refuses malformed input", async () => {
    const stub = freshLedger();
    expect(await thrown(stub.admit(admitInput({ promptMicros: -1 })))).toBeInstanceOf(Error);
    expect(await thrown(stub.admit(admitInput({ promptMicros: 0.5 })))).toBeInstanceOf(Error);
    expect(await thrown(stub.settle({ ...settleInput("h", 1), costMicros: 1.5 }))).toBeInstanceOf(Error);
    expect(await thrown(stub.release(""))).toBeInstanceOf(Error);
  });
});

describe("credit refusals", () => {
  it("refuses a request whose max_tokens the available credits cannot cover, saying what they afford", async () => {
    const stub = await funded(1_500);
    expect(await stub.admit(admitInput())).toEqual({
      ok: false,
      reason: "insufficient_credits",
      requestedTokens: 1_000,
      affordableTokens: 500,
      balanceMicros: 1_500,
    });
    await expectBalanced(stub);
  });

  it("counts live holds against the balance: a second request cannot spend what the first reserved", async () => {
    const stub = await funded(3_000);
    await admitOk(stub);
    expect(await stub.admit(admitInput())).toMatchObject({ ok: false, reason: "insufficient_credits", affordableTokens: 0, balanceMicros: 3_000 });
  });

  it("charges an overrun past the hold, then refuses even a zero-cost request until a top-up", async () => {
    const stub = await funded(2_000);
    const { holdId } = await admitOk(stub);
    expect(await stub.settle(settleInput(holdId, 3_000))).toEqual({ settled: true, chargedMicros: 3_000, balanceMicros: -1_000 });
    const free = { promptMicros: 0, completionPrice: 0 };
    expect(await stub.admit(admitInput(free))).toMatchObject({ ok: false, reason: "insufficient_credits", balanceMicros: -1_000 });
    expect(await stub.admit(admitInput({ ...free, requestedMaxTokens: null }))).toMatchObject({ ok: false, reason: "insufficient_credits" });
    await stub.topUp(1_000, 0);
    expect(await stub.admit(admitInput(free))).toMatchObject({ ok: true, reservedMicros: 0 });
    await expectBalanced(stub);
  });

  it("refuses everything after a negative adjustment takes the balance below zero", async () => {
    const stub = await funded(500);
    await stub.adjust(-600, "chargeback");
    expect(await stub.admit(admitInput({ promptMicros: 0, completionPrice: 0 }))).toMatchObject({ ok: false, reason: "insufficient_credits", balanceMicros: -100 });
  });

  it("admits a free request on a zero balance", async () => {
    const stub = freshLedger();
    expect(await stub.admit(admitInput({ promptMicros: 0, completionPrice: 0 }))).toMatchObject({ ok: true, reservedMicros: 0, maxTokens: 1_000 });
  });

  it("caps max_tokens to what the balance affords when the client set none", async () => {
    const stub = await funded(1_500);
    expect(await stub.admit(admitInput({ requestedMaxTokens: null }))).toMatchObject({ ok: true, maxTokens: 500, capped: true, reservedMicros: 1_500 });
    expect((await stub.balance()).heldMicros).toBe(1_500);
  });

  it("uses the model's maximum when the balance affords it", async () => {
    const stub = await funded(1_000_000);
    expect(await stub.admit(admitInput({ requestedMaxTokens: null }))).toMatchObject({ ok: true, maxTokens: 4_096, capped: false, reservedMicros: 5_096 });
    expect(await stub.admit(admitInput({ requestedMaxTokens: null, completionPrice: 0 }))).toMatchObject({ ok: true, maxTokens: 4_096, capped: false, reservedMicros: 1_000 });
  });

  it("refuses a request without max_tokens when fewer than the floor tokens are affordable", async () => {
    const stub = await funded(1_255);
    expect(await stub.admit(admitInput({ requestedMaxTokens: null }))).toEqual({
      ok: false,
      reason: "insufficient_credits",
      requestedTokens: 4_096,
      affordableTokens: 255,
      balanceMicros: 1_255,
    });
    await stub.topUp(1, 0);
    expect(await stub.admit(admitInput({ requestedMaxTokens: null }))).toMatchObject({ ok: true, maxTokens: 256, capped: true });
  });

  it("rounds the completion reservation up to the µ$ and affordable tokens down", async () => {
    // 333,333 µ$ per million: 1,000 tokens cost 333.333 µ$, reserved as 334.
    const stub = await funded(1_334);
    expect(await stub.admit(admitInput({ completionPrice: 333_333 }))).toMatchObject({ ok: true, reservedMicros: 1_334 });
    const other = await funded(1_333);
    expect(await other.admit(admitInput({ completionPrice: 333_333 }))).toMatchObject({ ok: false, affordableTokens: 999 });
  });

  it("never asks for more than the model's own output cap as the floor", async () => {
    const stub = await funded(1_150);
    expect(await stub.admit(admitInput({ requestedMaxTokens: null, modelMaxTokens: 100 }))).toMatchObject({ ok: true, maxTokens: 100, capped: false });
  });
});

describe("key state", () => {
  it("refuses a key disabled through setKey on the very next call, whatever the snapshot says", async () => {
    const stub = await funded(100_000);
    await admitOk(stub);
    await stub.setKey(keyConfig({ disabled: true }));
    expect(await stub.admit(admitInput({ key: keyConfig({ disabled: false }) }))).toEqual({ ok: false, reason: "key_disabled" });
    await stub.setKey(keyConfig({ disabled: false }));
    await admitOk(stub);
  });

  it("refuses a key from its expiry instant on", async () => {
    const stub = await funded(100_000);
    await stub.setKey(keyConfig({ expiresAt: T0 }));
    await admitOk(stub, { now: T0 - 1 });
    expect(await stub.admit(admitInput({ now: T0 }))).toEqual({ ok: false, reason: "key_expired" });
  });

  it("takes disabled and expiry from the snapshot of a key it has never seen, and its own copy afterwards", async () => {
    const stub = await funded(100_000);
    expect(await stub.admit(admitInput({ key: keyConfig({ id: "k-new", expiresAt: T0 - 1 }) }))).toEqual({ ok: false, reason: "key_expired" });
    // Known now, with the expiry it was first seen with: a snapshot without expiry does not revive it.
    expect(await stub.admit(admitInput({ key: keyConfig({ id: "k-new", expiresAt: null }) }))).toEqual({ ok: false, reason: "key_expired" });
    await stub.setKey(keyConfig({ id: "k-new", expiresAt: null }));
    await admitOk(stub, { key: keyConfig({ id: "k-new", expiresAt: T0 - 1 }) });
  });

  it("keeps spend counters when setKey changes the configuration", async () => {
    const stub = await funded(100_000);
    const { holdId } = await admitOk(stub);
    await stub.settle(settleInput(holdId, 700));
    await stub.setKey(keyConfig({ limitMicros: 5_000, limitReset: "daily" }));
    expect(await stub.keyUsage("key-1", T0)).toMatchObject({ usageMicros: 700, usageDailyMicros: 700, limitRemainingMicros: 4_300 });
    expect(await stub.keyUsage("unknown")).toBeNull();
  });
});

describe("key credit limits", () => {
  /** Spend `micros` on the key at `now` through one request that reserves exactly that. */
  async function spend(stub: LedgerStub, key: ReturnType<typeof keyConfig>, micros: number, now: number): Promise<void> {
    const { holdId } = await admitOk(stub, { key, now, promptMicros: micros, requestedMaxTokens: 1, completionPrice: 0 });
    expect((await stub.settle(settleInput(holdId, micros, now))).settled).toBe(true);
  }
  const probe = (key: ReturnType<typeof keyConfig>, now: number) =>
    admitInput({ key, now, promptMicros: 1, requestedMaxTokens: 1, completionPrice: 0 });

  it("refuses what the key limit cannot cover, saying what it affords", async () => {
    const stub = await funded(1_000_000);
    const key = keyConfig({ limitMicros: 1_500, limitReset: "daily" });
    expect(await stub.admit(admitInput({ key }))).toEqual({
      ok: false,
      reason: "key_limit",
      requestedTokens: 1_000,
      affordableTokens: 500,
      limitRemainingMicros: 1_500,
    });
    expect(await stub.admit(admitInput({ key, requestedMaxTokens: null }))).toMatchObject({ ok: true, maxTokens: 500, capped: true });
  });

  it("counts the key's live holds against its limit", async () => {
    const stub = await funded(1_000_000);
    const key = keyConfig({ limitMicros: 4_000 });
    await admitOk(stub, { key });
    await admitOk(stub, { key });
    expect(await stub.admit(admitInput({ key }))).toMatchObject({ ok: false, reason: "key_limit", limitRemainingMicros: 0 });
    // Another key of the workspace is not affected.
    await admitOk(stub, { key: keyConfig({ id: "key-2", limitMicros: 4_000 }) });
  });

  it("resets a daily limit at UTC midnight", async () => {
    const stub = await funded(1_000_000);
    const key = keyConfig({ limitMicros: 2_000, limitReset: "daily" });
    const lateMonday = Date.UTC(2030, 0, 7, 23, 0);
    await spend(stub, key, 2_000, lateMonday);
    expect(await stub.admit(probe(key, Date.UTC(2030, 0, 7, 23, 59, 59, 999)))).toMatchObject({ ok: false, reason: "key_limit" });
    expect(await stub.keyUsage("key-1", Date.UTC(2030, 0, 7, 23, 59))).toMatchObject({ usageDailyMicros: 2_000, limitRemainingMicros: 0 });
    expect(await stub.admit(probe(key, Date.UTC(2030, 0, 8)))).toMatchObject({ ok: true });
    expect(await stub.keyUsage("key-1", Date.UTC(2030, 0, 8))).toMatchObject({ usageMicros: 2_000, usageDailyMicros: 0, usageWeeklyMicros: 2_000 });
  });

  it("resets a weekly limit on Monday 00:00 UTC", async () => {
    const stub = await funded(1_000_000);
    const key = keyConfig({ limitMicros: 2_000, limitReset: "weekly" });
    await spend(stub, key, 2_000, Date.UTC(2030, 0, 7, 0, 0)); // Monday, first instant of the week
    expect(await stub.admit(probe(key, Date.UTC(2030, 0, 13, 23, 59, 59, 999)))).toMatchObject({ ok: false, reason: "key_limit" }); // Sunday
    expect(await stub.admit(probe(key, Date.UTC(2030, 0, 14)))).toMatchObject({ ok: true }); // next Monday
  });

  it("resets a monthly limit on the 1st, 00:00 UTC", async () => {
    const stub = await funded(1_000_000);
    const key = keyConfig({ limitMicros: 2_000, limitReset: "monthly" });
    await spend(stub, key, 2_000, Date.UTC(2030, 0, 15));
    expect(await stub.admit(probe(key, Date.UTC(2030, 0, 31, 23, 59, 59, 999)))).toMatchObject({ ok: false, reason: "key_limit" });
    expect(await stub.admit(probe(key, Date.UTC(2030, 1, 1)))).toMatchObject({ ok: true });
    expect(await stub.keyUsage("key-1", Date.UTC(2030, 1, 1))).toMatchObject({ usageMicros: 2_000, usageMonthlyMicros: 0 });
  });

  it("never resets a limit without a reset period", async () => {
    const stub = await funded(1_000_000);
    const key = keyConfig({ limitMicros: 2_000, limitReset: null });
    await spend(stub, key, 2_000, T0);
    expect(await stub.admit(probe(key, Date.UTC(2031, 5, 1)))).toMatchObject({ ok: false, reason: "key_limit" });
  });

  it("counts BYOK usage against the limit when the key includes it", async () => {
    const stub = await funded(1_000_000);
    const key = keyConfig({ limitMicros: 5_000, includeByokInLimit: true });
    const { holdId } = await admitOk(stub, { key, byok: true });
    await stub.settle({ ...settleInput(holdId, 0), byokFeeMicros: 150, byokUsageMicros: 3_000 });
    expect(await stub.keyUsage("key-1", T0)).toMatchObject({ usageMicros: 150, byokUsageMicros: 3_000, limitRemainingMicros: 1_850 });
    expect(await stub.admit(admitInput({ key }))).toMatchObject({ ok: false, reason: "key_limit", limitRemainingMicros: 1_850 });
    expect(await stub.admit(admitInput({ key, byok: true }))).toMatchObject({ ok: false, reason: "key_limit" });
  });

  it("leaves BYOK usage out of the limit when the key excludes it", async () => {
    const stub = await funded(1_000_000);
    const key = keyConfig({ limitMicros: 5_000, includeByokInLimit: false });
    const { holdId } = await admitOk(stub, { key, byok: true });
    await stub.settle({ ...settleInput(holdId, 0), byokFeeMicros: 150, byokUsageMicros: 3_000 });
    expect(await stub.keyUsage("key-1", T0)).toMatchObject({ usageMicros: 150, byokUsageMicros: 3_000, limitRemainingMicros: 4_850 });
    await admitOk(stub, { key });
    // A BYOK request is not held against a limit that excludes BYOK usage.
    await admitOk(stub, { key, byok: true, requestedMaxTokens: 100_000 });
  });
});

describe("rate limits", () => {
  const at = T0 + 10_000; // 10 s into a minute
  const nextMinute = T0 / 1000 + 60;

  it("limits requests per minute per key, with the next minute boundary and a sliding-window retry", async () => {
    const stub = await funded(1_000_000);
    const key = keyConfig({ limits: { rpm: 3, tpm: null, concurrency: null } });
    const remaining: (number | undefined)[] = [];
    for (let i = 0; i < 3; i++) remaining.push((await admitOk(stub, { key, now: at })).rate?.remaining);
    expect(remaining).toEqual([2, 1, 0]);
    expect((await admitOk(stub, { key: keyConfig({ id: "key-2" }), now: at })).rate).toBeNull();
    expect(await stub.admit(admitInput({ key, now: at }))).toEqual({
      ok: false,
      reason: "rate_limited",
      scope: "key",
      limit: "rpm",
      limitValue: 3,
      remaining: 0,
      resetAt: nextMinute,
      // Next minute the 3 requests weigh 3 × (60 − t)/60; one more fits once that is ≤ 2: t = 20 s.
      retryAfterSeconds: 70,
    });
    expect(await stub.admit(admitInput({ key, now: at + 69_999 }))).toMatchObject({ ok: false, limit: "rpm" });
    expect(await admitOk(stub, { key, now: at + 70_000 })).toMatchObject({ rate: { limit: 3, remaining: 0, resetAt: nextMinute + 60 } });
  });

  it("limits requests per minute across the workspace's keys", async () => {
    const stub = await funded(1_000_000);
    const workspaceLimits = { rpm: 2, tpm: null, concurrency: null };
    expect((await admitOk(stub, { workspaceLimits, now: at })).rate).toEqual({ limit: 2, remaining: 1, resetAt: nextMinute });
    await admitOk(stub, { workspaceLimits, key: keyConfig({ id: "key-2" }), now: at });
    expect(await stub.admit(admitInput({ workspaceLimits, key: keyConfig({ id: "key-3" }), now: at }))).toMatchObject({
      ok: false,
      scope: "workspace",
      limit: "rpm",
      limitValue: 2,
      resetAt: nextMinute,
    });
  });

  it("reports the tighter of the key and workspace request limits", async () => {
    const stub = await funded(1_000_000);
    const key = keyConfig({ limits: { rpm: 10, tpm: null, concurrency: null } });
    const workspaceLimits = { rpm: 3, tpm: null, concurrency: null };
    expect((await admitOk(stub, { key, workspaceLimits, now: at })).rate).toEqual({ limit: 3, remaining: 2, resetAt: nextMinute });
  });

  it("checks the key scope before the workspace scope", async () => {
    const stub = await funded(1_000_000);
    const key = keyConfig({ limits: { rpm: 1, tpm: null, concurrency: null } });
    const workspaceLimits = { rpm: 1, tpm: null, concurrency: null };
    await admitOk(stub, { key, workspaceLimits, now: at });
    expect(await stub.admit(admitInput({ key, workspaceLimits, now: at }))).toMatchObject({ scope: "key", limit: "rpm" });
  });

  it("limits tokens per minute: prompt tokens at admission, the rest of the answer at settlement", async () => {
    const stub = await funded(1_000_000);
    const key = keyConfig({ limits: { rpm: null, tpm: 1_000, concurrency: null } });
    const a = await admitOk(stub, { key, promptTokens: 400, now: at });
    await admitOk(stub, { key, promptTokens: 400, now: at });
    expect(await stub.admit(admitInput({ key, promptTokens: 400, now: at }))).toEqual({
      ok: false,
      reason: "rate_limited",
      scope: "key",
      limit: "tpm",
      limitValue: 1_000,
      remaining: 200,
      resetAt: nextMinute,
      // Next minute 800 tokens weigh 800 × (60 − t)/60; 400 more fit once that is ≤ 600: t = 15 s.
      retryAfterSeconds: 65,
    });
    await admitOk(stub, { key, promptTokens: 200, now: at });
    // 400 prompt tokens were counted at admission; settlement adds the 300 of the answer.
    await stub.settle(settleInput(a.holdId, 100, at, 700));
    expect(await stub.admit(admitInput({ key, promptTokens: 0, now: at }))).toMatchObject({ ok: false, limit: "tpm", remaining: 0 });
  });

  it("limits tokens per minute across the workspace", async () => {
    const stub = await funded(1_000_000);
    const workspaceLimits = { rpm: null, tpm: 500, concurrency: null };
    await admitOk(stub, { workspaceLimits, promptTokens: 300, now: at });
    expect(await stub.admit(admitInput({ workspaceLimits, key: keyConfig({ id: "key-2" }), promptTokens: 300, now: at }))).toMatchObject({
      ok: false,
      scope: "workspace",
      limit: "tpm",
      remaining: 200,
    });
  });

  it("limits concurrent requests per key until one finishes", async () => {
    const stub = await funded(1_000_000);
    const key = keyConfig({ limits: { rpm: null, tpm: null, concurrency: 2 } });
    const first = await admitOk(stub, { key, now: at });
    await admitOk(stub, { key, now: at });
    expect(await stub.admit(admitInput({ key, now: at }))).toEqual({
      ok: false,
      reason: "rate_limited",
      scope: "key",
      limit: "concurrency",
      limitValue: 2,
      remaining: 0,
      resetAt: at / 1000 + 1,
      retryAfterSeconds: 1,
    });
    await admitOk(stub, { key: keyConfig({ id: "key-2" }), now: at });
    await stub.settle(settleInput(first.holdId, 10, at));
    await admitOk(stub, { key, now: at });
  });

  it("limits concurrent requests across the workspace", async () => {
    const stub = await funded(1_000_000);
    const workspaceLimits = { rpm: null, tpm: null, concurrency: 1 };
    const first = await admitOk(stub, { workspaceLimits, now: at });
    expect(await stub.admit(admitInput({ workspaceLimits, key: keyConfig({ id: "key-2" }), now: at }))).toMatchObject({
      ok: false,
      scope: "workspace",
      limit: "concurrency",
      retryAfterSeconds: 1,
    });
    await stub.release(first.holdId);
    await admitOk(stub, { workspaceLimits, key: keyConfig({ id: "key-2" }), now: at });
  });

  it("does not count refused requests", async () => {
    const stub = await funded(1_500);
    const key = keyConfig({ limits: { rpm: 1, tpm: null, concurrency: null } });
    expect(await stub.admit(admitInput({ key, now: at }))).toMatchObject({ ok: false, reason: "insufficient_credits" });
    await admitOk(stub, { key, now: at, requestedMaxTokens: 1 });
  });
});

describe("hold expiry", () => {
  it("drops the holds of crashed requests when an alarm left by an earlier version runs; running it twice is harmless", async () => {
    const stub = await funded(10_000);
    const now = Date.now();
    const live = await admitOk(stub, { requestId: "live", now });
    // A request admitted longer ago than the hold lifetime that never settled.
    await admitOk(stub, { requestId: "crashed", now: now - HOLD_TTL_MS - 1_000 });
    await runAlarmHandler(stub);
    await runAlarmHandler(stub);
    expect(await holdIds(stub)).toEqual(["live"]);
    expect(await stub.balance()).toMatchObject({ balanceMicros: 10_000, heldMicros: 2_000 });
    expect(await stub.settle(settleInput("crashed", 2_000, now))).toMatchObject({ settled: false });
    expect(await stub.settle(settleInput(live.holdId, 2_000, now))).toMatchObject({ settled: true, balanceMicros: 8_000 });
    await expectBalanced(stub);
  });

  it("schedules no alarm: holds lapse in memory, dropped by the next call", async () => {
    const stub = await funded(10_000);
    await admitOk(stub, { requestId: "a", now: T0 });
    await admitOk(stub, { requestId: "b", now: T0 + 60_000 });
    expect(await runInDurableObject(stub, (_, state) => state.storage.getAlarm())).toBeNull();
    expect(await stub.expireHolds(T0 + HOLD_TTL_MS - 1)).toBe(0);
    expect(await stub.expireHolds(T0 + HOLD_TTL_MS)).toBe(1);
    expect(await stub.expireHolds(T0 + HOLD_TTL_MS)).toBe(0);
    expect(await holdIds(stub)).toEqual(["b"]);
    // The expired hold frees its credits and cannot be settled any more.
    expect(await stub.settle(settleInput("a", 2_000, T0 + HOLD_TTL_MS))).toMatchObject({ settled: false, balanceMicros: 10_000 });
  });

  it("treats a hold past its expiry as gone before anything drops it", async () => {
    const stub = await funded(10_000);
    await admitOk(stub, { requestId: "old-1", now: T0 });
    await admitOk(stub, { requestId: "old-2", now: T0 });
    expect(await stub.balance(T0 + HOLD_TTL_MS)).toMatchObject({ heldMicros: 0 });
    expect(await stub.settle(settleInput("old-1", 2_000, T0 + HOLD_TTL_MS))).toMatchObject({ settled: false, balanceMicros: 10_000 });
    expect(await stub.release("old-2", T0 + HOLD_TTL_MS)).toBe(false);
    expect(await holdIds(stub)).toEqual([]);
  });
});

describe("top-ups, refunds, adjustments and the journal", () => {
  it("journals a top-up and its purchase fee separately", async () => {
    const stub = freshLedger();
    expect(await stub.topUp(10_000_000, 800_000, "card")).toEqual({
      balanceMicros: 9_200_000,
      totalCreditsMicros: 9_200_000,
      totalUsageMicros: 0,
      heldMicros: 0,
    });
    expect((await stub.journal()).map(({ kind, amountMicros, note }) => ({ kind, amountMicros, note }))).toEqual([
      { kind: "topup", amountMicros: 10_000_000, note: "card" },
      { kind: "fee", amountMicros: -800_000, note: "purchase fee" },
    ]);
    await expectBalanced(stub);
  });

  it("credits refunds and applies signed adjustments", async () => {
    const stub = await funded(5_000);
    expect(await stub.refund(1_000, "gen-1", "upstream outage")).toMatchObject({ balanceMicros: 6_000, totalCreditsMicros: 6_000 });
    expect(await stub.adjust(-2_500, "goodwill reversed")).toMatchObject({ balanceMicros: 3_500, totalCreditsMicros: 6_000, totalUsageMicros: 2_500 });
    expect(await stub.adjust(500, "goodwill")).toMatchObject({ balanceMicros: 4_000, totalCreditsMicros: 6_500 });
    const entries = await stub.journal();
    expect(entries.map((e) => [e.kind, e.amountMicros, e.reference])).toEqual([
      ["topup", 5_000, null],
      ["refund", 1_000, "gen-1"],
      ["adjustment", -2_500, null],
      ["adjustment", 500, null],
    ]);
    await expectBalanced(stub);
  });

  it("refuses invalid amounts", async () => {
    const stub = freshLedger();
    expect(await thrown(stub.topUp(0, 0))).toBeInstanceOf(Error);
    expect(await thrown(stub.topUp(100, 101))).toBeInstanceOf(Error);
    expect(await thrown(stub.topUp(1.5, 0))).toBeInstanceOf(Error);
    expect(await thrown(stub.refund(0, "gen"))).toBeInstanceOf(Error);
    expect(await thrown(stub.refund(10, ""))).toBeInstanceOf(Error);
    expect(await thrown(stub.adjust(0, "nothing"))).toBeInstanceOf(Error);
    expect(await thrown(stub.adjust(10, ""))).toBeInstanceOf(Error);
    expect(await stub.journal()).toEqual([]);
  });

  it("returns the newest journal entries, oldest first", async () => {
    const stub = freshLedger();
    for (let i = 1; i <= 5; i++) await stub.topUp(i * 100, 0);
    expect((await stub.journal(2)).map((e) => e.amountMicros)).toEqual([400, 500]);
    const all = await stub.journal();
    expect(all.map((e) => e.id)).toEqual([...all.map((e) => e.id)].sort((a, b) => a - b));
  });
});
