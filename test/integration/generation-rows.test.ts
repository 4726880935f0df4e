/**
 * One D1 row written per generation record (migrations/0007_generations_one_row.sql): D1 bills
 * every row written and counts each index entry as one, so `generations` is a WITHOUT ROWID table
 * keyed by (workspace_id, id) with no other index. Measured with D1's own `meta.rows_written` on
 * the insert a served request makes; the migration keeps every record stored before it, readable
 * through `GET /generation`; the residency report, now seeking the key by id, returns what the
 * plain `created_at` filter returned.
 */
import { applyD1Migrations } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { residencyReport, MAX_RECORD_LAG_MS } from "../../src/residency/report";
import { chatRequest, EU_ORIGIN, mswServer, provisionEu, recordUpstream, resetHealth, sseBody, sseResponse, type RouterCompletion, fetchWith } from "../helpers";

const WS = "ws-gen-rows";
const HI = [{ role: "user", content: "hi" }];
let key: string;

beforeAll(async () => {
  mswServer.listen({ onUnhandledRequest: "error" });
  key = await provisionEu(WS);
});
afterEach(async () => {
  mswServer.resetHandlers();
  await resetHealth();
});
afterAll(() => mswServer.close());

function passThrough(target: object, prop: string | symbol): unknown {
  const value: unknown = Reflect.get(target, prop);
  return typeof value === "function" ? value.bind(target) : value;
}

/**
 * `db` that reports D1's `meta.rows_written` for each insert into `generations` to `written`,
 * whether it runs alone or in a `batch` (records are written in windows, billing/generation-record).
 */
function meteredInserts(db: D1Database, written: number[]): D1Database {
  const inserts = new WeakSet<D1PreparedStatement>();
  const mark = (statement: D1PreparedStatement): D1PreparedStatement => {
    const bind = statement.bind.bind(statement);
    statement.bind = (...values: unknown[]) => {
      const bound = bind(...values);
      const run = bound.run.bind(bound);
      bound.run = async <T,>() => {
        const result = await run<T>();
        written.push(result.meta.rows_written);
        return result;
      };
      inserts.add(bound);
      return bound;
    };
    return statement;
  };
  return new Proxy(db, {
    get(target, prop) {
      if (prop === "prepare") {
        return (query: string) => {
          const statement = target.prepare(query);
          return /^insert into "?generations"?[\s(]/i.test(query) ? mark(statement) : statement;
        };
      }
      if (prop === "batch") {
        return async <T,>(statements: D1PreparedStatement[]) => {
          const results = await target.batch<T>(statements);
          statements.forEach((statement, i) => {
            if (inserts.has(statement)) written.push(results[i]?.meta.rows_written ?? Number.NaN);
          });
          return results;
        };
      }
      return passThrough(target, prop);
    },
  });
}

const STREAM = sseBody([
  { choices: [{ index: 0, delta: { role: "assistant", content: "ok" } }] },
  { choices: [{ index: 0, delta: {}, finish_reason: "stop" }] },
  { choices: [], usage: { prompt_tokens: 5, completion_tokens: 1, total_tokens: 6 } },
  "[DONE]",
]);

/** Serve one chat completion for the EU workspace, its record written to `db`; returns its id. */
async function serveOne(db: D1Database, stream = false): Promise<string> {
  mswServer.use(stream ? recordUpstream(() => sseResponse(STREAM)).handler : recordUpstream().handler);
  const res = await fetchWith({ ...env, DB_EU: db }, chatRequest(EU_ORIGIN, key, { model: "openai/gpt-4o-mini", messages: HI, stream }));
  expect(res.status).toBe(200);
  const id = res.headers.get("x-generation-id");
  expect(id).toMatch(/^gen-\d{10}-[0-9a-f]{24}$/);
  if (!stream) expect(((await res.json()) as RouterCompletion).id).toBe(id);
  return id ?? "";
}

interface Row {
  id: string;
  workspaceId: string;
  createdAt: number;
  endpointRegion?: string | null;
  ingressRegion?: string | null;
}

/** Insert a generation record the way the old and new tables both take it; returns `meta.rows_written`. */
async function insertRow(db: D1Database, row: Row): Promise<number> {
  const result = await db
    .prepare(
      `INSERT INTO generations (id, workspace_id, key_id, request_id, model, provider_name, endpoint_id, upstream_model, streamed,
        tokens_prompt, tokens_completion, tokens_cached, tokens_cache_write, tokens_reasoning, cost_micros, upstream_cost_micros,
        latency_ms, attempts, ingress_region, endpoint_region, excluded_count, created_at)
       VALUES (?, ?, 'key-1', 'req-1', 'openai/gpt-4o-mini', 'OpenAI', 'openai:openai/gpt-4o-mini', 'gpt-4o-mini', 0, 5, 1, 0, 0, 0, 90, 90, 12, 1, ?, ?, 0, ?)`,
    )
    .bind(row.id, row.workspaceId, row.ingressRegion ?? null, row.endpointRegion ?? null, row.createdAt)
    .run();
  return result.meta.rows_written;
}

/** Drop every table, so the database is as new however storage is shared between test files. */
async function emptyDatabase(db: D1Database): Promise<void> {
  const tables = await db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT GLOB 'sqlite_*' AND name NOT GLOB '_cf_*' ORDER BY rowid DESC").all<{ name: string }>();
  if (tables.results.length === 0) return;
  await db.batch([db.prepare("PRAGMA defer_foreign_keys = on"), ...tables.results.map((t) => db.prepare(`DROP TABLE "${t.name}"`))]);
}

const allRows = (db: D1Database) => db.prepare("SELECT * FROM generations ORDER BY workspace_id, id").all().then((r) => r.results);

describe("a generation record writes exactly one row", () => {
  it("for a served request, JSON or streamed", async () => {
    const written: number[] = [];
    const db = meteredInserts(env.DB_EU, written);
    const id = await serveOne(db);
    await serveOne(db, true);
    expect(written).toEqual([1, 1]);
    const stored = await env.DB_EU.prepare("SELECT workspace_id FROM generations WHERE workspace_id = ? AND id = ?").bind(WS, id).first();
    expect(stored).toEqual({ workspace_id: WS });
  });

  it("for an insert of the same shape, in both databases", async () => {
    for (const db of [env.DB, env.DB_EU]) {
      expect(await insertRow(db, { id: `gen-1790000000-${"ab".repeat(12)}`, workspaceId: "ws-gen-rows-raw", createdAt: 1_790_000_000_000 })).toBe(1);
    }
  });

  it("because the table is WITHOUT ROWID with its primary key as its only index", async () => {
    for (const db of [env.DB, env.DB_EU]) {
      const table = await db.prepare("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'generations'").first<{ sql: string }>();
      expect(table?.sql).toMatch(/PRIMARY KEY\(`workspace_id`, `id`\)\s*\)\s*WITHOUT ROWID$/);
      await expect(db.prepare("SELECT rowid FROM generations").all()).rejects.toThrow(/no such column: rowid/);
      const indexes = await db.prepare("PRAGMA index_list(generations)").all<{ origin: string }>();
      expect(indexes.results.map((i) => i.origin)).toEqual(["pk"]);
      expect(await db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'generations'").all()).toMatchObject({ results: [] });
    }
  });

  it("and GET /generation and the residency report seek the primary key", async () => {
    const plan = async (query: string) => {
      const rows = await env.DB_EU.prepare(`EXPLAIN QUERY PLAN ${query}`).all<{ detail: string }>();
      return rows.results.map((r) => r.detail);
    };
    // The statements drizzle sends (account.ts, residency/report.ts), parameters aside.
    expect(await plan(`select * from "generations" where ("generations"."workspace_id" = 'w' and "generations"."id" = 'g') limit 1`)).toEqual([
      "SEARCH generations USING PRIMARY KEY (workspace_id=? AND id=?)",
    ]);
    const range = `"generations"."workspace_id" = 'w' and "generations"."id" >= 'gen-1' and "generations"."id" < 'gen-2' and "generations"."created_at" >= 1 and "generations"."created_at" < 2`;
    expect(await plan(`select "id" from "generations" where (${range}) order by "generations"."created_at" asc, "generations"."id" asc limit 2`)).toEqual([
      "SEARCH generations USING PRIMARY KEY (workspace_id=? AND id>? AND id<?)",
      "USE TEMP B-TREE FOR ORDER BY",
    ]);
  });
});

describe("migration 0007", () => {
  it("keeps every record stored before it, readable through GET /generation", async () => {
    const db = env.MIGRATION_DB;
    await emptyDatabase(db);
    const upTo0006 = env.TEST_MIGRATIONS.filter((m) => m.name < "0007");
    expect(upTo0006.at(-1)?.name).toBe("0006_residency.sql");
    await applyD1Migrations(db, upTo0006);

    // Before: a served request's record costs 3 rows (the row, the primary key's index, the
    // workspace index), and so does every insert.
    const before: number[] = [];
    const served = await serveOne(meteredInserts(db, before));
    expect(before).toEqual([3]);
    const stored: Row[] = [
      { id: `gen-1790000000-${"01".repeat(12)}`, workspaceId: WS, createdAt: 1_790_000_004_000, ingressRegion: "eu", endpointRegion: "eu" },
      // Recorded before residency existed: no regions.
      { id: `gen-1700000000-${"02".repeat(12)}`, workspaceId: WS, createdAt: 1_700_000_001_000 },
      { id: `gen-1790000000-${"03".repeat(12)}`, workspaceId: "ws-gen-rows-other", createdAt: 1_790_000_002_000, endpointRegion: "us" },
    ];
    for (const row of stored) expect(await insertRow(db, row)).toBe(3);
    const rowsBefore = await allRows(db);
    expect(rowsBefore).toHaveLength(4);

    await applyD1Migrations(db, env.TEST_MIGRATIONS);
    expect(await allRows(db)).toEqual(rowsBefore);
    const table = await db.prepare("SELECT sql FROM sqlite_master WHERE name = 'generations'").first<{ sql: string }>();
    expect(table?.sql).toMatch(/WITHOUT ROWID$/);
    expect(await db.prepare("SELECT name FROM sqlite_master WHERE name IN ('__new_generations', 'generations_workspace_idx')").all()).toMatchObject({ results: [] });

    const generation = (id: string) => fetchWith({ ...env, DB_EU: db }, new Request(`${EU_ORIGIN}/api/v1/generation?id=${id}`, { headers: { authorization: `Bearer ${key}` } }));
    const servedAfter = await generation(served);
    expect(servedAfter.status).toBe(200);
    expect(((await servedAfter.json()) as { data: unknown }).data).toMatchObject({ id: served, model: "openai/gpt-4o-mini", tokens_prompt: 5, tokens_completion: 1, ingress_region: "eu" });
    const old = await generation(stored[1]?.id ?? "");
    expect(((await old.json()) as { data: unknown }).data).toMatchObject({ id: stored[1]?.id, created_at: "2023-11-14T22:13:21.000Z", ingress_region: null, endpoint_region: null });
    // Another workspace's record stays out of reach.
    expect((await generation(stored[2]?.id ?? "")).status).toBe(404);

    // After: the same request's record costs 1 row, on the migrated table.
    const after: number[] = [];
    await serveOne(meteredInserts(db, after));
    expect(after).toEqual([1]);
    expect(await insertRow(db, { id: `gen-1790000001-${"04".repeat(12)}`, workspaceId: WS, createdAt: 1_790_000_001_000 })).toBe(1);
  });
});

describe("the residency report seeks by id and reports what the created_at filter selects", () => {
  const ws = "ws-gen-rows-report";
  const T = 1_790_000_000; // seconds; 2026-09-21
  const from = T * 1000;
  const to = (T + 3600) * 1000;
  const hex = (n: number) => n.toString(16).padStart(24, "0");
  const rows: Row[] = [
    { id: `gen-${T}-${hex(1)}`, workspaceId: ws, createdAt: from, ingressRegion: "eu", endpointRegion: "eu" },
    { id: `gen-${T + 10}-${hex(2)}`, workspaceId: ws, createdAt: from + 11_000, ingressRegion: "global", endpointRegion: "eu" },
    // Arrived ten minutes before `from`, a long stream recorded inside the range.
    { id: `gen-${T - 600}-${hex(3)}`, workspaceId: ws, createdAt: from + 5_000, ingressRegion: "eu", endpointRegion: "us" },
    // Arrived most of a day before `from`, recorded just inside it.
    { id: `gen-${T - MAX_RECORD_LAG_MS / 1000 + 1}-${hex(4)}`, workspaceId: ws, createdAt: from },
    // Same created_at as the first: ordered by id.
    { id: `gen-${T - 1}-${hex(5)}`, workspaceId: ws, createdAt: from, endpointRegion: "eu" },
    // The last millisecond in, and its id's second rounds past `to` (D1's clock behind the Worker's).
    { id: `gen-${T + 3600}-${hex(6)}`, workspaceId: ws, createdAt: to - 1, ingressRegion: "eu", endpointRegion: "eu" },
    // Out: recorded at `to`, before `from`, in another workspace.
    { id: `gen-${T + 3599}-${hex(7)}`, workspaceId: ws, createdAt: to },
    { id: `gen-${T - 5}-${hex(8)}`, workspaceId: ws, createdAt: from - 1 },
    { id: `gen-${T + 5}-${hex(9)}`, workspaceId: "ws-gen-rows-report-other", createdAt: from + 5_000 },
    // A test id outside the `gen-<seconds>` scheme is not generated by requests, and not sought.
    { id: "gen-test-0123456789abcdef", workspaceId: ws, createdAt: from + 7_000 },
  ];

  beforeAll(async () => {
    for (const row of rows) await insertRow(env.DB_EU, row);
  });

  /** What the report selected before 0007: workspace and created_at only (through the dropped index). */
  async function byCreatedAt(range: { from: number; to: number }) {
    const selected = await env.DB_EU.prepare(
      "SELECT id, created_at, endpoint_region, ingress_region FROM generations WHERE workspace_id = ? AND created_at >= ? AND created_at < ? ORDER BY created_at, id",
    )
      .bind(ws, range.from, range.to)
      .all<{ id: string; created_at: number; endpoint_region: string | null; ingress_region: string | null }>();
    const sought = selected.results.filter((r) => /^gen-\d{10}-/.test(r.id));
    const tally = (region: (r: (typeof sought)[number]) => string | null) => {
      const totals: Record<string, number> = {};
      for (const r of sought) totals[region(r) ?? "unknown"] = (totals[region(r) ?? "unknown"] ?? 0) + 1;
      return totals;
    };
    return {
      ids: sought.map((r) => r.id),
      generations: sought.length,
      totals: { by_endpoint_region: tally((r) => r.endpoint_region), by_ingress_region: tally((r) => r.ingress_region) },
    };
  }

  it("with the same rows, order and totals over the range", async () => {
    const report = await residencyReport(env.DB_EU, ws, { from, to, limit: 100 });
    const expected = await byCreatedAt({ from, to });
    expect(expected.ids).toEqual([`gen-${T - MAX_RECORD_LAG_MS / 1000 + 1}-${hex(4)}`, `gen-${T - 1}-${hex(5)}`, `gen-${T}-${hex(1)}`, `gen-${T - 600}-${hex(3)}`, `gen-${T + 10}-${hex(2)}`, `gen-${T + 3600}-${hex(6)}`]);
    expect(report.rows.map((r) => r.generation_id)).toEqual(expected.ids);
    expect({ generations: report.generations, totals: report.totals }).toEqual({ generations: expected.generations, totals: expected.totals });
    expect(report.totals).toEqual({ by_endpoint_region: { eu: 4, us: 1, unknown: 1 }, by_ingress_region: { eu: 3, global: 1, unknown: 2 } });
    expect(report.truncated).toBe(false);
    expect(report.rows[2]).toEqual({
      generation_id: `gen-${T}-${hex(1)}`,
      created_at: new Date(from).toISOString(),
      ingress_region: "eu",
      model: "openai/gpt-4o-mini",
      provider_name: "OpenAI",
      endpoint: "openai:openai/gpt-4o-mini",
      endpoint_region: "eu",
      excluded: 0,
    });
  });

  it("with the same first rows and whole-range totals when truncated", async () => {
    const report = await residencyReport(env.DB_EU, ws, { from, to, limit: 2 });
    const expected = await byCreatedAt({ from, to });
    expect(report.rows.map((r) => r.generation_id)).toEqual(expected.ids.slice(0, 2));
    expect(report.generations).toBe(6);
    expect(report.truncated).toBe(true);
  });

  it("for ranges of any width, including ones whose seconds have fewer or more digits than ids'", async () => {
    const ranges = [
      { from: from + 5_000, to: from + 5_001 },
      { from: from + 1, to: to - 1 },
      { from: to - 1, to },
      { from: 500_000_000_000, to }, // 1985: 9-digit seconds
      { from: 0, to: 999_999_999_999_999 },
      { from: to, to: to + 86_400_000 },
      { from: 4_000_000_000_000, to: 4_000_000_000_001 }, // 2096
    ];
    for (const range of ranges) {
      const report = await residencyReport(env.DB_EU, ws, { ...range, limit: 100 });
      const expected = await byCreatedAt(range);
      expect(report.rows.map((r) => r.generation_id), JSON.stringify(range)).toEqual(expected.ids);
      expect({ generations: report.generations, totals: report.totals }).toEqual({ generations: expected.generations, totals: expected.totals });
    }
  });
});
