/**
 * Reading order: top to bottom, and left to right among boxes that share a row.
 *
 * PaddleOCR sorts by the top-left corner and swaps neighbours less than 10 px apart vertically; a fixed
 * pixel tolerance breaks for large or small text, so rows are formed here by vertical overlap instead: a
 * box joins the current row when its vertical centre lies within the row's band (half the smaller height
 * around the row's centre).
 */
import type { Quad } from './geometry.js';

export interface Placed {
  quad: Quad;
}

const bounds = (q: Quad) => {
  const ys = q.map((p) => p[1]);
  const xs = q.map((p) => p[0]);
  return { x0: Math.min(...xs), x1: Math.max(...xs), y0: Math.min(...ys), y1: Math.max(...ys) };
};

/** Group into rows (top to bottom), each sorted left to right. Stable for equal keys. */
export function readingRows<T extends Placed>(items: readonly T[]): T[][] {
  const withBounds = items.map((item) => ({ item, ...bounds(item.quad) }));
  withBounds.sort((a, b) => (a.y0 + a.y1) / 2 - (b.y0 + b.y1) / 2);
  const rows: { cy: number; h: number; members: typeof withBounds }[] = [];
  for (const b of withBounds) {
    const cy = (b.y0 + b.y1) / 2;
    const h = b.y1 - b.y0;
    const row = rows[rows.length - 1];
    if (row && Math.abs(cy - row.cy) < Math.min(h, row.h) / 2) {
      row.members.push(b);
      // Running mean keeps a slightly skewed row together without letting it drift into the next one.
      row.cy = (row.cy * (row.members.length - 1) + cy) / row.members.length;
      row.h = Math.max(row.h, h);
    } else {
      rows.push({ cy, h, members: [b] });
    }
  }
  return rows.map((r) => r.members.sort((a, b) => a.x0 - b.x0).map((m) => m.item));
}

/** Flattened reading order. */
export function readingOrder<T extends Placed>(items: readonly T[]): T[] {
  return readingRows(items).flat();
}
