import { beforeEach, describe, expect, it } from "vitest";
import { HEADROOM_FACTOR, OUTLOOK_TTL_MS, forgetOutlooks, mayAdmitInParallel, outlookScope, recordOutlook } from "../../../src/billing/admission-outlook";
import type { AdmitResult } from "../../../src/billing/ledger-schema";

const T0 = 1_700_000_000_000;
const scope = outlookScope("ledger", "ws", "key-1");

function admitted(freeMicros: number, ratesTight = false): AdmitResult {
  return { ok: true, holdId: "h", reservedMicros: 1, maxTokens: 10, capped: false, rate: null, headroom: { freeMicros, ratesTight } };
}

beforeEach(() => forgetOutlooks());

describe("admission outlook", () => {
  it("admits first when the isolate has no view of the key", () => {
    expect(mayAdmitInParallel(scope, 100, T0)).toBe(false);
  });

  it("goes parallel only when the free credit covers the full reservation several times", () => {
    recordOutlook(scope, admitted(HEADROOM_FACTOR * 1_000), T0);
    expect(mayAdmitInParallel(scope, 1_000, T0 + 1)).toBe(true);
    expect(mayAdmitInParallel(scope, 1_001, T0 + 1)).toBe(false);
    // Another key or another admitting object has its own view.
    expect(mayAdmitInParallel(outlookScope("ledger", "ws", "key-2"), 1, T0 + 1)).toBe(false);
    expect(mayAdmitInParallel(outlookScope("ws#shard-0", "ws", "key-1"), 1, T0 + 1)).toBe(false);
  });

  it("distrusts a stale view, tight rate limits, and forgets the view on a refusal", () => {
    recordOutlook(scope, admitted(1_000_000), T0);
    expect(mayAdmitInParallel(scope, 1, T0 + OUTLOOK_TTL_MS)).toBe(true);
    expect(mayAdmitInParallel(scope, 1, T0 + OUTLOOK_TTL_MS + 1)).toBe(false);
    recordOutlook(scope, admitted(1_000_000, true), T0);
    expect(mayAdmitInParallel(scope, 1, T0)).toBe(false);
    recordOutlook(scope, admitted(1_000_000), T0);
    recordOutlook(scope, { ok: false, reason: "key_disabled" }, T0);
    expect(mayAdmitInParallel(scope, 1, T0)).toBe(false);
  });

  it("never goes parallel on a negative or zero headroom, even for a free request", () => {
    recordOutlook(scope, admitted(0), T0);
    expect(mayAdmitInParallel(scope, 0, T0)).toBe(false);
    recordOutlook(scope, admitted(-5), T0);
    expect(mayAdmitInParallel(scope, 0, T0)).toBe(false);
  });
});
