import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { admin, call, chat, provision, type RouterError } from "../helpers";

let key: string;
beforeAll(async () => {
  key = await provision("ws-auth");
});

async function expect401(res: Response, message: RegExp): Promise<void> {
  expect(res.status).toBe(401);
  const body = (await res.json()) as RouterError;
  expect(body.error.code).toBe(401);
  expect(body.error.message).toMatch(message);
}

const hello = { model: "openai/gpt-4o-mini", messages: [{ role: "user", content: "hi" }] };

describe("inference API authentication", () => {
  it("refuses a request without a key", async () => {
    await expect401(await call("/api/v1/chat/completions", { method: "POST", body: JSON.stringify(hello) }), /Missing API key/);
  });

  it("refuses a malformed key and an unknown key alike", async () => {
    await expect401(await chat("not-a-key", hello), /Invalid API key/);
    await expect401(await chat(`sk-sy-v1-${"0".repeat(64)}`, hello), /Invalid API key/);
  });

  it("refuses a disabled key on the next request", async () => {
    const created = (await (await admin("/workspaces/ws-auth/keys", "POST", { name: "to-disable" })).json()) as {
      data: { id: string };
      key: string;
    };
    const patched = await admin(`/keys/${created.data.id}`, "PATCH", { disabled: true });
    expect(patched.status).toBe(200);
    await expect401(await chat(created.key, hello), /disabled/);
  });

  it("refuses an expired key", async () => {
    const created = (await (
      await admin("/workspaces/ws-auth/keys", "POST", { name: "expired", expires_at: "2020-01-01T00:00:00Z" })
    ).json()) as { key: string };
    await expect401(await chat(created.key, hello), /expired/);
  });

  it("stores only the SHA-256 of a key, never the key", async () => {
    const rows = await env.DB.prepare("SELECT hash, label FROM api_keys").all<{ hash: string; label: string }>();
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(key)));
    const hex = [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
    expect(rows.results.some((r) => r.hash === hex)).toBe(true);
    const dump = JSON.stringify(rows.results);
    expect(dump).not.toContain(key.slice(9));
    expect(rows.results.find((r) => r.hash === hex)!.label).toBe(`${key.slice(0, 12)}…${key.slice(-4)}`);
  });
});

describe("admin API authentication", () => {
  it("refuses a missing or wrong admin token", async () => {
    expect((await call("/admin/v1/providers")).status).toBe(401);
    const wrong = await call("/admin/v1/providers", { headers: { authorization: "Bearer nope" } });
    expect(wrong.status).toBe(401);
    expect(((await wrong.json()) as RouterError).error.message).toBe("Invalid admin token");
  });

  it("does not accept an inference key as an admin token", async () => {
    const res = await call("/admin/v1/providers", { headers: { authorization: `Bearer ${key}` } });
    expect(res.status).toBe(401);
  });

  it("never returns a key's value after creation, only its label and SHA-256 identifier", async () => {
    const res = await admin("/workspaces/ws-auth/keys", "GET");
    const text = await res.text();
    expect(res.status).toBe(200);
    expect(text).not.toContain(key);
    expect(text).not.toContain(key.slice(9));
    const listed = (JSON.parse(text) as { data: Array<{ hash: string; label: string }> }).data;
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(key)));
    expect(listed.map((k) => k.hash)).toContain([...digest].map((b) => b.toString(16).padStart(2, "0")).join(""));
  });
});
