/**
 * Letterboxing, as Ultralytics trains and exports YOLO models: the image scaled to fit the input keeping
 * its aspect ratio, centred, the rest filled with grey 114. Boxes found on the input map back through the
 * same scale and offset.
 */
import { decodeImage, orientedSize, type DecodeLimits, type ImageInfo } from '../image.js';

export const LETTERBOX_GREY = 114;

export interface Letterbox {
  /** Input pixels per original pixel. */
  scale: number;
  /** Padding left and top, in input pixels. */
  left: number;
  top: number;
  /** The original (EXIF-rotated) image's size: boxes are clamped to it. */
  width: number;
  height: number;
}

/** Where an image of `width` x `height` lands in an input of `inW` x `inH`. */
export function letterboxGeometry(width: number, height: number, inW: number, inH: number): Letterbox & { innerW: number; innerH: number } {
  const scale = Math.min(inW / width, inH / height);
  const innerW = Math.max(1, Math.min(inW, Math.round(width * scale)));
  const innerH = Math.max(1, Math.min(inH, Math.round(height * scale)));
  return { scale, left: Math.floor((inW - innerW) / 2), top: Math.floor((inH - innerH) / 2), width, height, innerW, innerH };
}

/**
 * Packed RGB of the letterboxed input, `inW * inH * 3` bytes, and its geometry. The image is decoded straight
 * to its size in the input (image.ts decodeImage `size`: shrink-on-load, no full-size pixels); `inspected` is
 * its header, read before queueing. Measured on 1280x720 JPEGs to 640x640, alternating in one process:
 * 18.5 ms decoding first and resizing the raw pixels, 15.0 ms this way (a noisy frame); 16.4 and 13.6 ms (a photo).
 */
export async function letterbox(image: Buffer, inspected: ImageInfo, limits: Partial<DecodeLimits>, inW: number, inH: number): Promise<{ pixels: Buffer; box: Letterbox }> {
  const upright = orientedSize(inspected);
  const g = letterboxGeometry(upright.width, upright.height, inW, inH);
  const resized = (await decodeImage(image, limits, inspected, { width: g.innerW, height: g.innerH })).data;
  const pixels = Buffer.alloc(inW * inH * 3, LETTERBOX_GREY);
  const row = g.innerW * 3;
  for (let y = 0; y < g.innerH; y++) resized.copy(pixels, ((g.top + y) * inW + g.left) * 3, y * row, (y + 1) * row);
  const { innerW: _w, innerH: _h, ...box } = g;
  return { pixels, box };
}

/** A box on the input (corners, input pixels) → the original image's pixels, clamped to it, as integers. */
export function unletterbox(box: Letterbox, x1: number, y1: number, x2: number, y2: number): { x_min: number; y_min: number; x_max: number; y_max: number } {
  const clampX = (v: number) => Math.min(box.width, Math.max(0, Math.round((v - box.left) / box.scale)));
  const clampY = (v: number) => Math.min(box.height, Math.max(0, Math.round((v - box.top) / box.scale)));
  return { x_min: clampX(x1), y_min: clampY(y1), x_max: clampX(x2), y_max: clampY(y2) };
}
