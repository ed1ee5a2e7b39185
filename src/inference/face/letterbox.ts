/**
 * An image → the square NHWC inputs BlazeFace expects, keeping the aspect ratio (the image is scaled to fit
 * and centred on black), and the mapping back to the image's pixels.
 *
 * Why one decode at the largest input's size: libvips then decodes a JPEG at a fraction of its size
 * (shrink-on-load) and resizes in the same pipeline, and the smaller model's pixels come from those few
 * pixels rather than from the full image. The one JS pass per model converts bytes to floats in [-1, 1].
 */
import sharp from 'sharp';
import { decodeImage, orientedSize, type DecodeLimits, type ImageInfo } from '../image.js';
import type { TileGrid } from './tiles.js';

export interface Letterbox {
  /** `[1, size, size, 3]`, RGB in [-1, 1]. */
  data: Float32Array;
  size: number;
  /** Where the image lies in the square, in input pixels. */
  left: number;
  top: number;
  width: number;
  height: number;
}

/** Where an image of `width` x `height` lands in a `size` x `size` square (scaled to fit, centred). */
export function squareFit(width: number, height: number, size: number): { left: number; top: number; width: number; height: number } {
  const scale = size / Math.max(width, height);
  const w = Math.min(size, Math.max(1, Math.round(width * scale)));
  const h = Math.min(size, Math.max(1, Math.round(height * scale)));
  return { left: Math.floor((size - w) / 2), top: Math.floor((size - h) / 2), width: w, height: h };
}

/**
 * The image letterboxed into each of `sizes` (model input sides), in the order given, each as soon as it is
 * ready: the largest first (its model, the slower, can start while the others are resized). `inspected` is
 * the image's header (inspectImage), read before queueing. One decode failure rejects them all.
 */
export async function letterboxes(image: Buffer, inspected: ImageInfo, limits: Partial<DecodeLimits>, sizes: readonly number[]): Promise<Array<Promise<Letterbox>>> {
  const upright = orientedSize(inspected);
  const largest = Math.max(...sizes);
  const big = squareFit(upright.width, upright.height, largest);
  const decoded = await decodeImage(image, limits, inspected, { width: big.width, height: big.height });
  return sizes.map(async (size) => {
    const fit = size === largest ? big : squareFit(upright.width, upright.height, size);
    const pixels =
      size === largest
        ? decoded.data
        : await sharp(decoded.data, { raw: { width: big.width, height: big.height, channels: 3 } }).resize(fit.width, fit.height, { fit: 'fill' }).raw().toBuffer();
    return toInput(pixels, fit, size);
  });
}

export interface TileInputs {
  /** Each tile's square, in the grid's order. */
  tiles: Array<Promise<Letterbox>>;
  /** A square around a candidate (decoded pixels; past the edges: black), scaled to `size` (the front model's check). */
  crop: (rect: { x: number; y: number; width: number; height: number }, size: number) => Promise<Letterbox>;
}

/**
 * The tiles of a large frame (tiles.ts): one decode at the tiles' scale (shrink-on-load as above), from which each
 * tile is cut (sharp's extract on the raw pixels, no further decode). The whole-image squares keep their own
 * decode (letterboxes): resized from this one instead, their pixels differed enough to move borderline textures
 * across 0.55 (two more false positives on bench/face-tiles.ts' empty frames).
 */
export async function tileInputs(image: Buffer, inspected: ImageInfo, limits: Partial<DecodeLimits>, grid: TileGrid, tileInput: number): Promise<TileInputs> {
  const decoded = await decodeImage(image, limits, inspected, { width: grid.width, height: grid.height });
  const raw = { raw: { width: grid.width, height: grid.height, channels: 3 as const } };
  const tiles = grid.tiles.map(async ({ rect }) => {
    const pixels = await sharp(decoded.data, raw).extract({ left: rect.x, top: rect.y, width: rect.width, height: rect.height }).raw().toBuffer();
    // A tile is at most the input's side; one narrower (a frame shorter than a tile) is padded, not stretched.
    const fit = { left: Math.floor((tileInput - rect.width) / 2), top: Math.floor((tileInput - rect.height) / 2), width: rect.width, height: rect.height };
    return toInput(pixels, fit, tileInput);
  });
  const crop = async (r: { x: number; y: number; width: number; height: number }, size: number): Promise<Letterbox> => {
    const x0 = Math.max(0, Math.floor(r.x)), y0 = Math.max(0, Math.floor(r.y));
    const x1 = Math.min(grid.width, Math.ceil(r.x + r.width)), y1 = Math.min(grid.height, Math.ceil(r.y + r.height));
    const scale = size / Math.max(r.width, r.height);
    const fit = {
      left: Math.max(0, Math.min(size - 1, Math.round((x0 - r.x) * scale))),
      top: Math.max(0, Math.min(size - 1, Math.round((y0 - r.y) * scale))),
      width: Math.max(1, Math.min(size, Math.round((x1 - x0) * scale))),
      height: Math.max(1, Math.min(size, Math.round((y1 - y0) * scale))),
    };
    fit.width = Math.min(fit.width, size - fit.left);
    fit.height = Math.min(fit.height, size - fit.top);
    const pixels = await sharp(decoded.data, raw).extract({ left: x0, top: y0, width: Math.max(1, x1 - x0), height: Math.max(1, y1 - y0) }).resize(fit.width, fit.height, { fit: 'fill' }).raw().toBuffer();
    return toInput(pixels, fit, size);
  };
  return { tiles, crop };
}

/** Packed RGB of exactly `fit`'s size → the float square, black (-1) around it. */
function toInput(pixels: Buffer, fit: { left: number; top: number; width: number; height: number }, size: number): Letterbox {
  if (pixels.length !== fit.width * fit.height * 3) throw new Error(`letterbox got ${pixels.length} bytes for ${fit.width}x${fit.height}x3`);
  const data = new Float32Array(size * size * 3).fill(-1);
  const row = fit.width * 3;
  for (let y = 0; y < fit.height; y++) {
    const from = y * row;
    const to = ((fit.top + y) * size + fit.left) * 3;
    for (let i = 0; i < row; i++) data[to + i] = pixels[from + i]! / 127.5 - 1;
  }
  return { data, size, ...fit };
}

/** A point of the input square (0..1) → pixels of the original image. */
export function toImage(lb: Letterbox, img: { width: number; height: number }, x: number, y: number): [number, number] {
  return [((x * lb.size - lb.left) * img.width) / lb.width, ((y * lb.size - lb.top) * img.height) / lb.height];
}
