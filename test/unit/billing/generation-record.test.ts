/**
 * Generation records leave in windows (billing/generation-record, window-batcher): the records an
 * isolate's requests finish together go to D1 in one batch, each request's promise resolving only
 * once its own record is written; a record D1 refuses costs only itself.
 */
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { GENERATION_WINDOW_MAX_RECORDS, insertGenerations } from "../../../src/billing/generation-record";
import { WindowBatcher } from "../../../src/window-batcher";

type Row = Array<string | number | null>;

let next = 0;
/** A record's values in the insert's column order; `workspace` null makes D1 refuse it (NOT NULL). */
function row(workspace: string | null = "ws-gen-batch"): Row {
  const id = `gen-1790000000-${(next++).toString(16).padStart(24, "0")}`;
  return [id, workspace, "key-1", `req-${next}`, "openai/gpt-4o-mini", "OpenAI", "openai:openai/gpt-4o-mini", "gpt-4o-mini", 0, 0, 0, "stop", "stop", 5, 1, 0, 0, 0, 90, 90, 12, null, null, 1, "us", "us", 0, "[]"];
}

/** `env.DB` counting its `batch` calls and the statements in each. */
function countingDb(): { db: D1Database; batches: number[] } {
  const batches: number[] = [];
  const db = new Proxy(env.DB, {
    get(target, prop) {
      if (prop === "batch") {
        return (statements: D1PreparedStatement[]) => {
          batches.push(statements.length);
          return target.batch(statements);
        };
      }
      const value: unknown = Reflect.get(target, prop);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { db, batches };
}

const stored = async (rows: Row[]) => {
  const ids = rows.map((r) => r[0]);
  const found = await env.DB.prepare(`SELECT id FROM generations WHERE id IN (${ids.map(() => "?").join(", ")}) ORDER BY id`)
    .bind(...ids)
    .all<{ id: string }>();
  return found.results.map((r) => r.id);
};

const batcher = (windowMs: number, maxItems = GENERATION_WINDOW_MAX_RECORDS) =>
  new WindowBatcher<D1Database, Row>("generation record", insertGenerations, { windowMs, maxItems, maxWeight: 1_000_000, stallMs: 10_000 }, (r) => ({ generationId: r[0] }));

afterEach(() => vi.restoreAllMocks());

describe("generation records in windows", () => {
  it("writes what arrives within one window in one D1 batch, and each promise waits for its record", async () => {
    const { db, batches } = countingDb();
    const windows = batcher(30);
    const rows = [row(), row(), row(), row(), row()];
    const pending = rows.map((r) => windows.add(db, r));
    expect(batches).toEqual([]);
    await Promise.all(pending);
    expect(batches).toEqual([5]);
    expect(await stored(rows)).toEqual(rows.map((r) => r[0]).sort());
  });

  it("sends a full window at once, and the next one on its own timer", async () => {
    const { db, batches } = countingDb();
    const windows = batcher(30, 3);
    const rows = [row(), row(), row(), row()];
    const pending = rows.map((r) => windows.add(db, r));
    await Promise.all(pending.slice(0, 3));
    expect(batches).toEqual([3]);
    await pending[3];
    expect(batches).toEqual([3, 1]);
    expect(await stored(rows)).toHaveLength(4);
  });

  it("keeps the other records of a window when D1 refuses one, and logs the one it lost", async () => {
    const errors = vi.spyOn(console, "error").mockImplementation(() => undefined);
    const { db, batches } = countingDb();
    const good = [row(), row(), row()];
    const bad = row(null);
    await Promise.all([good[0], bad, good[1], good[2]].map((r) => batcher(20).add(db, r as Row)));
    // Each add above used its own batcher: a batch of one that fails is not retried.
    expect(batches).toEqual([1, 1, 1, 1]);
    const windows = batcher(20);
    const more = [row(), row()];
    await Promise.all([windows.add(db, more[0] as Row), windows.add(db, bad), windows.add(db, more[1] as Row)]);
    expect(batches.slice(4)).toEqual([3]);
    expect(await stored([...good, ...more])).toHaveLength(5);
    expect(await stored([bad])).toEqual([]);
    const logged = errors.mock.calls.map((c) => String(c[0])).filter((m) => m.includes("generation records could not be written"));
    expect(logged).toHaveLength(2);
    for (const line of logged) expect(JSON.parse(line)).toMatchObject({ generationIds: [bad[0]] });
  });

  it("ignores a record written twice (a stalled window re-sent)", async () => {
    const once = row();
    await insertGenerations(env.DB, [once]);
    await insertGenerations(env.DB, [once, row()]);
    expect(await stored([once])).toEqual([once[0]]);
  });
});
