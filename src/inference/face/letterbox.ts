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
