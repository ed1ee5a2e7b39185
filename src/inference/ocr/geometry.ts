/**
 * Plane geometry for the DB post-processing, written out so that no OpenCV/clipper port is needed:
 * convex hull, minimum-area rotated rectangle (rotating calipers), the DB "unclip" of a rectangle and
 * PaddleOCR's corner ordering. Everything is O(n log n) in the hull's input points.
 */

export type Point = [number, number];
/** Corners in order top-left, top-right, bottom-right, bottom-left. */
export type Quad = [Point, Point, Point, Point];

export interface RotatedRect {
  cx: number;
  cy: number;
  /** Unit vector along the `w` side. */
  ux: number;
  uy: number;
  w: number;
  h: number;
}

const cross = (o: Point, a: Point, b: Point) => (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);

/** Andrew's monotone chain; returns the hull counter-clockwise without repeating the first point. */
export function convexHull(points: Point[]): Point[] {
  if (points.length <= 2) return points.slice();
  const pts = points.slice().sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const lower: Point[] = [];
  for (const p of pts) {
    while (lower.length >= 2 && cross(lower[lower.length - 2]!, lower[lower.length - 1]!, p) <= 0) lower.pop();
    lower.push(p);
  }
  const upper: Point[] = [];
  for (let i = pts.length - 1; i >= 0; i--) {
    const p = pts[i]!;
    while (upper.length >= 2 && cross(upper[upper.length - 2]!, upper[upper.length - 1]!, p) <= 0) upper.pop();
    upper.push(p);
  }
  lower.pop();
  upper.pop();
  return lower.concat(upper);
}

/**
 * Smallest-area enclosing rectangle of a convex polygon: one of its sides lies on a hull edge, so try
 * each edge (rotating calipers without the bookkeeping: hulls of text blobs have tens of points).
 */
export function minAreaRect(hull: Point[]): RotatedRect {
  if (hull.length === 0) return { cx: 0, cy: 0, ux: 1, uy: 0, w: 0, h: 0 };
  if (hull.length === 1) return { cx: hull[0]![0], cy: hull[0]![1], ux: 1, uy: 0, w: 0, h: 0 };
  let best: RotatedRect | undefined;
  let bestArea = Infinity;
  for (let i = 0; i < hull.length; i++) {
    const a = hull[i]!;
    const b = hull[(i + 1) % hull.length]!;
    const len = Math.hypot(b[0] - a[0], b[1] - a[1]);
    if (len === 0) continue;
    const ux = (b[0] - a[0]) / len;
    const uy = (b[1] - a[1]) / len;
    let minU = Infinity, maxU = -Infinity, minV = Infinity, maxV = -Infinity;
    for (const p of hull) {
      const u = p[0] * ux + p[1] * uy;
      const v = -p[0] * uy + p[1] * ux;
      if (u < minU) minU = u;
      if (u > maxU) maxU = u;
      if (v < minV) minV = v;
      if (v > maxV) maxV = v;
    }
    const area = (maxU - minU) * (maxV - minV);
    if (area < bestArea - 1e-9) {
      bestArea = area;
      const cu = (minU + maxU) / 2;
      const cv = (minV + maxV) / 2;
      best = { cx: cu * ux - cv * uy, cy: cu * uy + cv * ux, ux, uy, w: maxU - minU, h: maxV - minV };
    }
  }
  return best ?? { cx: hull[0]![0], cy: hull[0]![1], ux: 1, uy: 0, w: 0, h: 0 };
}

/**
 * DB's unclip: the shrunk text kernel is grown back by D = area * ratio / perimeter. For a rectangle,
 * offsetting every side outwards by D (what Clipper does, minus the rounded corners that the following
 * min-area-rect discards anyway) gives (w + 2D) × (h + 2D).
 */
export function unclipRect(r: RotatedRect, ratio: number): RotatedRect {
  const perimeter = 2 * (r.w + r.h);
  if (perimeter <= 0) return r;
  const d = (r.w * r.h * ratio) / perimeter;
  return { ...r, w: r.w + 2 * d, h: r.h + 2 * d };
}

export function rectCorners(r: RotatedRect): Point[] {
  const hx = (r.ux * r.w) / 2, hy = (r.uy * r.w) / 2; // half of the w side
  const vx = (-r.uy * r.h) / 2, vy = (r.ux * r.h) / 2; // half of the h side
  return [
    [r.cx - hx - vx, r.cy - hy - vy],
    [r.cx + hx - vx, r.cy + hy - vy],
    [r.cx + hx + vx, r.cy + hy + vy],
    [r.cx - hx + vx, r.cy - hy + vy],
  ];
}

/**
 * PaddleOCR's get_mini_boxes ordering: of the two leftmost corners the upper is top-left, of the two
 * rightmost the upper is top-right. Keeps the crop's "width" along the text for near-horizontal lines.
 */
export function orderQuad(corners: Point[]): Quad {
  const p = corners.slice().sort((a, b) => a[0] - b[0]);
  const [tl, bl] = p[1]![1] > p[0]![1] ? [p[0]!, p[1]!] : [p[1]!, p[0]!];
  const [tr, br] = p[3]![1] > p[2]![1] ? [p[2]!, p[3]!] : [p[3]!, p[2]!];
  return [tl, tr, br, bl];
}

export const dist = (a: Point, b: Point) => Math.hypot(a[0] - b[0], a[1] - b[1]);

/** Is (x, y) inside the convex quad (either winding), with `tol` pixels of slack? */
export function insideQuad(q: Quad, x: number, y: number, tol = 0): boolean {
  let sign = 0;
  for (let i = 0; i < 4; i++) {
    const a = q[i]!;
    const b = q[(i + 1) % 4]!;
    const ex = b[0] - a[0], ey = b[1] - a[1];
    const len = Math.hypot(ex, ey) || 1;
    const c = (ex * (y - a[1]) - ey * (x - a[0])) / len; // signed distance to the edge's line
    if (Math.abs(c) <= tol) continue;
    const s = c > 0 ? 1 : -1;
    if (sign === 0) sign = s;
    else if (s !== sign) return false;
  }
  return true;
}
