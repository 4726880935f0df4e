/**
 * The Ledger's memory store keeps memory and SQLite in step: a transaction that throws leaves
 * both as they were, including across a checkpoint, and a fresh load sees what was committed.
 */
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { CHECKPOINT_EVERY, MemoryLedgerStore } from "../../../src/billing/ledger-memory-store";
import { emptyUsage } from "../../../src/billing/ledger-periods";
import { T0, freshLedger, keyConfig } from "./ledger-helpers";

const hold = (id: string) => ({ id, keyId: "key-1", amount: 500, byok: false, maxTokens: 10, capped: false, promptTokens: 1, createdAt: T0, expiresAt: T0 + 60_000 });

describe("MemoryLedgerStore", () => {
  it("rolls memory back with storage when a transaction throws", async () => {
    const stub = freshLedger();
    await stub.topUp(10_000, 0);
    await runInDurableObject(stub, (_, state) => {
      const store = new MemoryLedgerStore(state.storage.sql);
      store.run(state.storage, () => store.load());
      store.run(state.storage, () => store.upsertKey(keyConfig(), emptyUsage(T0)));
      const before = { balance: store.balance(), last: store.lastJournalId, key: store.key("key-1") };
      expect(() =>
        store.run(state.storage, () => {
          store.insertHold(hold("h-1"));
          store.appendJournal({ at: T0, kind: "charge", amountMicros: -700, keyId: "key-1", reference: "gen-1", note: null });
          store.saveUsage("key-1", { ...emptyUsage(T0), total: 700 });
          throw new Error("boom");
        }),
      ).toThrow("boom");
      expect({ balance: store.balance(), last: store.lastJournalId, key: store.key("key-1") }).toEqual(before);
      expect(store.holds()).toEqual([]);
      expect(state.storage.sql.exec("SELECT COUNT(*) AS n FROM journal").one().n).toBe(1);
      // The next entry takes the id the rolled-back one would have had.
      store.run(state.storage, () => store.appendJournal({ at: T0, kind: "charge", amountMicros: -300, keyId: "key-1", reference: "gen-2", note: null }));
      expect(store.lastJournalId).toBe(2);
      expect(store.balance().balance).toBe(9_700);
    });
  });

  it("rolls back a checkpoint that its transaction did not survive", async () => {
    const stub = freshLedger();
    await stub.topUp(1_000_000, 0);
    await runInDurableObject(stub, (_, state) => {
      const store = new MemoryLedgerStore(state.storage.sql);
      store.run(state.storage, () => store.load());
      // Entry 1 is the top-up; stop one short of the checkpoint.
      for (let i = 2; i < CHECKPOINT_EVERY; i++) {
        store.run(state.storage, () => store.appendJournal({ at: T0, kind: "charge", amountMicros: -1, keyId: null, reference: `gen-${i}`, note: null }));
      }
      const checkpointed = () => state.storage.sql.exec<{ journal_id: number }>("SELECT journal_id FROM balance").one().journal_id;
      expect(checkpointed()).toBe(0);
      expect(() =>
        store.run(state.storage, () => {
          store.appendJournal({ at: T0, kind: "charge", amountMicros: -1, keyId: null, reference: "gen-x", note: null });
          store.checkpoint();
          throw new Error("boom");
        }),
      ).toThrow("boom");
      expect(checkpointed()).toBe(0);
      // The next commit reaches the threshold and checkpoints for real.
      store.run(state.storage, () => store.appendJournal({ at: T0, kind: "charge", amountMicros: -1, keyId: null, reference: "gen-y", note: null }));
      expect(checkpointed()).toBe(CHECKPOINT_EVERY);
      const reloaded = new MemoryLedgerStore(state.storage.sql);
      reloaded.run(state.storage, () => reloaded.load());
      expect(reloaded.balance()).toEqual(store.balance());
      expect(reloaded.balance().balance).toBe(1_000_000 - (CHECKPOINT_EVERY - 1));
    });
  });
});
