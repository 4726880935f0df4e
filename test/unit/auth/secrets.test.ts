/**
 * Encryption of workspace secrets at rest: AES-GCM under a per-workspace HKDF key, bound to its
 * workspace and purpose by the associated data.
 */
import { describe, expect, it } from "vitest";
import { decryptSecret, encryptSecret, masterKeyOf } from "../../../src/auth/secrets";

const MASTER = "unit-master-key-0123456789abcdef0123456789abcdef";
const SCOPE = { workspaceId: "ws-a", purpose: "byok:openai" };
const SECRET = "sk-proj-THISISTHEPLAINTEXTKEY-1234";

function bytesOf(base64: string): Uint8Array {
  return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
}

function contains(haystack: Uint8Array, needle: Uint8Array): boolean {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return true;
  }
  return false;
}

describe("encryptSecret / decryptSecret", () => {
  it("round-trips for the same workspace and purpose", async () => {
    const sealed = await encryptSecret(MASTER, SCOPE, SECRET);
    expect(await decryptSecret(MASTER, SCOPE, sealed)).toBe(SECRET);
  });

  it("never contains the plaintext, and uses a fresh 12-byte nonce each time", async () => {
    const a = await encryptSecret(MASTER, SCOPE, SECRET);
    const b = await encryptSecret(MASTER, SCOPE, SECRET);
    expect(bytesOf(a.iv)).toHaveLength(12);
    expect(a.iv).not.toBe(b.iv);
    expect(a.ciphertext).not.toBe(b.ciphertext);
    expect(JSON.stringify(a)).not.toContain(SECRET);
    expect(contains(bytesOf(a.ciphertext), new TextEncoder().encode(SECRET))).toBe(false);
    // Plaintext plus the 16-byte GCM tag.
    expect(bytesOf(a.ciphertext)).toHaveLength(SECRET.length + 16);
  });

  it.each([
    ["another workspace", MASTER, { workspaceId: "ws-b", purpose: "byok:openai" }],
    ["another purpose (provider)", MASTER, { workspaceId: "ws-a", purpose: "byok:anthropic" }],
    ["another master key", "another-master-key-0123456789abcdef0123456789", SCOPE],
  ])("does not decrypt for %s", async (_name, master, scope) => {
    const sealed = await encryptSecret(MASTER, SCOPE, SECRET);
    expect(await decryptSecret(master, scope, sealed)).toBeNull();
  });

  it("refuses a tampered ciphertext or nonce, and malformed base64", async () => {
    const sealed = await encryptSecret(MASTER, SCOPE, SECRET);
    const flipped = bytesOf(sealed.ciphertext);
    flipped[0]! ^= 1;
    const tampered = btoa(String.fromCharCode(...flipped));
    expect(await decryptSecret(MASTER, SCOPE, { ...sealed, ciphertext: tampered })).toBeNull();
    const otherIv = (await encryptSecret(MASTER, SCOPE, SECRET)).iv;
    expect(await decryptSecret(MASTER, SCOPE, { ...sealed, iv: otherIv })).toBeNull();
    expect(await decryptSecret(MASTER, SCOPE, { ...sealed, iv: "not base64!" })).toBeNull();
    expect(await decryptSecret(MASTER, SCOPE, { ...sealed, iv: btoa("short") })).toBeNull();
  });
});

describe("masterKeyOf", () => {
  it.each([
    [undefined, null],
    ["", null],
    ["too-short-to-be-a-key", null],
    [MASTER, MASTER],
  ])("%s → %s", (value, expected) => {
    expect(masterKeyOf({ MASTER_KEY: value })).toBe(expected);
  });
});
