/**
 * @module api/admin/workspaces
 * Workspaces, their limits, default provider preferences, region policy, credits and API keys. A
 * key is shown once, at creation. Credits live in the ledger of the workspace's region
 * (residency/bindings): an `eu` workspace's in the EU jurisdiction.
 */
import { eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { Hono } from "hono";
import { z } from "zod";
import { forgetWorkspace } from "../../auth/api-keys";
import { createKey, findKey, keyJson, keyPatchSchema, listKeys, newKeySchema, requireWorkspace, updateKey } from "../../auth/key-store";
import { purchaseFeeMicros } from "../../billing/fees";
import { microsToUsd, usdToMicros } from "../../billing/pricing";
import { usdMicros } from "../../catalog/seed-schema";
import type { AppEnv } from "../../context";
import { workspaces, type Workspace } from "../../db/schema";
import { GatewayError } from "../../errors";
import { orRefuse, residentLedger } from "../../residency/bindings";
import { policyOf } from "../../residency/policy";
import { workspaceRegionSchema } from "../../residency/regions";
import { providerPreferencesSchema } from "../../schemas/openrouter";
import { readJsonBody, validate } from "../validate";

const workspaceId = z.string().regex(/^[a-zA-Z0-9_-]{1,64}$/, "1–64 letters, digits, '_' or '-'");
const perMinute = z.number().int().positive().nullable().optional();

const workspaceBody = z.strictObject({
  name: z.string().min(1).max(128),
  default_model: z.string().min(1).max(256).nullable().optional(),
  rpm: perMinute,
  tpm: perMinute,
  concurrency: perMinute,
  /** LedgerShard objects admitting this workspace's requests; 1 (the default) means none. */
  ledger_shards: z.number().int().min(1).max(64).optional(),
  /**
   * Default provider preferences for every request (OpenRouter's `provider` object); the
   * workspace's restrictions cap each request's (routing/merge). `null` clears them.
   */
  provider: providerPreferencesSchema.nullable().optional(),
  /**
   * Residency: `eu` routes only to EU endpoints and keeps the ledger, health, generation records
   * and traces in EU-jurisdiction resources. Set it at creation: a workspace whose ledger holds
   * credits cannot change region (they would stay behind).
   */
  region: workspaceRegionSchema.optional(),
  /** Let an `eu` workspace be called through non-EU hostnames (its data and routing stay EU). */
  allow_non_eu_ingress: z.boolean().optional(),
});

const topUpBody = z.strictObject({
  /** USD paid (string or number); the purchase fee is deducted from it. */
  amount: usdMicros.refine((m) => m > 0, "must be positive"),
  note: z.string().max(256).optional(),
});

function balanceJson(view: { balanceMicros: number; totalCreditsMicros: number; totalUsageMicros: number; heldMicros: number }) {
  return {
    balance: microsToUsd(view.balanceMicros),
    total_credits: microsToUsd(view.totalCreditsMicros),
    total_usage: microsToUsd(view.totalUsageMicros),
    held: microsToUsd(view.heldMicros),
  };
}

/** The deployment's purchase fee: basis points and minimum in USD, from vars. */
function feeFor(env: Env, amountMicros: number): number {
  const bps = Number(env.PURCHASE_FEE_BPS);
  const minimum = usdToMicros(env.PURCHASE_FEE_MIN_USD);
  return purchaseFeeMicros(amountMicros, Number.isInteger(bps) && bps >= 0 ? bps : 550, minimum);
}

/** The workspace's ledger in its region (503 when the region cannot be guaranteed). */
function ledgerOf(env: Env, workspace: Workspace) {
  const { region } = policyOf(workspace);
  return orRefuse(region, residentLedger(env, region)).getByName(workspace.id);
}

/**
 * Refuse to move a workspace whose ledger has seen credits to another region: the new region's
 * ledger starts empty and the old one's balance, holds and journal would stay where they are.
 */
async function assertRegionMovable(env: Env, workspace: Workspace): Promise<void> {
  const view = await ledgerOf(env, workspace).balance();
  if (view.totalCreditsMicros === 0 && view.heldMicros === 0) return;
  throw new GatewayError(
    "bad_request",
    `Workspace ${workspace.id} holds credits in its ${policyOf(workspace).region} ledger: its region cannot change now (the new region's ledger would start empty). Create a new workspace with the region instead.`,
    { metadata: { reason: "region_change_refused", region: policyOf(workspace).region } },
  );
}

export const workspaceAdmin = new Hono<AppEnv>()
  .put("/workspaces/:id", async (c) => {
    const id = validate(workspaceId, c.req.param("id"));
    const body = validate(workspaceBody, await readJsonBody(c.req.raw));
    if (body.region !== undefined) {
      const [existing] = await drizzle(c.env.DB).select().from(workspaces).where(eq(workspaces.id, id)).limit(1);
      if (existing && policyOf(existing).region !== body.region) await assertRegionMovable(c.env, existing);
    }
    const row = {
      id,
      name: body.name,
      ...(body.default_model !== undefined ? { defaultModel: body.default_model } : {}),
      ...(body.rpm !== undefined ? { rpm: body.rpm } : {}),
      ...(body.tpm !== undefined ? { tpm: body.tpm } : {}),
      ...(body.concurrency !== undefined ? { concurrency: body.concurrency } : {}),
      ...(body.ledger_shards !== undefined ? { ledgerShards: body.ledger_shards } : {}),
      ...(body.provider !== undefined ? { providerPreferences: body.provider } : {}),
      ...(body.region !== undefined ? { region: body.region } : {}),
      ...(body.allow_non_eu_ingress !== undefined ? { allowNonEuIngress: body.allow_non_eu_ingress } : {}),
    };
    const [saved] = await drizzle(c.env.DB).insert(workspaces).values(row).onConflictDoUpdate({ target: workspaces.id, set: row }).returning();
    forgetWorkspace(id);
    return c.json({ data: saved });
  })
  .get("/workspaces/:id", async (c) => c.json({ data: await requireWorkspace(c.env.DB, c.req.param("id")) }))
  .post("/workspaces/:id/credits", async (c) => {
    const workspace = await requireWorkspace(c.env.DB, c.req.param("id"));
    const body = validate(topUpBody, await readJsonBody(c.req.raw));
    const fee = feeFor(c.env, body.amount);
    if (fee >= body.amount) throw new GatewayError("bad_request", `A top-up of ${microsToUsd(body.amount)} USD does not cover the purchase fee of ${microsToUsd(fee)} USD`);
    const view = await ledgerOf(c.env, workspace).topUp(body.amount, fee, body.note ?? null);
    return c.json({ data: { ...balanceJson(view), credited: microsToUsd(body.amount - fee), fee: microsToUsd(fee) } }, 201);
  })
  .get("/workspaces/:id/credits", async (c) => {
    const workspace = await requireWorkspace(c.env.DB, c.req.param("id"));
    return c.json({ data: balanceJson(await ledgerOf(c.env, workspace).balance()) });
  })
  .get("/workspaces/:id/keys", async (c) => c.json({ data: (await listKeys(c.env.DB, c.req.param("id"))).map(keyJson) }))
  .post("/workspaces/:id/keys", async (c) => {
    const workspace = await requireWorkspace(c.env.DB, c.req.param("id"));
    const body = validate(newKeySchema, await readJsonBody(c.req.raw));
    const { key, record, created } = await createKey(c.env, workspace, body);
    return c.json({ data: keyJson(record), key }, created ? 201 : 200);
  })
  .patch("/keys/:id", async (c) => {
    const body = validate(keyPatchSchema, await readJsonBody(c.req.raw));
    const key = await findKey(c.env.DB, { id: c.req.param("id") });
    if (!key) throw new GatewayError("not_found", `Key not found: ${c.req.param("id")}`);
    return c.json({ data: keyJson(await updateKey(c.env, key, body)) });
  });
