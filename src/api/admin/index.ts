/**
 * @module api/admin
 * `/admin/v1`: the operator's API, behind the bootstrap admin secret.
 */
import { Hono } from "hono";
import type { AppEnv } from "../../context";
import { requireAdmin } from "./auth";
import { byokAdmin } from "./byok";
import { catalogAdmin } from "./catalog";
import { healthAdmin } from "./health";
import { residencyAdmin } from "./residency";
import { tracesAdmin } from "./traces";
import { workspaceAdmin } from "./workspaces";

export const admin = new Hono<AppEnv>()
  .use(requireAdmin)
  .route("/", catalogAdmin)
  .route("/", workspaceAdmin)
  .route("/", byokAdmin)
  .route("/", tracesAdmin)
  .route("/", healthAdmin)
  .route("/", residencyAdmin);
