/**
 * Joining word boxes into lines before recognition.
 *
 * The DB detector usually returns one box per text line, but for large type (word gaps wider than its
 * receptive field) it returns one box per word, and neighbouring word boxes may overlap after unclipping,
 * so separate crops read letters of the neighbour ("Large" + "e heading"). The result is defined as
 * lines, so near-horizontal boxes on the same row whose horizontal gap is less than `gapFrac` × their
 * height (a word space is ~0.3 em; table columns are much further apart) are merged into one box first.
 * A much smaller box inside a line's band and close to it (a dot, a speck) joins that line.
 * Rotated boxes are left alone.
 */
import type { DetBox } from './detect.js';
import type { Point, Quad } from './geometry.js';
import { readingRows } from './order.js';

interface Aabb {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

const aabb = (q: Quad): Aabb => ({
  x0: Math.min(q[0][0], q[1][0], q[2][0], q[3][0]),
  y0: Math.min(q[0][1], q[1][1], q[2][1], q[3][1]),
  x1: Math.max(q[0][0], q[1][0], q[2][0], q[3][0]),
  y1: Math.max(q[0][1], q[1][1], q[2][1], q[3][1]),
});
const union = (a: Aabb, b: Aabb): Aabb => ({ x0: Math.min(a.x0, b.x0), y0: Math.min(a.y0, b.y0), x1: Math.max(a.x1, b.x1), y1: Math.max(a.y1, b.y1) });
const rect = (b: Aabb): Quad => [[b.x0, b.y0], [b.x1, b.y0], [b.x1, b.y1], [b.x0, b.y1]] as [Point, Point, Point, Point];

/** Less than ~3° from horizontal. */
function isHorizontal(q: Quad): boolean {
  const dx = q[1][0] - q[0][0];
  const dy = q[1][1] - q[0][1];
  return dx > 0 && Math.abs(dy) <= 0.05 * dx;
}

export function mergeRowBoxes(boxes: readonly DetBox[], gapFrac = 0.7): DetBox[] {
  const flat = boxes.filter((b) => isHorizontal(b.quad));
  const other = boxes.filter((b) => !isHorizontal(b.quad));
  const out: DetBox[] = [...other];
  for (const row of readingRows(flat.map((b) => ({ b, quad: b.quad })))) {
    let cur = { box: aabb(row[0]!.b.quad), report: aabb(row[0]!.b.reportQuad), score: row[0]!.b.score, orig: row[0]!.b, n: 1 };
    const flush = () => {
      out.push(cur.n === 1 ? cur.orig : { quad: rect(cur.box), reportQuad: rect(cur.report), score: cur.score });
    };
    for (const { b } of row.slice(1)) {
      const next = aabb(b.quad);
      const h0 = cur.box.y1 - cur.box.y0, h1 = next.y1 - next.y0;
      const overlap = Math.min(cur.box.y1, next.y1) - Math.max(cur.box.y0, next.y0);
      const gap = next.x0 - cur.box.x1;
      const similar = Math.max(h0, h1) <= 1.6 * Math.min(h0, h1) && overlap >= 0.5 * Math.min(h0, h1);
      // A fragment (a dot, a speck the detector kept) inside the line's band belongs to it and must not
      // split the row: "Large heading" + speck + "9" is one line.
      const fragment = h1 < 0.5 * h0 && next.y0 >= cur.box.y0 && next.y1 <= cur.box.y1;
      if ((similar && gap < (gapFrac * (h0 + h1)) / 2) || (fragment && gap < gapFrac * h0)) {
        cur = { box: union(cur.box, next), report: union(cur.report, aabb(b.reportQuad)), score: Math.min(cur.score, b.score), orig: cur.orig, n: cur.n + 1 };
      } else {
        flush();
        cur = { box: next, report: aabb(b.reportQuad), score: b.score, orig: b, n: 1 };
      }
    }
    flush();
  }
  return out;
}
