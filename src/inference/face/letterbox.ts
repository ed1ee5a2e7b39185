/**
 * A decoded image → the square NHWC input BlazeFace expects, keeping the aspect ratio (the image is scaled
 * to fit and centred on black), and the mapping back to the image's pixels. Resizing runs in sharp's
 * threads; the one JS pass converts bytes to floats in [-1, 1].
 */
import sharp from 'sharp';
import type { RgbImage } from '../image.js';

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

export async function letterbox(img: RgbImage, size: number): Promise<Letterbox> {
  const scale = size / Math.max(img.width, img.height);
  const width = Math.min(size, Math.max(1, Math.round(img.width * scale)));
  const height = Math.min(size, Math.max(1, Math.round(img.height * scale)));
  const left = Math.floor((size - width) / 2);
  const top = Math.floor((size - height) / 2);
  const pixels = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 }, limitInputPixels: false })
    .resize(width, height, { fit: 'fill' })
    .extend({ left, top, right: size - width - left, bottom: size - height - top, background: { r: 0, g: 0, b: 0 } })
    .raw()
    .toBuffer();
  if (pixels.length !== size * size * 3) throw new Error(`letterbox produced ${pixels.length} bytes for ${size}x${size}x3`);
  const data = new Float32Array(pixels.length);
  for (let i = 0; i < pixels.length; i++) data[i] = pixels[i]! / 127.5 - 1;
  return { data, size, left, top, width, height };
}

/** A point of the input square (0..1) → pixels of the original image. */
export function toImage(lb: Letterbox, img: { width: number; height: number }, x: number, y: number): [number, number] {
  return [((x * lb.size - lb.left) * img.width) / lb.width, ((y * lb.size - lb.top) * img.height) / lb.height];
}
