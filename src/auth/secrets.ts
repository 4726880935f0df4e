/**
 * @module auth/secrets
 * Encrypting workspace secrets (BYOK provider keys) at rest. Each workspace gets its own AES-256-GCM
 * key, derived with HKDF-SHA-256 from the deployment's `MASTER_KEY` (info: the workspace id), and
 * every ciphertext is bound to its workspace and purpose by GCM's associated data: a row copied
 * into another workspace, or to another provider, does not decrypt. Without a master key nothing
 * is encrypted and nothing decrypts (fail closed).
 */

/** Below this length a `MASTER_KEY` is treated as absent: it would be guessable. */
export const MIN_MASTER_KEY_LENGTH = 32;

/** Fixed HKDF salt: separates these keys from any other use of the same master secret. */
const HKDF_SALT = new TextEncoder().encode("switchyard/secrets/v1");
const IV_BYTES = 12;

/** Whose secret it is and what for; both are authenticated, so neither can be swapped. */
export interface SecretScope {
  workspaceId: string;
  /** What the secret is, e.g. `byok:openai`. */
  purpose: string;
}

export interface SealedSecret {
  /** Base64 ciphertext including the GCM tag. */
  ciphertext: string;
  /** Base64 12-byte nonce, random per encryption. */
  iv: string;
}

/** The master key when it is configured and long enough, else null. */
export function masterKeyOf(env: { MASTER_KEY?: string }): string | null {
  const value = env.MASTER_KEY;
  return typeof value === "string" && value.length >= MIN_MASTER_KEY_LENGTH ? value : null;
}

async function workspaceKey(masterKey: string, workspaceId: string): Promise<CryptoKey> {
  const material = await crypto.subtle.importKey("raw", new TextEncoder().encode(masterKey), "HKDF", false, ["deriveKey"]);
  return crypto.subtle.deriveKey(
    { name: "HKDF", hash: "SHA-256", salt: HKDF_SALT, info: new TextEncoder().encode(workspaceId) },
    material,
    { name: "AES-GCM", length: 256 },
    false,
    ["encrypt", "decrypt"],
  );
}

function associatedData(scope: SecretScope): Uint8Array {
  // A NUL cannot occur in either part's allowed characters, so the encoding is unambiguous.
  return new TextEncoder().encode(`${scope.workspaceId}\u0000${scope.purpose}`);
}

/** Encrypt `plaintext` for `scope` under a fresh random nonce. */
export async function encryptSecret(masterKey: string, scope: SecretScope, plaintext: string): Promise<SealedSecret> {
  const iv = crypto.getRandomValues(new Uint8Array(IV_BYTES));
  const key = await workspaceKey(masterKey, scope.workspaceId);
  const ciphertext = await crypto.subtle.encrypt(
    { name: "AES-GCM", iv, additionalData: associatedData(scope) },
    key,
    new TextEncoder().encode(plaintext),
  );
  return { ciphertext: toBase64(new Uint8Array(ciphertext)), iv: toBase64(iv) };
}

/**
 * Decrypt a sealed secret for `scope`; null when it does not authenticate (another workspace or
 * purpose, another master key, or tampered bytes).
 */
export async function decryptSecret(masterKey: string, scope: SecretScope, sealed: SealedSecret): Promise<string | null> {
  const iv = fromBase64(sealed.iv);
  const ciphertext = fromBase64(sealed.ciphertext);
  if (!iv || iv.length !== IV_BYTES || !ciphertext) return null;
  try {
    const key = await workspaceKey(masterKey, scope.workspaceId);
    const plaintext = await crypto.subtle.decrypt({ name: "AES-GCM", iv, additionalData: associatedData(scope) }, key, ciphertext);
    return new TextDecoder().decode(plaintext);
  } catch {
    return null;
  }
}

function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

function fromBase64(text: string): Uint8Array | null {
  try {
    return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  } catch {
    return null;
  }
}
