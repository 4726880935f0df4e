/**
 * Destinations in D1: secrets encrypted and bound to their destination, kept across updates that
 * leave them out, and a destination whose secret no longer decrypts reported as unable to deliver.
 */
import { env } from "cloudflare:workers";
import { drizzle } from "drizzle-orm/d1";
import { and, eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { traceDestinations } from "../../../src/db/schema";
import { destinationInputSchema } from "../../../src/traces/destination-config";
import { forgetDestinations, getDestination, putDestination } from "../../../src/traces/destination-store";
import { workspace } from "./fixtures";

const SECRET = "whsec_store_test_SECRET_0123456789";
const input = (body: Record<string, unknown>) => destinationInputSchema.parse(body);

describe("destination store", () => {
  it("stores the secret encrypted, shows only its last 4 characters, and decrypts it for delivery", async () => {
    await workspace("ws-store-1");
    const saved = await putDestination(env.DB, env.MASTER_KEY, "ws-store-1", "hook", input({ type: "webhook", url: "https://hooks.sink.test/s", signing_secret: SECRET }));
    if (!saved.ok) throw new Error(saved.message);
    expect(saved.created).toBe(true);
    expect(saved.record.secretHint).toEqual({ signing_secret: "6789" });
    expect(JSON.stringify(saved.record)).not.toContain(SECRET);
    const [row] = await drizzle(env.DB).select().from(traceDestinations).where(eq(traceDestinations.workspaceId, "ws-store-1"));
    expect(JSON.stringify(row)).not.toContain(SECRET);
    const destination = await getDestination(env, "ws-store-1", "hook");
    expect(destination?.target).toMatchObject({ type: "webhook", signingSecret: SECRET });
  });

  it("keeps the stored secret on an update without one, and refuses a new destination without one", async () => {
    await workspace("ws-store-2");
    await putDestination(env.DB, env.MASTER_KEY, "ws-store-2", "hook", input({ type: "webhook", url: "https://hooks.sink.test/s", signing_secret: SECRET }));
    const updated = await putDestination(env.DB, env.MASTER_KEY, "ws-store-2", "hook", input({ type: "webhook", url: "https://hooks.sink.test/t", privacy_mode: true }));
    expect(updated.ok && updated.created).toBe(false);
    forgetDestinations("ws-store-2");
    expect((await getDestination(env, "ws-store-2", "hook"))?.target).toMatchObject({ url: "https://hooks.sink.test/t", signingSecret: SECRET });
    const refused = await putDestination(env.DB, env.MASTER_KEY, "ws-store-2", "other", input({ type: "webhook", url: "https://hooks.sink.test/s" }));
    expect(refused).toMatchObject({ ok: false, code: "bad_request" });
    // Another type does not inherit the webhook's secret.
    const langfuse = await putDestination(env.DB, env.MASTER_KEY, "ws-store-2", "hook", input({ type: "langfuse" }));
    expect(langfuse).toMatchObject({ ok: false, code: "bad_request" });
  });

  it("refuses to store a secret without MASTER_KEY", async () => {
    await workspace("ws-store-3");
    const result = await putDestination(env.DB, null, "ws-store-3", "hook", input({ type: "webhook", url: "https://hooks.sink.test/s", signing_secret: SECRET }));
    expect(result).toMatchObject({ ok: false, code: "unavailable" });
  });

  it("reports a destination whose secret does not decrypt (copied to another id) as unable to deliver", async () => {
    await workspace("ws-store-4");
    await putDestination(env.DB, env.MASTER_KEY, "ws-store-4", "a", input({ type: "webhook", url: "https://hooks.sink.test/s", signing_secret: SECRET }));
    await putDestination(env.DB, env.MASTER_KEY, "ws-store-4", "b", input({ type: "webhook", url: "https://hooks.sink.test/s", signing_secret: "whsec_other_secret_abcdefgh" }));
    const db = drizzle(env.DB);
    const [a] = await db.select().from(traceDestinations).where(and(eq(traceDestinations.workspaceId, "ws-store-4"), eq(traceDestinations.id, "a")));
    await db
      .update(traceDestinations)
      .set({ secretCiphertext: a?.secretCiphertext, secretIv: a?.secretIv })
      .where(and(eq(traceDestinations.workspaceId, "ws-store-4"), eq(traceDestinations.id, "b")));
    forgetDestinations("ws-store-4");
    const b = await getDestination(env, "ws-store-4", "b");
    expect(b?.target).toBeNull();
    expect(b?.problem).toMatch(/does not decrypt/);
    expect((await getDestination({ DB: env.DB, MASTER_KEY: "" }, "ws-store-4", "a"))?.target).not.toBeNull(); // cached for 30 s
  });
});
