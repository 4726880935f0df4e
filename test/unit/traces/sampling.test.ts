/**
 * Sampling is a hash of the session (or of the generation without one): deterministic, all or
 * nothing per session, and close to the configured rate over many sessions.
 */
import { describe, expect, it } from "vitest";
import { sampled, samplingKey, unitHash, wants } from "../../../src/traces/sampling";
import { exampleTrace } from "./fixtures";

describe("trace sampling", () => {
  it("keeps or drops a session as a whole, every time", () => {
    for (let s = 0; s < 200; s++) {
      const session = `session-${s}`;
      const decisions = new Set(Array.from({ length: 25 }, (_, i) => sampled({ session_id: session, generation_id: `gen-${s}-${i}` }, 0.5)));
      expect(decisions.size).toBe(1);
      expect(sampled({ session_id: session, generation_id: "other" }, 0.5)).toBe([...decisions][0]);
    }
  });

  it("samples about the configured share of 2,000 sessions (50 % ± 4 pp)", () => {
    let kept = 0;
    for (let s = 0; s < 2000; s++) if (sampled({ session_id: `sess_${s.toString(36)}`, generation_id: `gen-${s}` }, 0.5)) kept++;
    expect(Math.abs(kept / 2000 - 0.5)).toBeLessThanOrEqual(0.04);
  });

  it("samples about the configured share at other rates too, and a lower rate keeps a subset of a higher one", () => {
    const sessions = Array.from({ length: 2000 }, (_, s) => ({ session_id: crypto.randomUUID(), generation_id: `g${s}` }));
    for (const rate of [0.1, 0.25, 0.9]) {
      const share = sessions.filter((t) => sampled(t, rate)).length / sessions.length;
      expect(Math.abs(share - rate)).toBeLessThanOrEqual(0.04);
    }
    for (const t of sessions) if (sampled(t, 0.1)) expect(sampled(t, 0.25)).toBe(true);
  });

  it("samples per generation when there is no session, and 0 and 1 are exact", () => {
    expect(samplingKey({ session_id: null, generation_id: "gen-1" })).toBe("generation:gen-1");
    let kept = 0;
    for (let i = 0; i < 2000; i++) if (sampled({ session_id: null, generation_id: `gen-${i}` }, 0.5)) kept++;
    expect(Math.abs(kept / 2000 - 0.5)).toBeLessThanOrEqual(0.04);
    expect(sampled({ session_id: "s", generation_id: "g" }, 0)).toBe(false);
    expect(sampled({ session_id: "s", generation_id: "g" }, 1)).toBe(true);
  });

  it("hashes into [0, 1)", () => {
    for (let i = 0; i < 1000; i++) {
      const h = unitHash(`k${i}`);
      expect(h).toBeGreaterThanOrEqual(0);
      expect(h).toBeLessThan(1);
    }
  });

  it("filters by API key id when the destination lists some", () => {
    const trace = exampleTrace({ key_id: "key-1" });
    expect(wants({ samplingRate: 1, apiKeyIds: null }, trace)).toBe(true);
    expect(wants({ samplingRate: 1, apiKeyIds: [] }, trace)).toBe(true);
    expect(wants({ samplingRate: 1, apiKeyIds: ["key-1", "key-9"] }, trace)).toBe(true);
    expect(wants({ samplingRate: 1, apiKeyIds: ["key-2"] }, trace)).toBe(false);
  });
});
