/**
 * Cutting text lines out of the original image straight into model tensors.
 *
 * PaddleOCR warps each box to an upright crop (getPerspectiveTransform + warpPerspective), then resizes it
 * to height 48. Detection boxes are rectangles (parallelograms after non-uniform scaling), for which
 * an affine map is exact, so both steps are done at once here: every output pixel is mapped back into the
 * source and sampled bilinearly, with a few sub-samples per pixel when shrinking so that large text is
 * area-averaged instead of aliased. Out-of-image samples repeat the border (BORDER_REPLICATE).
 * Cost is proportional to the output size (48 × width), not to the source image.
 */
import type { RgbImage } from '../image.js';
import { dist, type Point, type Quad } from './geometry.js';

/** Upright crop size (PaddleOCR's get_rotate_crop_image). */
export function cropSize(q: Quad): { width: number; height: number } {
  return {
    width: Math.max(dist(q[0], q[1]), dist(q[3], q[2])),
    height: Math.max(dist(q[0], q[3]), dist(q[1], q[2])),
  };
}

/**
 * Re-label the corners so that sampling reads the text upright: tall crops (height ≥ 1.5 × width) are
 * turned 90° counter-clockwise as PaddleOCR's np.rot90 does; the new top-left is the old top-right.
 */
export function uprightQuad(q: Quad): Quad {
  const { width, height } = cropSize(q);
  return height >= 1.5 * width ? [q[1], q[2], q[3], q[0]] : q;
}

/**
 * Grow a quad along its own axes: by `frac` × its height at both ends of the line, by `fracY` × its height
 * above and below. PP-OCR's recognizer is trained on crops with some background around the glyphs;
 * detection boxes hug the ink, and without this margin the recognizer drops word spaces and confuses
 * first/last letters ("Invoice2026total431.50" with no margin, "Invoice 2026 total 431.50" from 0.15 ×
 * height upward). kernel.ts also reads doubtful lines from a crop with no margin above and below (fracY 0).
 */
export function padQuad(q: Quad, frac: number, fracY = frac): Quad {
  const { width, height } = cropSize(q);
  if (width === 0 || height === 0 || (frac <= 0 && fracY <= 0)) return q;
  const mx = frac * height, my = fracY * height;
  const ex = [(q[1][0] - q[0][0]) / dist(q[0], q[1]) || 1, (q[1][1] - q[0][1]) / dist(q[0], q[1]) || 0];
  const ey = [(q[3][0] - q[0][0]) / dist(q[0], q[3]) || 0, (q[3][1] - q[0][1]) / dist(q[0], q[3]) || 1];
  const move = (p: Point, sx: number, sy: number): Point => [p[0] + mx * sx * ex[0]! + my * sy * ey[0]!, p[1] + mx * sx * ex[1]! + my * sy * ey[1]!];
  return [move(q[0], -1, -1), move(q[1], 1, -1), move(q[2], 1, 1), move(q[3], -1, 1)];
}

/** The same quad read upside down (what the direction classifier's "180" asks for). */
export const flipQuad = (q: Quad): Quad => [q[2], q[3], q[0], q[1]];

/** Destination: a [N, 3, H, W] float tensor; the crop is written at batch index `index`, left-aligned. */
export interface TensorTarget {
  data: Float32Array;
  height: number;
  width: number;
  index: number;
  /** "signed": (v / 255 - 0.5) / 0.5, PaddleOCR's; "unit": v / 255 (see the recognizer in kernel.ts). */
  range?: 'signed' | 'unit';
}

/**
 * Sample `quad` from `img` into `outW × target.height` pixels of `target`, planes in B, G, R order (cv2
 * images are BGR), normalized as `target.range` says.
 */
export function sampleQuad(img: RgbImage, quad: Quad, outW: number, target: TensorTarget): void {
  const outH = target.height;
  const { data: src, width: W, height: H } = img;
  const [p0, p1, , p3] = quad;
  // Source step per output pixel along the crop's x (p0→p1) and y (p0→p3) axes.
  const ax = (p1[0] - p0[0]) / outW, ay = (p1[1] - p0[1]) / outW;
  const bx = (p3[0] - p0[0]) / outH, by = (p3[1] - p0[1]) / outH;
  const kx = Math.min(4, Math.max(1, Math.ceil(Math.hypot(ax, ay) - 1e-6)));
  const ky = Math.min(4, Math.max(1, Math.ceil(Math.hypot(bx, by) - 1e-6)));
  const unit = target.range === 'unit';
  const scale = 1 / (kx * ky * (unit ? 255 : 127.5));
  const offset = unit ? 0 : 1;

  const plane = target.height * target.width;
  const base = target.index * 3 * plane;
  const dst = target.data;
  const maxX = W - 1, maxY = H - 1;
  for (let v = 0; v < outH; v++) {
    for (let u = 0; u < outW; u++) {
      let r = 0, g = 0, b = 0;
      for (let sy = 0; sy < ky; sy++) {
        const tv = v + (sy + 0.5) / ky;
        for (let sx = 0; sx < kx; sx++) {
          const tu = u + (sx + 0.5) / kx;
          // Continuous source position; pixel centres sit at +0.5.
          let x = p0[0] + tu * ax + tv * bx - 0.5;
          let y = p0[1] + tu * ay + tv * by - 0.5;
          x = x < 0 ? 0 : x > maxX ? maxX : x;
          y = y < 0 ? 0 : y > maxY ? maxY : y;
          const x0 = x | 0, y0 = y | 0;
          const x1 = x0 < maxX ? x0 + 1 : x0, y1 = y0 < maxY ? y0 + 1 : y0;
          const fx = x - x0, fy = y - y0;
          const w00 = (1 - fx) * (1 - fy), w01 = fx * (1 - fy), w10 = (1 - fx) * fy, w11 = fx * fy;
          const i00 = (y0 * W + x0) * 3, i01 = (y0 * W + x1) * 3, i10 = (y1 * W + x0) * 3, i11 = (y1 * W + x1) * 3;
          r += src[i00]! * w00 + src[i01]! * w01 + src[i10]! * w10 + src[i11]! * w11;
          g += src[i00 + 1]! * w00 + src[i01 + 1]! * w01 + src[i10 + 1]! * w10 + src[i11 + 1]! * w11;
          b += src[i00 + 2]! * w00 + src[i01 + 2]! * w01 + src[i10 + 2]! * w10 + src[i11 + 2]! * w11;
        }
      }
      const o = base + v * target.width + u;
      dst[o] = b * scale - offset;
      dst[o + plane] = g * scale - offset;
      dst[o + 2 * plane] = r * scale - offset;
    }
  }
}
