/**
 * @module api/admin/residency
 * `GET /admin/v1/workspaces/:id/residency?from=&to=`: a workspace's residency report for a time
 * range, for auditors — where each request came in, which endpoint served it and where that
 * endpoint is, how many endpoints its plan excluded, and totals per region. Read from the D1
 * database the workspace's generation records live in (`DB_EU` for an `eu` workspace).
 */
import { Hono } from "hono";
import { z } from "zod";
import { requireWorkspace } from "../../auth/key-store";
import type { AppEnv } from "../../context";
import { orRefuse, residentDatabase } from "../../residency/bindings";
import { policyOf } from "../../residency/policy";
import { residencyReport } from "../../residency/report";
import { validate } from "../validate";

const DAY_MS = 86_400_000;
/** Without `from`, the report covers this many days before `to`. */
const DEFAULT_DAYS = 30;

/** An instant as ISO 8601 (with an offset), a date (midnight UTC), or epoch milliseconds. */
const instant = z.union([
  z.iso.datetime({ offset: true }).transform((s) => Date.parse(s)),
  z.iso.date().transform((s) => Date.parse(`${s}T00:00:00Z`)),
  z.string().regex(/^\d{1,15}$/, "an ISO 8601 date or time, or epoch milliseconds").transform(Number),
]);

const reportQuery = z
  .object({
    from: instant.optional(),
    to: instant.optional(),
    limit: z.coerce.number().int().min(1).max(10_000).default(1_000),
  })
  .transform((q) => {
    const to = q.to ?? Date.now();
    return { from: q.from ?? to - DEFAULT_DAYS * DAY_MS, to, limit: q.limit };
  })
  .refine((q) => q.from < q.to, "`from` must be before `to`");

export const residencyAdmin = new Hono<AppEnv>().get("/workspaces/:id/residency", async (c) => {
  const workspace = await requireWorkspace(c.env.DB, c.req.param("id"));
  const range = validate(reportQuery, c.req.query());
  const policy = policyOf(workspace);
  const store = orRefuse(policy.region, residentDatabase(c.env, policy.region));
  const report = await residencyReport(store.db, workspace.id, range);
  return c.json({
    data: {
      workspace_id: workspace.id,
      region: policy.region,
      allow_non_eu_ingress: policy.allowNonEuIngress,
      database: store.binding,
      from: new Date(range.from).toISOString(),
      to: new Date(range.to).toISOString(),
      ...report,
    },
  });
});
