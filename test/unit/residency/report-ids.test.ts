/**
 * The id range the residency report seeks (src/residency/report.ts): every generation whose
 * `created_at` falls in the report's range has its id inside it, for any range the admin API
 * accepts (epoch ms of up to 15 digits, and dates before 2001 whose seconds have fewer digits).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { idFloor, idRange, MAX_CLOCK_SKEW_MS, MAX_RECORD_LAG_MS } from "../../../src/residency/report";

/** An id as api/chat/shape.ts takes it, at epoch ms `at`. */
const idAt = (at: number) => `gen-${Math.floor(at / 1000)}-0123456789abcdef01234567`;

/** Epoch ms whose seconds have 10 digits, as every generation id's (2001 to 2286). */
const idTime = fc.integer({ min: 1_000_000_000_000, max: 9_999_999_999_999 });
/** What `from`/`to` may be: the admin API takes up to 15 digits of epoch ms. */
const instant = fc.integer({ min: 0, max: 999_999_999_999_999 });

describe("the residency report's id range", () => {
  it("holds every record written within the lag after its id, whatever the range", () => {
    fc.assert(
      fc.property(
        idTime,
        fc.integer({ min: -MAX_CLOCK_SKEW_MS, max: MAX_RECORD_LAG_MS }),
        fc.integer({ min: 0, max: 60 * 86_400_000 }),
        fc.integer({ min: 1, max: 60 * 86_400_000 }),
        (takenAt, lag, before, after) => {
          const createdAt = takenAt + lag;
          const range = { from: createdAt - before, to: createdAt + after };
          const ids = idRange(range);
          const id = idAt(takenAt);
          expect(id >= ids.from && id < ids.to, `${id} in [${ids.from}, ${ids.to})`).toBe(true);
        },
      ),
    );
  });

  it("excludes ids taken after the range ended, or more than the lag before it began", () => {
    fc.assert(
      fc.property(instant, instant, idTime, (a, b, takenAt) => {
        const range = { from: Math.min(a, b), to: Math.max(a, b) + 1 };
        const ids = idRange(range);
        const id = idAt(takenAt);
        const second = Math.floor(takenAt / 1000);
        if (second > Math.ceil((range.to + MAX_CLOCK_SKEW_MS) / 1000)) expect(id >= ids.to).toBe(true);
        if (second < Math.floor((range.from - MAX_RECORD_LAG_MS) / 1000)) expect(id < ids.from).toBe(true);
      }),
    );
  });

  it("keeps bounds outside the 10-digit seconds below or above every generation id", () => {
    expect(idFloor(1_790_000_000)).toBe("gen-1790000000");
    // 1985 in seconds has 9 digits: as a string it would sort after 2026's ids.
    expect(idFloor(500_000_000)).toBe("gen-");
    expect(idFloor(-86_400)).toBe("gen-");
    expect(idFloor(10_000_000_000)).toBe("gen-:");
    expect(idRange({ from: 500_000_000_000, to: 999_999_999_999_999 })).toEqual({ from: "gen-", to: "gen-:" });
    const everyId = idRange({ from: 0, to: 999_999_999_999_999 });
    for (const id of [idAt(1_000_000_000_000), idAt(1_790_000_000_123), idAt(9_999_999_999_999)]) {
      expect(id >= everyId.from && id < everyId.to).toBe(true);
    }
  });
});
