/**
 * Packed 8-bit RGB → the `[1, 3, H, W]` float input custom models take (DESIGN.md "Kernels": `input.color`,
 * `normalize`), shared by the classify and detect kernels.
 */
import type { ModelConfig } from './store/model-config.js';

/**
 * `(byte / 255 - mean) / std` per channel, channels planar, in the model's colour order. A byte has 256
 * values, so each channel's floats are looked up rather than divided twice per pixel (640x640: 1.2 M of them).
 */
export function planarInput(pixels: Uint8Array, width: number, height: number, config: Pick<ModelConfig, 'input' | 'normalize'>): Float32Array {
  const plane = width * height;
  if (pixels.length !== plane * 3) throw new Error(`planarInput got ${pixels.length} bytes for ${width}x${height}x3`);
  const data = new Float32Array(3 * plane);
  const { mean, std } = config.normalize;
  const table = new Float32Array(256);
  for (let c = 0; c < 3; c++) {
    const source = config.input.color === 'BGR' ? 2 - c : c;
    for (let v = 0; v < 256; v++) table[v] = (v / 255 - mean[c]!) / std[c]!;
    const base = c * plane;
    for (let i = 0; i < plane; i++) data[base + i] = table[pixels[i * 3 + source]!]!;
  }
  return data;
}
