/**
 * @module routing/health-histogram
 * A log-scale histogram: the bounded sample behind the Health object's latency and throughput
 * percentiles.
 *
 * Why a histogram and not a list of samples: memory and the cost of a percentile stay fixed however
 * busy an endpoint is, minute histograms add and subtract exactly (so a 30-minute total is kept
 * running instead of re-merged on every snapshot), and nothing is random (a reservoir would need a
 * seeded generator to stay deterministic, and estimates p99 badly from a few dozen samples).
 * Eight bins per doubling put a value within 2^(1/16) − 1 ≈ 4.4 % of the bin's geometric middle;
 * the exact minimum and maximum are kept too, and clamp the estimate, so a window with one value
 * (or many equal ones) reports it exactly.
 */

/** Bins per doubling. 8 keeps the relative error under 4.4 % with 160 bins for 1 ms – 17 min. */
export const BINS_PER_OCTAVE = 8;

/** The range a histogram resolves; values outside it land in its first or last bin. */
export interface HistogramScale {
  /** Lower edge of the first bin; smaller values (and 0) land in it too. */
  readonly min: number;
  /** Doublings above `min` covered; the last bin takes everything larger. */
  readonly octaves: number;
}

/** Time to first token: 1 ms to 2^20 ms (about 17 minutes, beyond any upstream timeout). */
export const LATENCY_SCALE: HistogramScale = { min: 1, octaves: 20 };
/** Output tokens per second: 1/8 to 16,384 (17 doublings). */
export const THROUGHPUT_SCALE: HistogramScale = { min: 0.125, octaves: 17 };

export class LogHistogram {
  readonly #scale: HistogramScale;
  readonly #bins: Uint32Array;
  #count = 0;

  constructor(scale: HistogramScale) {
    this.#scale = scale;
    this.#bins = new Uint32Array(scale.octaves * BINS_PER_OCTAVE);
  }

  get count(): number {
    return this.#count;
  }

  add(value: number): void {
    const bins = this.#bins;
    const index = value <= this.#scale.min ? 0 : Math.floor(Math.log2(value / this.#scale.min) * BINS_PER_OCTAVE);
    const bin = Math.min(bins.length - 1, Math.max(0, index));
    bins[bin] = (bins[bin] ?? 0) + 1;
    this.#count += 1;
  }

  /** Add (sign 1) or remove (sign −1) every value of `other`, which must share this scale. */
  merge(other: LogHistogram, sign: 1 | -1): void {
    const bins = this.#bins;
    other.#bins.forEach((n, i) => {
      if (n !== 0) bins[i] = (bins[i] ?? 0) + sign * n;
    });
    this.#count += sign * other.#count;
  }

  /**
   * The value at quantile `q` (0 < q ≤ 1) by nearest rank: the geometric middle of the bin holding
   * the ⌈q·n⌉-th smallest value, clamped to [lowest, highest]. NaN when empty.
   */
  quantile(q: number, lowest: number, highest: number): number {
    if (this.#count === 0) return Number.NaN;
    const rank = Math.max(1, Math.ceil(q * this.#count));
    let seen = 0;
    let bin = this.#bins.length - 1;
    for (let i = 0; i < this.#bins.length; i++) {
      seen += this.#bins[i] ?? 0;
      if (seen >= rank) {
        bin = i;
        break;
      }
    }
    const middle = this.#scale.min * 2 ** ((bin + 0.5) / BINS_PER_OCTAVE);
    return Math.min(highest, Math.max(lowest, middle));
  }
}
