/**
 * @module traces/sampling
 * Which traces a destination receives. Sampling is a hash, not a coin: the key is the session id
 * (or the generation id of a request without a session), so a session is kept or dropped as a
 * whole, the same answer comes back on every retry and in every isolate, and a destination with a
 * lower rate receives a subset of what one with a higher rate receives.
 */
import type { Trace } from "./schema";

/** What a destination says about the traces it wants. */
export interface TraceFilter {
  /** 0–1: the share of sessions kept. */
  samplingRate: number;
  /** Only traces of these API keys; null: every key. */
  apiKeyIds: readonly string[] | null;
}

/** The key that sampling hashes: one session → one decision. */
export function samplingKey(trace: Pick<Trace, "session_id" | "generation_id">): string {
  return trace.session_id ? `session:${trace.session_id}` : `generation:${trace.generation_id}`;
}

/**
 * A uniform number in [0, 1) from a string: FNV-1a over its UTF-16 code units, then murmur3's
 * 32-bit finalizer, because FNV alone spreads near-identical keys ("s-1", "s-2") poorly in its
 * high bits.
 */
export function unitHash(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) / 0x1_0000_0000;
}

export function sampled(trace: Pick<Trace, "session_id" | "generation_id">, rate: number): boolean {
  if (rate >= 1) return true;
  if (rate <= 0) return false;
  return unitHash(samplingKey(trace)) < rate;
}

/** Does a destination with `filter` receive `trace`? */
export function wants(filter: TraceFilter, trace: Pick<Trace, "session_id" | "generation_id" | "key_id">): boolean {
  if (filter.apiKeyIds && filter.apiKeyIds.length > 0 && !filter.apiKeyIds.includes(trace.key_id)) return false;
  return sampled(trace, filter.samplingRate);
}
