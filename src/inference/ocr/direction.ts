/**
 * Which way up each line is read: PaddleOCR's 0°/180° direction classifier, made safe for long lines and
 * decided per page.
 *
 * PaddleOCR squeezes a whole line into the classifier's 48 × 192 input; a 60-character line then becomes
 * an unreadable smear, and the classifier called upright lines "180" with scores above 0.9 (bench:
 * "s x    t" for "Line 16: the quick brown fox ..."). Here each line is shown at its own aspect ratio, as up
 * to three windows of at most 4 × its height spread along it, and their "180" probabilities are averaged.
 *
 * Then one decision per page: when most lines are confidently upside down (cls_thresh 0.9, PaddleOCR's), the
 * page is, and every line is turned (also those the classifier was unsure of). Otherwise a line the
 * classifier flags is recognized both ways and keeps the reading with the higher confidence, so a
 * classifier mistake can never make an upright line worse than not classifying at all.
 */
import type { Point, Quad } from './geometry.js';

/** Window aspect ratio the classifier was trained on: 192 / 48. */
export const CLS_WINDOW_RATIO = 4;
export const CLS_MAX_WINDOWS = 3;

const lerp = (a: Point, b: Point, t: number): Point => [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t];

/** Sub-quads of an upright sampling quad whose width/height is `ratio`: each at most 4:1, evenly spread. */
export function classifierWindows(q: Quad, ratio: number): { quad: Quad; ratio: number }[] {
  if (ratio <= CLS_WINDOW_RATIO) return [{ quad: q, ratio }];
  const frac = CLS_WINDOW_RATIO / ratio;
  const n = Math.min(CLS_MAX_WINDOWS, Math.ceil(ratio / CLS_WINDOW_RATIO));
  const out: { quad: Quad; ratio: number }[] = [];
  for (let k = 0; k < n; k++) {
    const t0 = n === 1 ? 0 : (k * (1 - frac)) / (n - 1);
    const t1 = t0 + frac;
    out.push({ quad: [lerp(q[0], q[1], t0), lerp(q[0], q[1], t1), lerp(q[3], q[2], t1), lerp(q[3], q[2], t0)], ratio: CLS_WINDOW_RATIO });
  }
  return out;
}

export type LineDirection = 'upright' | 'flip' | 'both';

/**
 * Per-line decision from each line's mean "180" probability. `weights` (e.g. line widths) make a page of
 * long upside-down lines and a few short labels count by text, not by box.
 */
export function decideDirections(p180: readonly number[], weights: readonly number[], thresh: number): { page180: boolean; lines: LineDirection[] } {
  let flipped = 0, total = 0;
  p180.forEach((p, i) => {
    total += weights[i]!;
    if (p > thresh) flipped += weights[i]!;
  });
  const page180 = total > 0 && flipped > total / 2;
  return { page180, lines: p180.map((p) => (page180 ? 'flip' : p > thresh ? 'both' : 'upright')) };
}
