/**
 * @module residency/report
 * A workspace's residency report for a time range, read from the D1 database its generation
 * records live in (`DB_EU` for an `eu` workspace): one row per generation — when, the region it
 * came in through, the endpoint that served it and that endpoint's region, how many endpoints its
 * plan excluded — and totals per endpoint region and per region of ingress over the whole range.
 *
 * `generations` has no index on `created_at` (each index entry is a row written per request; see
 * db/schema.ts), only its key `(workspace_id, id)`. Ids are `gen-<unix seconds>-<hex>`
 * (api/chat/shape.ts), taken when the request arrives, so the report seeks the key by an id range
 * that covers every record the time range can hold, and filters by `created_at` exactly.
 */
import { and, asc, count, eq, gte, lt } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { generations } from "../db/schema";

export interface ReportRange {
  /** Epoch ms, inclusive. */
  from: number;
  /** Epoch ms, exclusive. */
  to: number;
  /** Rows returned at most (totals always cover the whole range). */
  limit: number;
}

export interface ResidencyRow {
  generation_id: string;
  created_at: string;
  ingress_region: string;
  model: string;
  provider_name: string;
  endpoint: string;
  endpoint_region: string;
  excluded: number | null;
}

export interface ResidencyReport {
  generations: number;
  totals: { by_endpoint_region: Record<string, number>; by_ingress_region: Record<string, number> };
  rows: ResidencyRow[];
  /** More rows exist in the range than `limit`: ask again from the last row's `created_at`. */
  truncated: boolean;
}

/** Rows recorded before residency existed have no regions: they are reported as `unknown`. */
const UNKNOWN = "unknown";

/**
 * How long after its id was taken a generation may be recorded: the id is taken on arrival,
 * `created_at` when the record is written after the request ends (settlement, then the insert in
 * `waitUntil`). Nothing bounds a stream's length, so this is far beyond any upstream's limits and
 * the ledger's 15-minute hold. A record written later still is missed by a report whose range
 * begins more than this after the request arrived and no later than the record was written.
 */
export const MAX_RECORD_LAG_MS = 24 * 60 * 60_000;
/** `created_at` is D1's clock, the id the Worker's: room for one running behind the other. */
export const MAX_CLOCK_SKEW_MS = 60_000;

/** Ids' seconds have 10 digits from 2001-09-09 to 2286-11-20; within them, ids sort by second. */
const FIRST_SECOND = 1_000_000_000;
const LAST_SECOND = 9_999_999_999;

/**
 * An id string above every generation id taken before `seconds` and at most every one taken then
 * or later: `gen-<seconds>` is a prefix of, so sorts before, every id of that second. Outside the
 * 10-digit span, a bound below or above every `gen-<digits>` id ("-" < "0" … "9" < ":"), since a
 * shorter or longer number would not sort by value.
 */
export function idFloor(seconds: number): string {
  if (seconds < FIRST_SECOND) return "gen-";
  if (seconds > LAST_SECOND) return "gen-:";
  return `gen-${seconds}`;
}

/**
 * The id range `[from, to)` holding every generation whose `created_at` can fall in the report's
 * range `[range.from, range.to)` (epoch ms): ids taken from `MAX_RECORD_LAG_MS` before its start
 * to the clock skew after its end, rounded outwards to whole seconds.
 */
export function idRange(range: Pick<ReportRange, "from" | "to">): { from: string; to: string } {
  return {
    from: idFloor(Math.floor((range.from - MAX_RECORD_LAG_MS) / 1000)),
    to: idFloor(Math.ceil((range.to + MAX_CLOCK_SKEW_MS) / 1000) + 1),
  };
}

export async function residencyReport(db: D1Database, workspaceId: string, range: ReportRange): Promise<ResidencyReport> {
  const orm = drizzle(db);
  const ids = idRange(range);
  // The id bounds make SQLite seek the primary key; the `created_at` bounds decide what is in.
  const where = and(
    eq(generations.workspaceId, workspaceId),
    gte(generations.id, ids.from),
    lt(generations.id, ids.to),
    gte(generations.createdAt, range.from),
    lt(generations.createdAt, range.to),
  );
  const [rows, byEndpoint, byIngress] = await orm.batch([
    orm
      .select({
        id: generations.id,
        createdAt: generations.createdAt,
        ingressRegion: generations.ingressRegion,
        model: generations.model,
        providerName: generations.providerName,
        endpointId: generations.endpointId,
        endpointRegion: generations.endpointRegion,
        excludedCount: generations.excludedCount,
      })
      .from(generations)
      .where(where)
      .orderBy(asc(generations.createdAt), asc(generations.id))
      .limit(range.limit + 1),
    orm.select({ region: generations.endpointRegion, n: count() }).from(generations).where(where).groupBy(generations.endpointRegion),
    orm.select({ region: generations.ingressRegion, n: count() }).from(generations).where(where).groupBy(generations.ingressRegion),
  ]);
  const tally = (groups: Array<{ region: string | null; n: number }>) => Object.fromEntries(groups.map((g) => [g.region ?? UNKNOWN, g.n]));
  return {
    generations: byEndpoint.reduce((sum, g) => sum + g.n, 0),
    totals: { by_endpoint_region: tally(byEndpoint), by_ingress_region: tally(byIngress) },
    rows: rows.slice(0, range.limit).map((r) => ({
      generation_id: r.id,
      created_at: new Date(r.createdAt).toISOString(),
      ingress_region: r.ingressRegion ?? UNKNOWN,
      model: r.model,
      provider_name: r.providerName,
      endpoint: r.endpointId,
      endpoint_region: r.endpointRegion ?? UNKNOWN,
      excluded: r.excludedCount,
    })),
    truncated: rows.length > range.limit,
  };
}
