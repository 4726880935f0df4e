/**
 * @module routing/sticky
 * Sticky routing: keep a conversation on the endpoint that served its last turn, so the
 * provider's prompt cache still holds its prefix (a switch mid-conversation pays full price for
 * the whole history again). The key is the request's `session_id`, or else a hash of the first
 * system and first user message — the start of the prefix every later turn repeats — scoped by
 * workspace so two tenants never share an entry.
 *
 * The hash is a fast synchronous non-cryptographic 53-bit hash rather than SHA-256: the key never
 * leaves the isolate, a collision only costs one conversation a cache miss (it still goes to a
 * healthy endpoint that survived every filter), keys are scoped per workspace so another tenant
 * cannot aim collisions at it, and staying synchronous keeps the planner pure and the hot path
 * free of an extra await.
 */
import type { ChatMessage, ChatRequest } from "../schemas/openai";

/** Idle time after which a conversation may move (OpenRouter: 10 minutes). */
export const STICKY_IDLE_MS = 10 * 60_000;
/** Entries per isolate; the least recently used goes first. */
export const STICKY_MAX_ENTRIES = 10_000;

/** 53-bit multiply-xorshift hash of a string (two 32-bit lanes, mixed at the end). */
export function hash53(text: string): number {
  let a = 0x9e3779b9;
  let b = 0x85ebca6b;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    a = Math.imul(a ^ c, 0x85ebca77);
    b = Math.imul(b ^ c, 0xc2b2ae3d);
  }
  a = Math.imul(a ^ (a >>> 16), 0x27d4eb2f) ^ Math.imul(b ^ (b >>> 13), 0x165667b1);
  b = Math.imul(b ^ (b >>> 16), 0x27d4eb2f) ^ Math.imul(a ^ (a >>> 13), 0x165667b1);
  return (b & 0x1fffff) * 0x1_0000_0000 + (a >>> 0);
}

/** A message's content as one string: text as is, parts (images included) as JSON. */
function contentKey(message: ChatMessage | undefined): string {
  const content = message?.content;
  if (content == null) return "";
  return typeof content === "string" ? content : JSON.stringify(content);
}

/**
 * The conversation key of `req` in `workspaceId`: its session id (the body's, else the
 * `x-session-id` header's), else a hash of the first system and first user message. Null when
 * there is neither a session id nor such a message to recognise the conversation by.
 */
export function conversationKey(workspaceId: string, req: ChatRequest, headerSessionId?: string | null): string | null {
  const session = req.session_id ?? headerSessionId ?? undefined;
  if (session) return `${workspaceId}:session:${session}`;
  const system = req.messages.find((m) => m.role === "system" || m.role === "developer");
  const user = req.messages.find((m) => m.role === "user");
  if (!system && !user) return null;
  const systemText = contentKey(system);
  // Length-prefixed so ("ab", "c") and ("a", "bc") differ.
  const text = `${systemText.length}:${systemText}${contentKey(user)}`;
  return `${workspaceId}:prefix:${hash53(text).toString(36)}`;
}

/**
 * Conversation key → endpoint id, per isolate, with idle expiry and a size bound. Time is passed
 * in so tests need no fake timers. Map order is last-use order: every read or write moves the
 * entry to the end, so the front is always the least recently used.
 */
export class StickyRoutes {
  readonly #entries = new Map<string, { endpointId: string; lastUsed: number }>();
  readonly #idleMs: number;
  readonly #maxEntries: number;

  constructor(options: { idleMs?: number; maxEntries?: number } = {}) {
    this.#idleMs = options.idleMs ?? STICKY_IDLE_MS;
    this.#maxEntries = Math.max(1, options.maxEntries ?? STICKY_MAX_ENTRIES);
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The conversation's endpoint, if it was used within the idle time; refreshes it. */
  get(key: string, now: number): string | undefined {
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    this.#entries.delete(key);
    if (now - entry.lastUsed >= this.#idleMs) return undefined;
    this.#entries.set(key, { endpointId: entry.endpointId, lastUsed: now });
    return entry.endpointId;
  }

  /** Remember that `endpointId` served the conversation at `now`. */
  set(key: string, endpointId: string, now: number): void {
    this.#entries.delete(key);
    if (this.#entries.size >= this.#maxEntries) this.#evict(now);
    this.#entries.set(key, { endpointId, lastUsed: now });
  }

  delete(key: string): void {
    this.#entries.delete(key);
  }

  clear(): void {
    this.#entries.clear();
  }

  /** Drop expired entries from the front, then the least recently used until there is room. */
  #evict(now: number): void {
    for (const [key, entry] of this.#entries) {
      if (now - entry.lastUsed < this.#idleMs) break;
      this.#entries.delete(key);
    }
    for (const key of this.#entries.keys()) {
      if (this.#entries.size < this.#maxEntries) break;
      this.#entries.delete(key);
    }
  }
}

/**
 * A uniform [0, 1) generator seeded by `seed` (mulberry32 over the seed's low 32 bits xor its
 * high bits). A conversation the isolate has not seen draws its load-balancing order from its
 * own key, so every isolate sends it to the same endpoint while health and catalog agree: sticky
 * routing across isolates without shared state.
 */
export function seededRandom(seed: number): () => number {
  let state = (seed ^ Math.floor(seed / 0x1_0000_0000)) >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 0x1_0000_0000;
  };
}
