import { describe, expect, it } from "vitest";
import { conversationKey, hash53, STICKY_IDLE_MS, StickyRoutes } from "../../../src/routing/sticky";
import { chatRequest } from "./fixtures";

const system = { role: "system", content: "You are terse." };
const user = (content: string) => ({ role: "user", content });
const assistant = (content: string) => ({ role: "assistant", content });

describe("conversationKey", () => {
  it("uses the request's session_id, scoped by workspace", () => {
    expect(conversationKey("ws-a", chatRequest({ session_id: "s-1" }))).toBe("ws-a:session:s-1");
    expect(conversationKey("ws-b", chatRequest({ session_id: "s-1" }))).toBe("ws-b:session:s-1");
  });

  it("uses the x-session-id header when the body has none, and the body's when both are sent", () => {
    expect(conversationKey("ws", chatRequest(), "from-header")).toBe("ws:session:from-header");
    expect(conversationKey("ws", chatRequest({ session_id: "from-body" }), "from-header")).toBe("ws:session:from-body");
  });

  it("hashes the first system and first user message otherwise", () => {
    const key = conversationKey("ws", chatRequest({ messages: [system, user("Plan my trip")] }));
    expect(key).toMatch(/^ws:prefix:[0-9a-z]+$/);
  });

  it("gives every later turn of a conversation the same key", () => {
    const first = conversationKey("ws", chatRequest({ messages: [system, user("Plan my trip")] }));
    const third = conversationKey("ws", chatRequest({ messages: [system, user("Plan my trip"), assistant("Where to?"), user("Lisbon"), assistant("When?"), user("May")] }));
    expect(third).toBe(first);
  });

  it.each([
    ["another system prompt", [{ role: "system", content: "You are verbose." }, user("Plan my trip")]],
    ["another first user message", [system, user("Plan my holiday")]],
    ["no system prompt", [user("Plan my trip")]],
    ["the text shifted across the two messages", [{ role: "system", content: "You are terse.P" }, user("lan my trip")]],
  ])("tells conversations apart: %s", (_name, messages) => {
    const base = conversationKey("ws", chatRequest({ messages: [system, user("Plan my trip")] }));
    expect(conversationKey("ws", chatRequest({ messages }))).not.toBe(base);
  });

  it("scopes the hash by workspace", () => {
    const messages = [system, user("hi")];
    expect(conversationKey("ws-a", chatRequest({ messages }))).not.toBe(conversationKey("ws-b", chatRequest({ messages })));
  });

  it("treats a developer message as the system prompt and tells images apart", () => {
    const withImage = (url: string) => chatRequest({ messages: [{ role: "user", content: [{ type: "image_url", image_url: { url } }] }] });
    expect(conversationKey("ws", withImage("https://x.test/a.png"))).not.toBe(conversationKey("ws", withImage("https://x.test/b.png")));
    const developer = conversationKey("ws", chatRequest({ messages: [{ role: "developer", content: "You are terse." }, user("hi")] }));
    expect(developer).toBe(conversationKey("ws", chatRequest({ messages: [system, user("hi")] })));
  });

  it("has no key without a session id or a system or user message", () => {
    expect(conversationKey("ws", chatRequest({ messages: [assistant("Hello")] }))).toBeNull();
  });
});

describe("hash53", () => {
  it("is stable, fits in a safe integer and spreads similar inputs", () => {
    expect(hash53("abc")).toBe(hash53("abc"));
    const values = new Set(Array.from({ length: 10_000 }, (_, i) => hash53(`message ${i}`)));
    expect(values.size).toBe(10_000);
    for (const v of values) expect(Number.isSafeInteger(v) && v >= 0).toBe(true);
  });
});

describe("StickyRoutes", () => {
  const T0 = 1_000_000;

  it("remembers an endpoint per conversation", () => {
    const routes = new StickyRoutes();
    routes.set("k1", "m:groq", T0);
    routes.set("k2", "m:together", T0);
    expect(routes.get("k1", T0 + 1)).toBe("m:groq");
    expect(routes.get("k2", T0 + 1)).toBe("m:together");
    expect(routes.get("k3", T0 + 1)).toBeUndefined();
  });

  it("forgets a conversation idle for 10 minutes, not one used just before", () => {
    const routes = new StickyRoutes();
    routes.set("k", "m:groq", T0);
    expect(routes.get("k", T0 + STICKY_IDLE_MS - 1)).toBe("m:groq");
    // That read refreshed it: 10 minutes from the read, not from the write.
    expect(routes.get("k", T0 + 2 * STICKY_IDLE_MS - 2)).toBe("m:groq");
    expect(routes.get("k", T0 + 3 * STICKY_IDLE_MS - 2)).toBeUndefined();
    expect(routes.size).toBe(0);
  });

  it("moves a conversation when set again", () => {
    const routes = new StickyRoutes();
    routes.set("k", "m:groq", T0);
    routes.set("k", "m:together", T0 + 5);
    expect(routes.get("k", T0 + 10)).toBe("m:together");
    expect(routes.size).toBe(1);
  });

  it("evicts the least recently used entry when full", () => {
    const routes = new StickyRoutes({ maxEntries: 3 });
    routes.set("a", "1", T0);
    routes.set("b", "2", T0 + 1);
    routes.set("c", "3", T0 + 2);
    routes.get("a", T0 + 3); // a is now the most recently used
    routes.set("d", "4", T0 + 4);
    expect(routes.size).toBe(3);
    expect(routes.get("b", T0 + 5)).toBeUndefined();
    expect(routes.get("a", T0 + 5)).toBe("1");
    expect(routes.get("c", T0 + 5)).toBe("3");
    expect(routes.get("d", T0 + 5)).toBe("4");
  });

  it("drops expired entries first when full", () => {
    const routes = new StickyRoutes({ maxEntries: 3, idleMs: 100 });
    routes.set("old1", "1", T0);
    routes.set("old2", "2", T0 + 1);
    routes.set("fresh", "3", T0 + 150);
    routes.set("new", "4", T0 + 160);
    expect(routes.size).toBe(2);
    expect(routes.get("fresh", T0 + 170)).toBe("3");
    expect(routes.get("new", T0 + 170)).toBe("4");
  });

  it("honours a custom idle time and forgets on delete", () => {
    const routes = new StickyRoutes({ idleMs: 1_000 });
    routes.set("k", "x", T0);
    expect(routes.get("k", T0 + 1_000)).toBeUndefined();
    routes.set("k", "x", T0);
    routes.delete("k");
    expect(routes.get("k", T0)).toBeUndefined();
  });
});
