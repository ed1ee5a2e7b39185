/**
 * Honest OCR fixtures: text rendered at test time by sharp (librsvg + fontconfig) from SVG, so the
 * expected strings are exactly what is drawn and nothing is baked into a binary file.
 *
 * Each line is rendered on its own transparent canvas, trimmed to its ink, optionally turned 180°, and
 * composited onto a white or a seeded "photo-like" noisy background. The layout (where each line's ink
 * is) is returned alongside the PNG so tests can check the boxes the OCR reports.
 */
import sharp from 'sharp';

/** Fonts this machine has (fc-list); tests must not depend on anything else. */
export const FONTS = ['DejaVu Sans', 'DejaVu Serif', 'DejaVu Sans Mono'] as const;
export type FontFamily = (typeof FONTS)[number];

export interface LineSpec {
  text: string;
  font?: FontFamily;
  /** Font size in px. */
  size?: number;
  bold?: boolean;
  /** Draw this line upside down. */
  rotate180?: boolean;
}

export interface RenderOptions {
  font?: FontFamily;
  size?: number;
  /** Pixels around the text block. */
  padding?: number;
  /** Extra vertical space between lines, as a fraction of the line's font size. */
  lineGap?: number;
  /** Minimum canvas size (the canvas grows to fit the text). */
  width?: number;
  height?: number;
  /** Text colour, CSS. */
  color?: string;
  /** "plain": white; "noisy": seeded gradient + blotches + grain. */
  background?: 'plain' | 'noisy';
  seed?: number;
}

export interface PlacedLine {
  text: string;
  rotated: boolean;
  /** Ink bounding box in the output image. */
  left: number;
  top: number;
  width: number;
  height: number;
}

export interface RenderedText {
  png: Buffer;
  width: number;
  height: number;
  lines: PlacedLine[];
}

const escapeXml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** mulberry32: a small seeded generator, so fixtures are the same on every run. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One line of text, trimmed to its ink, as RGBA PNG. */
async function renderLine(line: LineSpec, defaults: Required<Pick<RenderOptions, 'font' | 'size' | 'color'>>) {
  const size = line.size ?? defaults.size;
  const font = line.font ?? defaults.font;
  // Generous canvas (no text measurement in librsvg's API); trimmed afterwards.
  const w = Math.ceil(line.text.length * size * 0.75 + size * 2);
  const h = Math.ceil(size * 2);
  const svg =
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}">` +
    `<text x="${size / 2}" y="${size * 1.4}" font-family="${escapeXml(font)}" font-size="${size}"` +
    `${line.bold ? ' font-weight="bold"' : ''} fill="${escapeXml(defaults.color)}">${escapeXml(line.text)}</text></svg>`;
  let img = sharp(Buffer.from(svg)).png().trim({ background: { r: 0, g: 0, b: 0, alpha: 0 }, threshold: 1 });
  const { data, info } = await img.toBuffer({ resolveWithObject: true });
  img = sharp(data);
  if (line.rotate180) img = img.rotate(180);
  return { png: await img.png().toBuffer(), width: info.width, height: info.height, size };
}

/** How a photo-like background looks: per channel [base, random span] of its two corner colours, blotches, grain. */
export interface PhotoLook {
  from: ReadonlyArray<readonly [number, number]>;
  to: ReadonlyArray<readonly [number, number]>;
  blotches: number;
  /** Largest brightening or darkening of a blotch's centre. */
  blotchDepth: number;
  /** Per-pixel noise, peak to peak. */
  grain: number;
}

/** The tests' look: a diagonal colour gradient, six soft blotches, strong grain. */
export const TEST_PHOTO_LOOK: PhotoLook = {
  from: [[200, 55], [190, 60], [170, 60]],
  to: [[150, 60], [160, 60], [150, 70]],
  blotches: 6,
  blotchDepth: 60,
  grain: 40,
};

/** Seeded photo-like background as raw RGB: a diagonal colour gradient, soft blotches and per-pixel grain. */
export function photoBackground(width: number, height: number, seed: number, look: PhotoLook = TEST_PHOTO_LOOK): Buffer {
  const rand = rng(seed);
  const c0 = look.from.map(([base, span]) => base + rand() * span);
  const c1 = look.to.map(([base, span]) => base + rand() * span);
  const blobs = Array.from({ length: look.blotches }, () => ({
    x: rand() * width,
    y: rand() * height,
    r: (0.1 + rand() * 0.3) * Math.max(width, height),
    d: (rand() - 0.5) * look.blotchDepth,
  }));
  const data = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const t = (x / width + y / height) / 2;
      let shade = 0;
      for (const b of blobs) {
        const d2 = ((x - b.x) ** 2 + (y - b.y) ** 2) / (b.r * b.r);
        if (d2 < 4) shade += b.d * Math.exp(-d2);
      }
      const grain = (rand() - 0.5) * look.grain;
      const i = (y * width + x) * 3;
      for (let c = 0; c < 3; c++) {
        const v = c0[c]! * (1 - t) + c1[c]! * t + shade + grain;
        data[i + c] = v < 0 ? 0 : v > 255 ? 255 : v;
      }
    }
  }
  return data;
}

async function noisyBackground(width: number, height: number, seed: number): Promise<Buffer> {
  return sharp(photoBackground(width, height, seed), { raw: { width, height, channels: 3 } }).png().toBuffer();
}

/** Render lines top to bottom, left-aligned; returns the PNG and where each line's ink is. */
export async function renderTextWithLayout(lines: readonly (LineSpec | string)[], opts: RenderOptions = {}): Promise<RenderedText> {
  const defaults = { font: opts.font ?? 'DejaVu Sans', size: opts.size ?? 32, color: opts.color ?? '#141414' } as const;
  const padding = opts.padding ?? 24;
  const gap = opts.lineGap ?? 0.6;
  const specs = lines.map((l) => (typeof l === 'string' ? { text: l } : l));
  const rendered = await Promise.all(specs.map((l) => renderLine(l, defaults)));

  let y = padding;
  const placed: PlacedLine[] = [];
  rendered.forEach((r, i) => {
    placed.push({ text: specs[i]!.text, rotated: !!specs[i]!.rotate180, left: padding, top: y, width: r.width, height: r.height });
    y += r.height + Math.round(r.size * gap);
  });
  const contentW = Math.max(...rendered.map((r) => r.width)) + 2 * padding;
  const contentH = y - Math.round(rendered[rendered.length - 1]!.size * gap) + padding;
  const width = Math.max(opts.width ?? 0, contentW);
  const height = Math.max(opts.height ?? 0, contentH);
  // Centre the block vertically on larger canvases.
  const dy = Math.floor((height - contentH) / 2);
  for (const p of placed) p.top += dy;

  const base =
    opts.background === 'noisy'
      ? sharp(await noisyBackground(width, height, opts.seed ?? 1))
      : sharp({ create: { width, height, channels: 3, background: '#ffffff' } });
  const png = await base
    .composite(rendered.map((r, i) => ({ input: r.png, left: placed[i]!.left, top: placed[i]!.top })))
    .png()
    .toBuffer();
  return { png, width, height, lines: placed };
}

/** Render lines of text to a PNG. */
export async function renderText(lines: readonly (LineSpec | string)[], opts: RenderOptions = {}): Promise<Buffer> {
  return (await renderTextWithLayout(lines, opts)).png;
}
