/**
 * @module residency/report
 * A workspace's residency report for a time range, read from the D1 database its generation
 * records live in (`DB_EU` for an `eu` workspace): one row per generation — when, the region it
 * came in through, the endpoint that served it and that endpoint's region, how many endpoints its
 * plan excluded — and totals per endpoint region and per region of ingress over the whole range.
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

export async function residencyReport(db: D1Database, workspaceId: string, range: ReportRange): Promise<ResidencyReport> {
  const orm = drizzle(db);
  const where = and(eq(generations.workspaceId, workspaceId), gte(generations.createdAt, range.from), lt(generations.createdAt, range.to));
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
