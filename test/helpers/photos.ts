/**
 * Real photographs for the face tests: scikit-image's sample data, unpacked from Debian's python3-skimage
 * by `bash .ci/photos` (CI runs it; so must a developer, once) into .cache/photos, or read from a system
 * install of python3-skimage. astronaut.png (Eileen Collins, NASA: public domain) and camera.png (CC0,
 * Lav Varshney) show faces; chelsea.png (a cat, CC0, Stéfan van der Walt) and coffee.png (CC0, Rachel
 * Michetti) show none. Missing photos fail the tests loudly: a face test without faces would prove nothing.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

export type Photo = 'astronaut' | 'camera' | 'chelsea' | 'coffee';

const PLACES = [
  process.env.KG_TEST_PHOTOS,
  resolve(import.meta.dirname, '../../.cache/photos'),
  '/usr/lib/python3/dist-packages/skimage/data',
].filter((p): p is string => typeof p === 'string' && p !== '');

export function photo(name: Photo): Buffer {
  for (const dir of PLACES) {
    const file = join(dir, `${name}.png`);
    if (existsSync(file)) return readFileSync(file);
  }
  throw new Error(`test photo ${name}.png not found in ${PLACES.join(', ')}: run \`bash .ci/photos\` (unpacks Debian's python3-skimage sample data)`);
}

/** Hand-checked face boxes (pixels of the 512x512 photos), eyes as [subject's right, subject's left]. */
export const FACES = {
  astronaut: { box: { x_min: 174, y_min: 78, x_max: 274, y_max: 172 }, eyes: [[202, 100], [247, 102]] as const },
  // In profile: from the ear to the nose, hairline to chin.
  camera: { box: { x_min: 180, y_min: 118, x_max: 256, y_max: 198 } },
} as const;

export interface Box {
  x_min: number;
  y_min: number;
  x_max: number;
  y_max: number;
}

export function iou(a: Box, b: Box): number {
  const w = Math.min(a.x_max, b.x_max) - Math.max(a.x_min, b.x_min);
  const h = Math.min(a.y_max, b.y_max) - Math.max(a.y_min, b.y_min);
  if (w <= 0 || h <= 0) return 0;
  const inter = w * h;
  return inter / ((a.x_max - a.x_min) * (a.y_max - a.y_min) + (b.x_max - b.x_min) * (b.y_max - b.y_min) - inter);
}
