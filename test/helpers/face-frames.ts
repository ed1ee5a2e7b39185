/**
 * Camera-like test frames for the face kernel's tiling (test/face-tiles.test.ts, bench/face-tiles.ts), built
 * from real photographs only (.ci/photos): real faces (the astronaut's and the cameraman's in their own
 * surroundings, LFW's 25x25 faces upscaled to 40-80 px) placed into real no-face photos scaled to 1920x1080 or
 * 1280x720, saved as JPEG quality 75-85, some blurred or noisy as a camera degrades them; and the same
 * backgrounds with no face, or with LFW's non-face crops placed the same way (false positives).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import sharp from 'sharp';
import { FACES, type Box } from './photos.js';
import { rng } from './render-text.js';

const PLACES = [process.env.KG_TEST_PHOTOS, resolve(import.meta.dirname, '../../.cache/photos'), '/usr/lib/python3/dist-packages/skimage/data'].filter(
  (p): p is string => typeof p === 'string' && p !== '',
);

/** A file of .ci/photos' list, loudly missing (a face test without faces proves nothing). */
export function photoFile(name: string): Buffer {
  for (const dir of PLACES) if (existsSync(join(dir, name))) return readFileSync(join(dir, name));
  throw new Error(`test photo ${name} not found in ${PLACES.join(', ')}: run \`bash .ci/photos\``);
}

/** No-face photos used as backgrounds. */
export const BACKGROUNDS = ['rocket.jpg', 'motorcycle_left.png', 'horse.png', 'coffee.png', 'chelsea.png', 'brick.png', 'grass.png', 'gravel.png', 'hubble_deep_field.jpg', 'coins.png'] as const;

/** skimage's lfw_subset.npy: `count` grey `side`x`side` crops, values in [0, 1] (float64, C order). */
export function parseNpyCrops(buf: Buffer): { count: number; side: number; crops: Float64Array[] } {
  if (buf.length < 10 || buf.subarray(0, 6).toString('latin1') !== '\x93NUMPY') throw new Error('not a .npy file');
  const major = buf[6]!;
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = (major === 1 ? 10 : 12) + headerLen;
  const header = buf.subarray(major === 1 ? 10 : 12, start).toString('latin1');
  const shape = /'shape':\s*\((\d+),\s*(\d+),\s*(\d+)\)/.exec(header);
  if (!header.includes("'descr': '<f8'") || !header.includes("'fortran_order': False") || !shape) throw new Error(`unexpected .npy header ${header}`);
  const [count, h, w] = [Number(shape[1]), Number(shape[2]), Number(shape[3])];
  if (h !== w || buf.length < start + count * h * w * 8) throw new Error('unexpected .npy shape or size');
  const crops: Float64Array[] = [];
  for (let i = 0; i < count; i++) {
    const c = new Float64Array(h * w);
    for (let k = 0; k < h * w; k++) c[k] = buf.readDoubleLE(start + (i * h * w + k) * 8);
    crops.push(c);
  }
  return { count, side: w, crops };
}

let lfwCache: ReturnType<typeof parseNpyCrops> | undefined;
/** LFW crop `i` (0-99 faces, 100-199 non-faces) as an RGB PNG of `px` x `px`. */
export async function lfwCrop(i: number, px: number): Promise<Buffer> {
  lfwCache ??= parseNpyCrops(photoFile('lfw_subset.npy'));
  const { side, crops } = lfwCache;
  const grey = Buffer.from(Array.from(crops[i]!, (v) => Math.max(0, Math.min(255, Math.round(v * 255)))));
  return sharp(grey, { raw: { width: side, height: side, channels: 1 } }).resize(px, px, { kernel: 'cubic' }).toColourspace('srgb').png().toBuffer();
}

/** A face photo cut with its surroundings (1x the face's size on each side), scaled so the face is `faceWidth` px wide. */
export async function faceInSurroundings(name: 'astronaut' | 'camera', faceWidth: number): Promise<{ png: Buffer; width: number; height: number; face: Box }> {
  const b = FACES[name].box;
  const fw = b.x_max - b.x_min, fh = b.y_max - b.y_min;
  const x0 = Math.max(0, b.x_min - fw), y0 = Math.max(0, b.y_min - fh);
  const x1 = Math.min(512, b.x_max + fw), y1 = Math.min(512, b.y_max + fh);
  const s = faceWidth / fw;
  const width = Math.round((x1 - x0) * s), height = Math.round((y1 - y0) * s);
  const png = await sharp(photoFile(`${name}.png`)).extract({ left: x0, top: y0, width: x1 - x0, height: y1 - y0 }).resize(width, height, { fit: 'fill' }).removeAlpha().png().toBuffer();
  return { png, width, height, face: { x_min: (b.x_min - x0) * s, y_min: (b.y_min - y0) * s, x_max: (b.x_max - x0) * s, y_max: (b.y_max - y0) * s } };
}

export interface Frame {
  name: string;
  jpeg: Buffer;
  width: number;
  height: number;
  /** Where the faces are (empty: a frame that must give no face). */
  faces: Box[];
}

export type Degrade = 'none' | 'blur' | 'noise';

/** A background photo scaled (cover) to `width` x `height`, with patches placed where they do not overlap, degraded and saved as JPEG. */
export async function composeFrame(
  name: string,
  background: string,
  size: { width: number; height: number },
  patches: Array<{ png: Buffer; width: number; height: number; face?: Box }>,
  opts: { seed: number; degrade: Degrade; quality: number },
): Promise<Frame> {
  const rand = rng(opts.seed);
  const placed: Box[] = [];
  const faces: Box[] = [];
  const layers: sharp.OverlayOptions[] = [];
  for (const p of patches) {
    for (let attempt = 0; attempt < 50; attempt++) {
      const left = Math.floor(rand() * (size.width - p.width)), top = Math.floor(rand() * (size.height - p.height));
      const box = { x_min: left, y_min: top, x_max: left + p.width, y_max: top + p.height };
      if (placed.some((q) => box.x_min < q.x_max + 20 && q.x_min < box.x_max + 20 && box.y_min < q.y_max + 20 && q.y_min < box.y_max + 20)) continue;
      placed.push(box);
      layers.push({ input: p.png, left, top });
      if (p.face) faces.push({ x_min: left + p.face.x_min, y_min: top + p.face.y_min, x_max: left + p.face.x_max, y_max: top + p.face.y_max });
      break;
    }
  }
  let img = sharp(await sharp(photoFile(background)).resize(size.width, size.height, { fit: 'cover' }).removeAlpha().toColourspace('srgb').png().toBuffer()).composite(layers);
  let raw = await img.raw().toBuffer({ resolveWithObject: true });
  let pixels = raw.data;
  if (opts.degrade === 'noise') {
    // Sensor noise: uniform ±12 per channel, as a cheap camera at dusk.
    pixels = Buffer.from(pixels);
    for (let i = 0; i < pixels.length; i++) pixels[i] = Math.max(0, Math.min(255, pixels[i]! + Math.round((rand() - 0.5) * 24)));
  }
  img = sharp(pixels, { raw: { width: raw.info.width, height: raw.info.height, channels: raw.info.channels } });
  if (opts.degrade === 'blur') img = img.blur(1.2);
  const jpeg = await img.jpeg({ quality: opts.quality }).toBuffer();
  return { name, jpeg, width: size.width, height: size.height, faces };
}

/** The evaluation set: frames with faces, frames with none, frames with LFW's non-faces. Deterministic. */
export async function evaluationFrames(): Promise<{ withFaces: Frame[]; noFace: Frame[]; nonFaces: Frame[] }> {
  const sizes = [{ width: 1920, height: 1080 }, { width: 1280, height: 720 }];
  const degrades: Degrade[] = ['none', 'blur', 'noise'];
  const withFaces: Frame[] = [], noFace: Frame[] = [], nonFaces: Frame[] = [];
  let seed = 1;
  for (const bg of BACKGROUNDS) {
    for (const size of sizes) {
      const rand = rng(seed * 7919);
      const degrade = degrades[seed % 3]!;
      const quality = 75 + (seed % 11);
      const patches = [
        await faceInSurroundings('astronaut', Math.round(30 + rand() * 70)),
        await faceInSurroundings('camera', Math.round(30 + rand() * 70)),
      ];
      for (let k = 0; k < 3; k++) {
        const px = Math.round(40 + rand() * 40);
        patches.push({ png: await lfwCrop((seed * 3 + k * 37) % 100, px), width: px, height: px, face: { x_min: 0, y_min: 0, x_max: px, y_max: px } });
      }
      const tag = `${bg}@${size.width}x${size.height}/${degrade}/q${quality}`;
      withFaces.push(await composeFrame(`faces ${tag}`, bg, size, patches, { seed, degrade, quality }));
      noFace.push(await composeFrame(`empty ${tag}`, bg, size, [], { seed, degrade, quality }));
      const non: Array<{ png: Buffer; width: number; height: number }> = [];
      for (let k = 0; k < 5; k++) {
        const px = Math.round(40 + rand() * 40);
        non.push({ png: await lfwCrop(100 + ((seed * 5 + k * 13) % 100), px), width: px, height: px });
      }
      nonFaces.push(await composeFrame(`non-faces ${tag}`, bg, size, non, { seed: seed + 1000, degrade, quality }));
      seed++;
    }
  }
  return { withFaces, noFace, nonFaces };
}
