/**
 * Random sequences of admissions, settlements (sometimes above the hold), releases, hold expiry,
 * alarms, top-ups and refunds, checked step by step against a small model of the ledger:
 * balance = Σ journal; the balance goes below zero only by documented settlement overruns; every
 * hold ends exactly once (a second settle, release or expiry changes nothing).
 */
import { runDurableObjectAlarm } from "cloudflare:test";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { HOLD_TTL_MS } from "../../../src/billing/ledger";
import { T0, admitInput, expectBalanced, freshLedger, type LedgerStub } from "./ledger-helpers";

const MODEL_MAX_TOKENS = 4_096;
const FLOOR_TOKENS = 256;

type Command =
  | { kind: "admit"; promptMicros: number; completionPrice: number; maxTokens: number | null }
  | { kind: "settle"; target: number; percent: number }
  | { kind: "release"; target: number }
  | { kind: "advance"; ms: number }
  | { kind: "expire" }
  | { kind: "alarm" }
  | { kind: "topUp"; amount: number; fee: number }
  | { kind: "refund"; amount: number };

const command: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant("admit" as const),
      promptMicros: fc.integer({ min: 0, max: 2_000 }),
      completionPrice: fc.constantFrom(0, 333_333, 1_000_000, 2_500_000),
      maxTokens: fc.option(fc.integer({ min: 1, max: 3_000 }), { nil: null }),
    }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("settle" as const), target: fc.nat(), percent: fc.integer({ min: 0, max: 300 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("release" as const), target: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("advance" as const),
      // Mostly seconds; sometimes past a hold's whole lifetime.
      ms: fc.oneof(fc.integer({ min: 0, max: 120_000 }), fc.integer({ min: HOLD_TTL_MS - 60_000, max: 2 * HOLD_TTL_MS })),
    }),
  },
  { weight: 2, arbitrary: fc.constant({ kind: "expire" as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: "alarm" as const }) },
  {
    weight: 1,
    arbitrary: fc
      .integer({ min: 1, max: 20_000 })
      .chain((amount) => fc.record({ kind: fc.constant("topUp" as const), amount: fc.constant(amount), fee: fc.integer({ min: 0, max: Math.floor(amount / 10) }) })),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("refund" as const), amount: fc.integer({ min: 1, max: 5_000 }) }) },
);

/** What the ledger should hold: the balance, the hold rows still stored, and the overruns so far. */
class Model {
  balance = 0;
  overruns = 0;
  now = T0;
  /** Hold rows not yet deleted (an expired hold stays until something purges it). */
  readonly rows = new Map<string, { amount: number; expiresAt: number }>();
  /** Every hold id ever admitted, in order: commands pick their target from it. */
  readonly ids: string[] = [];

  held(): number {
    let sum = 0;
    for (const hold of this.rows.values()) if (hold.expiresAt > this.now) sum += hold.amount;
    return sum;
  }

  purgeExpired(): number {
    let n = 0;
    for (const [id, hold] of this.rows) {
      if (hold.expiresAt <= this.now) {
        this.rows.delete(id);
        n++;
      }
    }
    return n;
  }

  /** Take a hold row out; true when it was still live. */
  take(id: string): { amount: number } | null {
    const hold = this.rows.get(id);
    this.rows.delete(id);
    return hold && hold.expiresAt > this.now ? hold : null;
  }

  target(n: number): string {
    return this.ids.length === 0 ? "no-such-hold" : this.ids[n % this.ids.length]!;
  }
}

function ceilDiv(a: number, b: number): number {
  return Math.floor((a + b - 1) / b);
}

/** The admission the model expects for an input: the reservation and output cap, or a refusal. */
function expectedAdmission(model: Model, cmd: Extract<Command, { kind: "admit" }>): { reserved: number; maxTokens: number } | null {
  const available = model.balance - model.held();
  const cost = (tokens: number) => cmd.promptMicros + ceilDiv(tokens * cmd.completionPrice, 1_000_000);
  if (cmd.maxTokens !== null) return cost(cmd.maxTokens) <= available ? { reserved: cost(cmd.maxTokens), maxTokens: cmd.maxTokens } : null;
  const affordable =
    available < cmd.promptMicros
      ? 0
      : cmd.completionPrice === 0
        ? MODEL_MAX_TOKENS
        : Math.floor(((available - cmd.promptMicros) * 1_000_000) / cmd.completionPrice);
  const maxTokens = Math.min(MODEL_MAX_TOKENS, affordable);
  return maxTokens >= FLOOR_TOKENS ? { reserved: cost(maxTokens), maxTokens } : null;
}

async function step(stub: LedgerStub, model: Model, cmd: Command): Promise<void> {
  switch (cmd.kind) {
    case "admit": {
      const id = `hold-${model.ids.length}`;
      model.ids.push(id);
      const expected = expectedAdmission(model, cmd);
      const result = await stub.admit(
        admitInput({
          requestId: id,
          promptMicros: cmd.promptMicros,
          completionPrice: cmd.completionPrice,
          requestedMaxTokens: cmd.maxTokens,
          modelMaxTokens: MODEL_MAX_TOKENS,
          floorTokens: FLOOR_TOKENS,
          now: model.now,
        }),
      );
      model.purgeExpired();
      if (expected === null) {
        expect(result).toMatchObject({ ok: false, reason: "insufficient_credits" });
      } else {
        expect(result).toMatchObject({ ok: true, reservedMicros: expected.reserved, maxTokens: expected.maxTokens });
        model.rows.set(id, { amount: expected.reserved, expiresAt: model.now + HOLD_TTL_MS });
      }
      return;
    }
    case "settle": {
      const id = model.target(cmd.target);
      const amount = model.rows.get(id)?.amount ?? 0;
      const charge = Math.floor((amount * cmd.percent) / 100) + (cmd.percent > 100 ? 1 : 0);
      const result = await stub.settle({ holdId: id, costMicros: charge, tokens: 0, generationId: `gen-${id}`, now: model.now });
      const hold = model.take(id);
      if (hold) {
        model.balance -= charge;
        model.overruns += Math.max(0, charge - hold.amount);
        expect(result).toEqual({ settled: true, chargedMicros: charge, balanceMicros: model.balance });
      } else {
        expect(result).toEqual({ settled: false, chargedMicros: 0, balanceMicros: model.balance });
      }
      return;
    }
    case "release": {
      const id = model.target(cmd.target);
      expect(await stub.release(id, model.now)).toBe(model.take(id) !== null);
      return;
    }
    case "advance":
      model.now += cmd.ms;
      return;
    case "expire":
      expect(await stub.expireHolds(model.now)).toBe(model.purgeExpired());
      return;
    case "alarm":
      // The real alarm runs on the real clock, years before the model's: nothing has expired yet.
      await runDurableObjectAlarm(stub);
      return;
    case "topUp":
      model.balance += cmd.amount - cmd.fee;
      expect((await stub.topUp(cmd.amount, cmd.fee)).balanceMicros).toBe(model.balance);
      return;
    case "refund":
      model.balance += cmd.amount;
      expect((await stub.refund(cmd.amount, "gen-refunded")).balanceMicros).toBe(model.balance);
      return;
  }
}

describe("ledger invariants under random operation sequences", () => {
  it("keeps balance = Σ journal, overdraws only by overruns, and ends each hold once", async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 10_000 }), fc.array(command, { minLength: 1, maxLength: 30, size: "max" }), async (start, commands) => {
        const stub = freshLedger();
        const model = new Model();
        if (start > 0) {
          await stub.topUp(start, 0);
          model.balance = start;
        }
        for (const cmd of commands) {
          await step(stub, model, cmd);
          const view = await stub.balance(model.now);
          expect(view.balanceMicros).toBe(model.balance);
          expect(view.heldMicros).toBe(model.held());
          expect(view.balanceMicros).toBeGreaterThanOrEqual(-model.overruns);
          expect(view.balanceMicros - view.heldMicros).toBeGreaterThanOrEqual(-model.overruns);
        }
        await expectBalanced(stub);
      }),
      { numRuns: 100 },
    );
  }, 120_000);
});
