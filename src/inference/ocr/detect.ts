/**
 * Text detection with PP-OCRv4's DB model: pre-processing and DB post-processing.
 *
 * Input size follows PaddleOCR 3's runtime (limit_type "min", limit_side_len 64, max_side_limit 4000):
 * the image keeps its own resolution, rounded to multiples of 32, unless a side is under 64 px or over 4000
 * px. PaddleOCR 2's "max 960" shrank a 1900 × 3800 page by 4, to 8 px text that the detector merges or
 * misses (measured in bench/ocr-accuracy.ts: the dense class went from 71 % CER to under 1 %); the
 * reference @gutenye/ocr-node also keeps the resolution. Normalization is PaddleOCR's (NormalizeImage mean
 * [0.485,0.456,0.406] std [0.229,0.224,0.225] scale 1/255; ToCHW). PaddleOCR reads images with cv2, i.e. in
 * BGR order, and applies mean/std in array order; the model was trained that way, so plane 0 is B
 * normalized with 0.485/0.229, and so on.
 *
 * Post-processing follows DBPostProcess (thresh 0.3, box_thresh 0.6, unclip_ratio 1.5, min_size 3):
 * binarize, find connected blobs, fit a minimum-area rectangle, score it, grow it by the unclip distance and
 * map it to the original image. The score is the mean probability over the blob's own pixels (close to
 * PaddleOCR's score_mode "slow", the contour's polygon), not over its rectangle ("fast"): the rectangle
 * of a curved line is mostly background, and "fast" dropped every line of a photographed, curled page.
 * Everything runs on typed arrays in time linear in the map size.
 */
import sharp from 'sharp';
import type { RgbImage } from '../image.js';
import { convexHull, dist, minAreaRect, orderQuad, rectCorners, unclipRect, type Point, type Quad } from './geometry.js';

export interface DetOptions {
  /** The shorter side is scaled up to at least this (PaddleOCR 3: limit_type "min", limit_side_len 64). */
  minSideLen: number;
  /** The longer side is scaled down to at most this (PaddleOCR 3: max_side_limit 4000). */
  maxSideLen: number;
  /** Probability above which a map pixel is text. */
  thresh: number;
  /** Minimum mean probability inside a box. */
  boxThresh: number;
  unclipRatio: number;
  /** Shorter side (in map pixels) below which a blob is noise. */
  minSize: number;
  maxCandidates: number;
}

export const DEFAULT_DET_OPTIONS: DetOptions = {
  minSideLen: 64,
  maxSideLen: 4000,
  thresh: 0.3,
  boxThresh: 0.6,
  unclipRatio: 1.5,
  minSize: 3,
  maxCandidates: 1000,
};

export interface DetInput {
  /** [1, 3, height, width] normalized BGR planes. */
  data: Float32Array;
  width: number;
  height: number;
  /** Time spent normalizing on the event loop (the resize runs in sharp's threads). */
  normalizeMs: number;
}

export interface DetBox {
  /** Float corners (tl, tr, br, bl) in original-image pixels, not clipped: used for cropping. */
  quad: Quad;
  /** Rounded corners clipped to the image: reported to the client. */
  reportQuad: Quad;
  score: number;
}

/**
 * Model input size: scale up so the shorter side is at least `minSide`, down so the longer is at most
 * `maxSide` (the cap wins), then round each side to a multiple of 32.
 */
export function detInputSize(width: number, height: number, minSide: number, maxSide: number): { width: number; height: number } {
  let ratio = Math.min(width, height) < minSide ? minSide / Math.min(width, height) : 1;
  if (Math.max(width, height) * ratio > maxSide) ratio = maxSide / Math.max(width, height);
  const round32 = (v: number) => Math.max(32, Math.round((v * ratio) / 32) * 32);
  return { width: round32(width), height: round32(height) };
}

const MEAN_BGR = [0.485, 0.456, 0.406] as const;
const STD_BGR = [0.229, 0.224, 0.225] as const;

/** Resize (in sharp's worker threads, off the event loop) and normalize into a CHW float tensor. */
export async function prepareDetInput(img: RgbImage, opts: Pick<DetOptions, 'minSideLen' | 'maxSideLen'>): Promise<DetInput> {
  const { width, height } = detInputSize(img.width, img.height, opts.minSideLen, opts.maxSideLen);
  const rgb =
    width === img.width && height === img.height
      ? img.data
      : await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
          .resize(width, height, { fit: 'fill', kernel: 'linear' })
          .raw()
          .toBuffer();
  const t0 = performance.now();
  const plane = width * height;
  const data = new Float32Array(3 * plane);
  // Fold scale/mean/std into one multiply-add per channel.
  const a0 = 1 / (255 * STD_BGR[0]), b0 = -MEAN_BGR[0] / STD_BGR[0];
  const a1 = 1 / (255 * STD_BGR[1]), b1 = -MEAN_BGR[1] / STD_BGR[1];
  const a2 = 1 / (255 * STD_BGR[2]), b2 = -MEAN_BGR[2] / STD_BGR[2];
  for (let i = 0, j = 0; i < plane; i++, j += 3) {
    data[i] = rgb[j + 2]! * a0 + b0; // B
    data[plane + i] = rgb[j + 1]! * a1 + b1; // G
    data[2 * plane + i] = rgb[j]! * a2 + b2; // R
  }
  return { data, width, height, normalizeMs: performance.now() - t0 };
}

interface Blob {
  /** Run endpoints (pixel centres): their convex hull is the blob's convex hull. */
  points: Point[];
  /** Mean probability over the blob's pixels. */
  score: number;
}

/** 8-connected components of `prob > thresh`, as horizontal runs joined by union-find. */
function blobs(prob: Float32Array, w: number, h: number, thresh: number): Blob[] {
  const rowOf: number[] = [];
  const startOf: number[] = [];
  const endOf: number[] = [];
  const parent: number[] = [];
  const find = (i: number): number => {
    while (parent[i] !== i) {
      parent[i] = parent[parent[i]!]!;
      i = parent[i]!;
    }
    return i;
  };
  let prevFirst = 0, prevLast = 0; // run index range of the previous row
  for (let y = 0; y < h; y++) {
    const rowFirst = rowOf.length;
    let k = prevFirst; // sweeps the previous row's runs once per row
    const base = y * w;
    let x = 0;
    while (x < w) {
      if (!(prob[base + x]! > thresh)) { x++; continue; }
      const xs = x;
      while (x < w && prob[base + x]! > thresh) x++;
      const xe = x - 1;
      const id = rowOf.length;
      rowOf.push(y); startOf.push(xs); endOf.push(xe); parent.push(id);
      // Runs of the previous row touching [xs-1, xe+1] are 8-connected to this one.
      while (k < prevLast && endOf[k]! < xs - 1) k++;
      for (let m = k; m < prevLast && startOf[m]! <= xe + 1; m++) {
        const ra = find(m), rb = find(id);
        if (ra !== rb) parent[Math.max(ra, rb)] = Math.min(ra, rb);
      }
    }
    prevFirst = rowFirst;
    prevLast = rowOf.length;
  }
  const groups = new Map<number, { points: Point[]; sum: number; n: number }>();
  for (let i = 0; i < rowOf.length; i++) {
    const r = find(i);
    let g = groups.get(r);
    if (!g) groups.set(r, (g = { points: [], sum: 0, n: 0 }));
    g.points.push([startOf[i]!, rowOf[i]!]);
    if (endOf[i] !== startOf[i]) g.points.push([endOf[i]!, rowOf[i]!]);
    const base = rowOf[i]! * w;
    for (let x = startOf[i]!; x <= endOf[i]!; x++) g.sum += prob[base + x]!;
    g.n += endOf[i]! - startOf[i]! + 1;
  }
  return [...groups.values()].map((g) => ({ points: g.points, score: g.sum / g.n }));
}

/** Probability map (map size `w × h`) → text boxes in the original image (`origW × origH`). */
export function dbPostprocess(
  prob: Float32Array,
  w: number,
  h: number,
  origW: number,
  origH: number,
  opts: DetOptions = DEFAULT_DET_OPTIONS,
): DetBox[] {
  const sx = origW / w, sy = origH / h;
  const out: DetBox[] = [];
  const candidates = blobs(prob, w, h, opts.thresh).slice(0, opts.maxCandidates);
  for (const { points, score } of candidates) {
    const rect = minAreaRect(convexHull(points));
    if (Math.min(rect.w, rect.h) < opts.minSize) continue;
    if (score < opts.boxThresh) continue;
    const grown = unclipRect(rect, opts.unclipRatio);
    if (Math.min(grown.w, grown.h) < opts.minSize + 2) continue;
    const quad = orderQuad(rectCorners(grown).map(([x, y]) => [x * sx, y * sy] as Point));
    const clip = (v: number, max: number) => Math.min(max, Math.max(0, Math.round(v)));
    const reportQuad = quad.map(([x, y]) => [clip(x, origW), clip(y, origH)] as Point) as Quad;
    // PaddleOCR's filter_tag_det_res: drop slivers.
    if (Math.trunc(dist(reportQuad[0], reportQuad[1])) <= 3 || Math.trunc(dist(reportQuad[0], reportQuad[3])) <= 3) continue;
    out.push({ quad, reportQuad, score });
  }
  return out;
}
