/**
 * @module billing/ledger-periods
 * UTC calendar periods for key credit limits, and the one-minute windows of the rate limiter.
 * Everything is integer epoch milliseconds; a period is named by the instant it starts.
 */
import type { LimitReset } from "./ledger-schema";

export const DAY_MS = 86_400_000;
export const MINUTE_MS = 60_000;

/** 00:00 UTC of the day holding `now`. */
export function dayStart(now: number): number {
  return Math.floor(now / DAY_MS) * DAY_MS;
}

/** Monday 00:00 UTC of the ISO week holding `now`. 1970-01-01 was a Thursday, three days after a Monday. */
export function weekStart(now: number): number {
  const day = Math.floor(now / DAY_MS);
  const sinceMonday = (((day + 3) % 7) + 7) % 7;
  return (day - sinceMonday) * DAY_MS;
}

/** The 1st of the month holding `now`, 00:00 UTC. */
export function monthStart(now: number): number {
  const date = new Date(now);
  return Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), 1);
}

export interface PeriodStarts {
  day: number;
  week: number;
  month: number;
}

export function periodStarts(now: number): PeriodStarts {
  return { day: dayStart(now), week: weekStart(now), month: monthStart(now) };
}

/** Which counter a credit limit reads: one of the calendar periods, or the lifetime total. */
export function limitPeriod(reset: LimitReset): keyof PeriodStarts | "total" {
  switch (reset) {
    case "daily":
      return "day";
    case "weekly":
      return "week";
    case "monthly":
      return "month";
    case null:
      return "total";
  }
}

/** The epoch minute holding `now` (minutes since 1970). */
export function minuteOf(now: number): number {
  return Math.floor(now / MINUTE_MS);
}

/** Spend in one calendar period: credits charged, and BYOK usage at platform prices. */
export interface PeriodUsage {
  /** Start of the period these sums belong to. */
  start: number;
  usage: number;
  byok: number;
}

/** A key's spend counters, as stored. Period sums belong to the period named by their `start`. */
export interface UsageCounters {
  total: number;
  byokTotal: number;
  day: PeriodUsage;
  week: PeriodUsage;
  month: PeriodUsage;
}

const PERIODS = ["day", "week", "month"] as const;

export function emptyUsage(now: number): UsageCounters {
  const starts = periodStarts(now);
  return {
    total: 0,
    byokTotal: 0,
    day: { start: starts.day, usage: 0, byok: 0 },
    week: { start: starts.week, usage: 0, byok: 0 },
    month: { start: starts.month, usage: 0, byok: 0 },
  };
}

/** The counters as seen at `now`: a period that has ended reads as zero from its successor on. */
export function usageAt(counters: UsageCounters, now: number): UsageCounters {
  const starts = periodStarts(now);
  const view = { ...counters };
  for (const period of PERIODS) {
    const stored = counters[period];
    view[period] = stored.start === starts[period] ? stored : { start: starts[period], usage: 0, byok: 0 };
  }
  return view;
}

/**
 * Add a settled request's spend at `now`. A period that has ended restarts from this spend; a
 * timestamp from before the stored period (clock skew across a boundary) counts in the total only.
 */
export function addUsage(counters: UsageCounters, usage: number, byok: number, now: number): UsageCounters {
  const starts = periodStarts(now);
  const next = { ...counters, total: counters.total + usage, byokTotal: counters.byokTotal + byok };
  for (const period of PERIODS) {
    const stored = counters[period];
    if (starts[period] === stored.start) next[period] = { start: stored.start, usage: stored.usage + usage, byok: stored.byok + byok };
    else if (starts[period] > stored.start) next[period] = { start: starts[period], usage, byok };
  }
  return next;
}

/**
 * What counts against a credit limit at `now`: the credits charged in the limit's period (or in
 * total), plus BYOK usage when the key includes it in its limit.
 */
export function limitUsage(counters: UsageCounters, reset: LimitReset, includeByok: boolean, now: number): number {
  const period = limitPeriod(reset);
  const view = usageAt(counters, now);
  if (period === "total") return view.total + (includeByok ? view.byokTotal : 0);
  return view[period].usage + (includeByok ? view[period].byok : 0);
}
