/**
 * Durable Object SQLite bills every row written (an index entry counts as a row), so the rows a
 * request writes are a price. These tests pin the count for the steady state (a known key): the
 * hold lives in memory, the charge is one journal row, and the balance and key spend are written
 * once every CHECKPOINT_EVERY charges.
 */
import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { env } from "cloudflare:workers";
import type { Ledger } from "../../../src/billing/ledger";
import type { LedgerShard } from "../../../src/billing/ledger-shard";
import { shardName } from "../../../src/billing/ledger-shard-policy";
import { CHECKPOINT_EVERY } from "../../../src/billing/ledger-memory-store";
import { ensureSchema } from "../../../src/billing/ledger-migrations";
import { T0, admitInput, expectBalanced, freshLedger, keyConfig, settleInput } from "./ledger-helpers";

type Input = Parameters<typeof admitInput>[0];

/** Rows written by each admit and settle of `requests` requests, measured on the SQL cursors. */
async function rowsWritten(inputs: Input[]): Promise<{ admit: number; settle: number }[]> {
  const stub = freshLedger();
  await stub.topUp(100_000_000, 0);
  return runInDurableObject(stub, async (instance: Ledger, state) => {
    const sql = state.storage.sql;
    const exec = sql.exec.bind(sql);
    const cursors: SqlStorageCursor<Record<string, SqlStorageValue>>[] = [];
    const counting = ((query: string, ...bindings: SqlStorageValue[]) => {
      const cursor = exec(query, ...bindings);
      cursors.push(cursor);
      return cursor;
    }) as typeof sql.exec;
    Object.defineProperty(sql, "exec", { value: counting, configurable: true });
    const total = () => cursors.splice(0).reduce((sum, cursor) => sum + cursor.rowsWritten, 0);
    const counts: { admit: number; settle: number }[] = [];
    for (const [i, input] of inputs.entries()) {
      const admitted = await instance.admit(admitInput({ ...input, now: T0 + i * 1000 }));
      if (!admitted.ok) throw new Error(`refused: ${JSON.stringify(admitted)}`);
      const admit = total();
      instance.settle(settleInput(admitted.holdId, 1_500, T0 + i * 1000 + 500, 300));
      counts.push({ admit, settle: total() });
    }
    return counts;
  });
}

describe("rows written per request", () => {
  it("writes nothing to admit and one journal row to settle", async () => {
    const counts = await rowsWritten([{}, {}, {}]);
    // The first admission also stores the key: its row and its primary-key index entry.
    expect(counts[0]).toEqual({ admit: 2, settle: 1 });
    expect(counts.slice(1)).toEqual([
      { admit: 0, settle: 1 },
      { admit: 0, settle: 1 },
    ]);
  });

  it("adds one window row per limited scope at admission and at settlement", async () => {
    const key = keyConfig({ limits: { rpm: 1_000, tpm: 1_000_000, concurrency: 10 } });
    const workspaceLimits = { rpm: 5_000, tpm: null, concurrency: null };
    const counts = await rowsWritten([{ key, workspaceLimits }, { key, workspaceLimits }, { key, workspaceLimits }]);
    expect(counts.slice(1)).toEqual([
      { admit: 2, settle: 3 },
      { admit: 2, settle: 3 },
    ]);
  });

  it("checkpoints the balance and the key's spend once every CHECKPOINT_EVERY charges", async () => {
    // The top-up is journal entry 1, so the charge of request i is entry i + 2.
    const counts = await rowsWritten(Array.from({ length: 2 * CHECKPOINT_EVERY + 1 }, () => ({})));
    const settles = counts.map((c) => c.settle);
    const checkpoints = settles.flatMap((rows, i) => (rows > 1 ? [i] : []));
    expect(checkpoints).toEqual([CHECKPOINT_EVERY - 2, 2 * CHECKPOINT_EVERY - 2]);
    // The charge, the balance row and the key's row.
    expect(settles[CHECKPOINT_EVERY - 2]).toBe(3);
    const total = counts.reduce((sum, c) => sum + c.admit + c.settle, 0);
    // One row per request, plus the key's first sight (2) and two checkpoints of two rows.
    expect(total).toBe(counts.length + 2 + 4);
  });
});

describe("schema version 3", () => {
  it("rebuilds holds and journal from version 2 without losing a row", async () => {
    const stub = freshLedger();
    await stub.topUp(50_000, 0);
    const admitted = await stub.admit(admitInput());
    if (!admitted.ok) throw new Error("refused");
    await runInDurableObject(stub, (_, state) => {
      const sql = state.storage.sql;
      // Put the two tables back in their version 2 shape, with the rows they held.
      const journal = sql.exec("SELECT id, at, kind, amount, key_id, reference, note FROM journal").toArray();
      const holds = sql.exec("SELECT * FROM holds").toArray();
      sql.exec("DROP TABLE journal");
      sql.exec("DROP TABLE holds");
      sql.exec(`CREATE TABLE journal (id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, kind TEXT NOT NULL, amount INTEGER NOT NULL, key_id TEXT, reference TEXT, note TEXT)`);
      sql.exec(`CREATE TABLE holds (id TEXT PRIMARY KEY, key_id TEXT NOT NULL, amount INTEGER NOT NULL, byok INTEGER NOT NULL, max_tokens INTEGER NOT NULL, capped INTEGER NOT NULL, prompt_tokens INTEGER NOT NULL, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL)`);
      sql.exec("CREATE INDEX holds_by_expiry ON holds (expires_at)");
      for (const r of journal) sql.exec("INSERT INTO journal VALUES (?, ?, ?, ?, ?, ?, ?)", r.id, r.at, r.kind, r.amount, r.key_id, r.reference, r.note);
      for (const r of holds) sql.exec("INSERT INTO holds VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", r.id, r.key_id, r.amount, r.byok, r.max_tokens, r.capped, r.prompt_tokens, r.created_at, r.expires_at);
      // Version 4's column, which version 2 did not have either.
      sql.exec("ALTER TABLE balance DROP COLUMN journal_id");
      sql.exec("UPDATE ledger_meta SET value = 2 WHERE key = 'schema_version'");
      ensureSchema(state.storage);
      expect(sql.exec("SELECT id, at, kind, amount, key_id, reference, note FROM journal").toArray()).toEqual(journal);
      expect(sql.exec("SELECT * FROM holds").toArray()).toEqual(holds);
      const ddl = sql.exec<{ sql: string }>("SELECT sql FROM sqlite_master WHERE tbl_name IN ('journal', 'holds')").toArray().map((r) => r.sql);
      expect(ddl).toHaveLength(2);
      expect(ddl.join("\n")).toContain("WITHOUT ROWID");
      expect(ddl.join("\n")).not.toContain("AUTOINCREMENT");
    });
    // The ledger goes on working on the rebuilt tables: the hold settles, the balance is Σ journal.
    expect(await stub.settle(settleInput(admitted.holdId, 700))).toMatchObject({ settled: true, balanceMicros: 49_300 });
    await expectBalanced(stub);
  });
});

describe("rows written per request on a LedgerShard", () => {
  // The shard keeps its state like the Ledger: holds in memory (its receipts charge a hold lost
  // with a restart), the charge one journal row, and the outbox is that journal (shard schema 3).
  it("writes nothing to admit and one journal row to settle between refills", async () => {
    const workspaceId = crypto.randomUUID();
    await env.LEDGER.getByName(workspaceId).topUp(100_000_000, 0);
    const shard = env.LEDGER_SHARD.getByName(shardName(workspaceId, 0));
    const counts = await runInDurableObject(shard, async (instance: LedgerShard, state) => {
      const sql = state.storage.sql;
      const exec = sql.exec.bind(sql);
      const cursors: SqlStorageCursor<Record<string, SqlStorageValue>>[] = [];
      Object.defineProperty(sql, "exec", {
        value: ((query: string, ...bindings: SqlStorageValue[]) => {
          const cursor = exec(query, ...bindings);
          cursors.push(cursor);
          return cursor;
        }) as typeof sql.exec,
        configurable: true,
      });
      const total = () => cursors.splice(0).reduce((sum, cursor) => sum + cursor.rowsWritten, 0);
      const out: { admit: number; settle: number }[] = [];
      // Close together, as under load: the lease, the key check and the flush alarm are settled by
      // the first requests; the rest is the steady state.
      for (let i = 0; i < 8; i++) {
        const now = T0 + i * 10;
        const admitted = await instance.admit({ ...admitInput({ now }), shard: { workspaceId, index: 0, count: 1 } });
        if (!admitted.ok) throw new Error(`refused: ${JSON.stringify(admitted)}`);
        const admit = total();
        await instance.settle(settleInput(admitted.holdId, 1_500, now + 5, 300));
        out.push({ admit, settle: total() });
      }
      return out;
    });
    const steady = counts.slice(3);
    expect(steady.map((c) => c.settle)).toEqual([1, 1, 1, 1, 1]);
    // Now and then an admission refills the lease from the ledger (one journal row).
    expect(steady.filter((c) => c.admit === 0).length).toBeGreaterThanOrEqual(4);
    expect(Math.max(...steady.map((c) => c.admit))).toBeLessThanOrEqual(1);
  });
});

describe("shard schema 3: the outbox is the journal", () => {
  it("sends a version 1 shard's queued entries first, then what it journals, each once and in order", async () => {
    const workspaceId = crypto.randomUUID();
    const ledger = env.LEDGER.getByName(workspaceId);
    await ledger.topUp(100_000_000, 0);
    const shard = env.LEDGER_SHARD.getByName(shardName(workspaceId, 0));
    const input = (i: number) => ({ ...admitInput({ requestId: `r${i}`, now: T0 + i }), shard: { workspaceId, index: 0, count: 1 } });
    // One request under the current version, so the shard has a lease and a journal.
    const first = await shard.admit(input(0));
    if (!first.ok) throw new Error("refused");
    await shard.settle(settleInput("r0", 1_000, T0));
    await shard.flush(T0);
    await runInDurableObject(shard, (_, state) => {
      const sql = state.storage.sql;
      // Back to what version 1 left: an AUTOINCREMENT outbox that has issued ids up to 500 (far
      // past its journal's), one charge still queued in it (journalled, as version 1 did).
      sql.exec("DROP TABLE outbox");
      sql.exec(
        "CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL CHECK (kind IN ('charge', 'return')), key_id TEXT, amount INTEGER NOT NULL CHECK (amount >= 0), byok_usage INTEGER NOT NULL, reference TEXT, at INTEGER NOT NULL)",
      );
      sql.exec("INSERT INTO journal (id, at, kind, amount, key_id, reference, note) VALUES ((SELECT MAX(id) + 1 FROM journal), ?, 'charge', -7, 'key-1', 'gen-old', NULL)", T0);
      sql.exec("INSERT INTO outbox (id, kind, key_id, amount, byok_usage, reference, at) VALUES (500, 'charge', 'key-1', 7, 0, 'gen-old', ?)", T0);
      sql.exec("UPDATE ledger_meta SET value = 1 WHERE key = 'shard_schema_version'");
      sql.exec("DELETE FROM ledger_meta WHERE key IN ('outbox_id_offset', 'outbox_journal_from', 'outbox_acked')");
    });
    await evictDurableObject(shard);
    for (let i = 1; i <= 3; i++) {
      const admitted = await shard.admit(input(i));
      if (!admitted.ok) throw new Error("refused");
      await shard.settle(settleInput(`r${i}`, 1_000 + i, T0 + i));
    }
    await shard.flush(T0 + 10);
    const charges = (await ledger.journal(1000)).filter((e) => e.kind === "charge");
    expect(charges.map((e) => [e.reference, -e.amountMicros])).toEqual([
      ["gen-r0", 1_000],
      ["gen-old", 7],
      ["gen-r1", 1_001],
      ["gen-r2", 1_002],
      ["gen-r3", 1_003],
    ]);
    const left = await runInDurableObject(shard, (_, state) => ({
      table: state.storage.sql.exec("SELECT COUNT(*) AS n FROM outbox").one().n,
      acked: state.storage.sql.exec("SELECT value FROM ledger_meta WHERE key = 'outbox_acked'").one().value,
    }));
    // The table is drained, and new ids lie above every id version 1 issued.
    expect(left.table).toBe(0);
    expect(left.acked).toBeGreaterThan(500);
    expect(await shard.lease(T0 + 10)).toMatchObject({ unreportedChargesMicros: 0, unreportedReturnsMicros: 0 });
  });
});
