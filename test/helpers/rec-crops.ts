/**
 * Rendered text lines as the OCR recognizer's input (48 px high, RGB scaled to [-1, 1], CHW), one by one
 * or as one zero-padded batch as the kernel sends them: real inputs for the recognizer's outputs.
 */
import sharp from 'sharp';
import { renderText } from './render-text.js';

export interface RecCrop {
  data: Float32Array;
  width: number;
}

export async function lineCrop(text: string, size: number): Promise<RecCrop> {
  const png = await renderText([{ text, size }], { padding: 6 });
  const { data, info } = await sharp(png).resize({ height: 48 }).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const w = info.width;
  const out = new Float32Array(3 * 48 * w);
  for (let i = 0; i < 48 * w; i++) for (let c = 0; c < 3; c++) out[c * 48 * w + i] = data[i * 3 + c]! / 127.5 - 1;
  return { data: out, width: w };
}

/** The crops as one `[N, 3, 48, W]` batch, right-padded with zeros to the widest. */
export function cropBatch(crops: readonly RecCrop[]): { data: Float32Array; dims: number[] } {
  const W = Math.max(...crops.map((c) => c.width));
  const data = new Float32Array(crops.length * 3 * 48 * W);
  crops.forEach((c, n) => {
    for (let ch = 0; ch < 3; ch++) for (let y = 0; y < 48; y++) data.set(c.data.subarray((ch * 48 + y) * c.width, (ch * 48 + y + 1) * c.width), ((n * 3 + ch) * 48 + y) * W);
  });
  return { data, dims: [crops.length, 3, 48, W] };
}
