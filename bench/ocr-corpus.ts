/**
 * The OCR accuracy corpus, rendered on demand: every page is drawn by sharp (librsvg + fontconfig) from SVG,
 * then degraded with seeded, deterministic pixel operations (perspective and page-curl warps, uneven
 * lighting, blur, grain, low-quality JPEG, low resolution). The expected text is exactly what was drawn, so
 * no fixture file is trusted. Shared by bench/ocr-accuracy.ts (whole corpus) and test/ocr-accuracy.test.ts
 * (the `inTest` subset), and the CER / line-recall scoring lives here too so both score alike.
 */
import sharp from 'sharp';
import { photoBackground, rng, type PhotoLook } from '../test/helpers/render-text.js';

export const OCR_CLASSES = ['small', 'dense', 'wide', 'mixed', 'columns', 'photo', 'upside-down'] as const;
export type OcrClass = (typeof OCR_CLASSES)[number];

type Font = 'DejaVu Sans' | 'DejaVu Serif' | 'DejaVu Sans Mono' | 'Liberation Sans' | 'Liberation Serif';

export interface Degrade {
  /** Perspective: the top edge shrinks by this fraction of the width (a photo taken from below). */
  perspective?: number;
  /** Page curl: vertical displacement amplitude in px of a half sine across the width. */
  curve?: number;
  /** Uneven lighting: brightness falls by up to this fraction towards one corner. */
  lighting?: number;
  blur?: number;
  /** Gaussian-ish grain, standard deviation in grey levels. */
  noise?: number;
  jpeg?: number;
  /** Downscale factor applied last (0.5 halves the resolution). */
  scale?: number;
}

export interface CorpusSpec {
  id: string;
  cls: OcrClass;
  /** True when the page was deliberately degraded (the 2 % goal applies to the others). */
  degraded: boolean;
  /** Part of the regression test's fixed subset. */
  inTest?: boolean;
  build: () => Promise<CorpusImage>;
}

export interface CorpusImage {
  image: Buffer;
  /** Expected lines (reading order is not scored; see score()). */
  lines: string[];
  width: number;
  height: number;
}

const WORDS = (
  'the of and to in is was for on that with as by at from this have are not but be they which one all were we ' +
  'when there can an your more if out so what about would other into time has two like could them some than ' +
  'first been people its who now only over also after did many before must through back years where much ' +
  'should well very good new just because any these give most order invoice total amount customer account ' +
  'delivery address street station river mountain window garden kitchen letter report market quarter energy ' +
  'system network server request answer signal between during without against number morning evening summer ' +
  'winter history science library village harbour engine bridge museum teacher student picture journey'
).split(' ');
const CAPS = 'Alice Berlin Chapter Delta Europe Friday Granite Harbor Index Juniper Kernel London Monday Note Oslo Paris'.split(' ');

/** A line of roughly `chars` characters: words, some capitalized, some numbers and punctuation. */
export function sentence(rand: () => number, chars: number): string {
  const out: string[] = [];
  let len = 0;
  while (len < chars) {
    const r = rand();
    let w: string;
    if (r < 0.08) w = String(Math.floor(rand() * 100000) / (rand() < 0.3 ? 100 : 1));
    else if (r < 0.16) w = CAPS[Math.floor(rand() * CAPS.length)]!;
    else w = WORDS[Math.floor(rand() * WORDS.length)]!;
    if (out.length === 0) w = w[0]!.toUpperCase() + w.slice(1);
    const p = rand();
    if (p < 0.06) w += ',';
    else if (p < 0.09) w += '.';
    else if (p < 0.1) w += ':';
    else if (p < 0.11) w = `(${w})`;
    if (len + w.length + 1 > chars + 4 && out.length > 1) break;
    out.push(w);
    len += w.length + 1;
  }
  return out.join(' ');
}

interface TextRun {
  text: string;
  x: number;
  /** Baseline. */
  y: number;
  size: number;
  font: Font;
  bold?: boolean;
  color?: string;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** Approximate advance of one character in em, for layout only (so lines stay inside their column). */
const EM: Record<Font, number> = {
  'DejaVu Sans': 0.6,
  'DejaVu Serif': 0.62,
  'DejaVu Sans Mono': 0.61,
  'Liberation Sans': 0.52,
  'Liberation Serif': 0.48,
};
export const charsFor = (width: number, size: number, font: Font) => Math.floor(width / (size * EM[font]));

async function rasterize(width: number, height: number, runs: TextRun[], background: Buffer | null): Promise<Buffer> {
  const texts = runs
    .map(
      (r) =>
        `<text x="${r.x}" y="${r.y}" font-family="${esc(r.font)}" font-size="${r.size}"${r.bold ? ' font-weight="bold"' : ''} fill="${r.color ?? '#151515'}" xml:space="preserve">${esc(r.text)}</text>`,
    )
    .join('');
  const svg = Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${texts}</svg>`);
  const base = background
    ? sharp(background, { raw: { width, height, channels: 3 } })
    : sharp({ create: { width, height, channels: 3, background: '#ffffff' } });
  return base.composite([{ input: svg }]).removeAlpha().raw().toBuffer();
}

/** The corpus' photo look (paper-like colours, seven blotches, finer grain than the tests'). */
const CORPUS_PHOTO_LOOK: PhotoLook = {
  from: [[205, 45], [195, 50], [175, 50]],
  to: [[160, 50], [165, 50], [150, 60]],
  blotches: 7,
  blotchDepth: 70,
  grain: 30,
};

/** Inverse-mapped warp with bilinear sampling; `map(x, y)` gives the source position of output (x, y). */
function warp(src: Buffer, w: number, h: number, map: (x: number, y: number) => [number, number]): Buffer {
  const out = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const [sx, sy] = map(x, y);
      const o = (y * w + x) * 3;
      if (sx < 0 || sy < 0 || sx > w - 1 || sy > h - 1) {
        out[o] = 235; out[o + 1] = 232; out[o + 2] = 225; // paper beyond the page
        continue;
      }
      const x0 = Math.floor(sx), y0 = Math.floor(sy);
      const x1 = Math.min(w - 1, x0 + 1), y1 = Math.min(h - 1, y0 + 1);
      const fx = sx - x0, fy = sy - y0;
      for (let c = 0; c < 3; c++) {
        const v =
          src[(y0 * w + x0) * 3 + c]! * (1 - fx) * (1 - fy) +
          src[(y0 * w + x1) * 3 + c]! * fx * (1 - fy) +
          src[(y1 * w + x0) * 3 + c]! * (1 - fx) * fy +
          src[(y1 * w + x1) * 3 + c]! * fx * fy;
        out[o + c] = v;
      }
    }
  }
  return out;
}

async function degrade(raw: Buffer, width: number, height: number, d: Degrade, seed: number): Promise<{ image: Buffer; width: number; height: number }> {
  let px = raw;
  if (d.perspective) {
    const k = d.perspective;
    // Row y is shrunk horizontally around the centre by k at the top, 0 at the bottom.
    px = warp(px, width, height, (x, y) => {
      const s = 1 - k * (1 - y / (height - 1));
      return [(x - width / 2) / s + width / 2, y];
    });
  }
  if (d.curve) {
    const a = d.curve;
    px = warp(px, width, height, (x, y) => [x, y - a * Math.sin((Math.PI * x) / (width - 1))]);
  }
  if (d.lighting || d.noise) {
    const rand = rng(seed * 7919 + 1);
    const out = Buffer.alloc(px.length);
    const k = d.lighting ?? 0;
    const n = d.noise ?? 0;
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const gain = 1 - k * ((x / width) * 0.6 + (y / height) * 0.4);
        // Sum of uniforms: cheap, deterministic, roughly Gaussian.
        const g = n ? (rand() + rand() + rand() - 1.5) * 2 * n : 0;
        const i = (y * width + x) * 3;
        for (let c = 0; c < 3; c++) {
          const v = px[i + c]! * gain + g;
          out[i + c] = v < 0 ? 0 : v > 255 ? 255 : v;
        }
      }
    }
    px = out;
  }
  let img = sharp(px, { raw: { width, height, channels: 3 } });
  if (d.blur) img = sharp(await img.blur(d.blur).raw().toBuffer(), { raw: { width, height, channels: 3 } });
  let w = width, h = height;
  if (d.scale && d.scale !== 1) {
    w = Math.round(width * d.scale);
    h = Math.round(height * d.scale);
    img = sharp(await img.resize(w, h, { fit: 'fill' }).raw().toBuffer(), { raw: { width: w, height: h, channels: 3 } });
  }
  const image = d.jpeg ? await img.jpeg({ quality: d.jpeg }).toBuffer() : await img.png().toBuffer();
  return { image, width: w, height: h };
}

interface PageOpts {
  width: number;
  seed: number;
  /** Columns of text; each is a list of lines. */
  columns?: number;
  lines: number;
  size: number | ((i: number) => number);
  font: Font | ((i: number) => Font);
  bold?: (i: number) => boolean;
  lineGap?: number;
  margin?: number;
  columnGap?: number;
  /** Line text; defaults to a random sentence filling the column. */
  text?: (i: number, chars: number, rand: () => number) => string;
  background?: 'plain' | 'photo';
  rotate180?: boolean;
  degrade?: Degrade;
}

async function page(o: PageOpts): Promise<CorpusImage> {
  const rand = rng(o.seed);
  const cols = o.columns ?? 1;
  const margin = o.margin ?? 24;
  const colGap = o.columnGap ?? 60;
  const colW = (o.width - 2 * margin - (cols - 1) * colGap) / cols;
  const sizeOf = typeof o.size === 'number' ? () => o.size as number : o.size;
  const fontOf = typeof o.font === 'string' ? () => o.font as Font : o.font;
  const gap = o.lineGap ?? 0.55;
  const runs: TextRun[] = [];
  const lines: string[] = [];
  let bottom = 0;
  const perCol = Math.ceil(o.lines / cols);
  for (let c = 0; c < cols; c++) {
    let y = margin;
    for (let i = c * perCol; i < Math.min(o.lines, (c + 1) * perCol); i++) {
      const size = sizeOf(i);
      const font = fontOf(i);
      const chars = charsFor(colW, size, font);
      const text = o.text ? o.text(i, chars, rand) : sentence(rand, Math.max(8, chars - 4 - Math.floor(rand() * chars * 0.25)));
      y += size;
      runs.push({ text, x: margin + c * (colW + colGap), y, size, font, bold: o.bold?.(i) });
      lines.push(text);
      y += Math.round(size * (gap + 0.3));
    }
    bottom = Math.max(bottom, y);
  }
  const width = o.width;
  const height = Math.ceil(bottom + margin);
  const bg = o.background === 'photo' ? photoBackground(width, height, o.seed, CORPUS_PHOTO_LOOK) : null;
  let raw = await rasterize(width, height, runs, bg);
  if (o.rotate180) raw = await sharp(raw, { raw: { width, height, channels: 3 } }).rotate(180).raw().toBuffer();
  const out = await degrade(raw, width, height, o.degrade ?? {}, o.seed);
  return { image: out.image, lines, width: out.width, height: out.height };
}

const FONTS: Font[] = ['DejaVu Sans', 'DejaVu Serif', 'DejaVu Sans Mono', 'Liberation Sans', 'Liberation Serif'];

/** The whole corpus (43 pages), in a fixed order. Building a page takes 0.1-2 s. */
export function ocrCorpus(): CorpusSpec[] {
  const specs: CorpusSpec[] = [];
  const add = (id: string, cls: OcrClass, degraded: boolean, opts: PageOpts, inTest = false) =>
    specs.push({ id, cls, degraded, inTest, build: () => page(opts) });

  // Small images (< 400 px wide): photographed book snippets, phone screenshots of a paragraph.
  add('small-clean-sans', 'small', false, { width: 380, seed: 11, lines: 7, size: 16, font: 'DejaVu Sans' }, true);
  add('small-clean-serif', 'small', false, { width: 360, seed: 12, lines: 6, size: 15, font: 'DejaVu Serif' });
  add('small-book-curl', 'small', true, { width: 380, seed: 13, lines: 7, size: 16, font: 'Liberation Serif', degrade: { curve: 6, lighting: 0.35, blur: 0.6, jpeg: 60 } }, true);
  add('small-perspective', 'small', true, { width: 390, seed: 14, lines: 6, size: 17, font: 'DejaVu Serif', degrade: { perspective: 0.12, lighting: 0.3, noise: 8 } });
  add('small-lowres', 'small', true, { width: 700, seed: 15, lines: 6, size: 26, font: 'Liberation Sans', degrade: { blur: 0.8, scale: 0.5, jpeg: 50 } });
  add('small-tiny-text', 'small', false, { width: 320, seed: 16, lines: 9, size: 12, font: 'DejaVu Sans' });

  // Dense pages, 40-80 lines.
  add('dense-48x30', 'dense', false, { width: 1900, seed: 21, lines: 48, size: 30, font: 'DejaVu Sans', lineGap: 0.35, text: (i, c, r) => sentence(r, 58) });
  add('dense-70x34-numbered', 'dense', false, {
    width: 1900, seed: 22, lines: 70, size: 34, font: 'DejaVu Sans', lineGap: 0.3,
    text: (i) => `Line ${i + 1}: the quick brown fox jumps over the lazy dog ${1000 + i * 7}`,
  });
  add('dense-40x20', 'dense', false, { width: 1240, seed: 23, lines: 40, size: 20, font: 'Liberation Serif', lineGap: 0.4 }, true);
  add('dense-a4-150dpi', 'dense', false, { width: 1240, seed: 24, lines: 44, size: 24, font: 'DejaVu Serif', lineGap: 0.45 });
  add('dense-80x18', 'dense', false, { width: 1100, seed: 25, lines: 80, size: 18, font: 'DejaVu Sans', lineGap: 0.3 });
  add('dense-56-scan', 'dense', true, { width: 1400, seed: 26, lines: 56, size: 22, font: 'Liberation Serif', lineGap: 0.35, degrade: { lighting: 0.25, noise: 10, blur: 0.5, jpeg: 45 } });
  add('dense-64-photo', 'dense', true, { width: 1600, seed: 27, lines: 64, size: 24, font: 'DejaVu Sans', lineGap: 0.3, degrade: { perspective: 0.06, curve: 10, lighting: 0.3, jpeg: 55 } });

  // Wide lines, more than 1500 px.
  add('wide-one-2000', 'wide', false, { width: 2000, seed: 31, lines: 1, size: 40, font: 'DejaVu Sans' });
  add('wide-three-1800', 'wide', false, { width: 1800, seed: 32, lines: 3, size: 28, font: 'DejaVu Serif' }, true);
  add('wide-mono-2400', 'wide', false, { width: 2400, seed: 33, lines: 2, size: 36, font: 'DejaVu Sans Mono' });
  add('wide-receipt-1600', 'wide', false, { width: 1600, seed: 34, lines: 4, size: 22, font: 'Liberation Sans' });
  add('wide-blur-2200', 'wide', true, { width: 2200, seed: 35, lines: 2, size: 34, font: 'DejaVu Sans', degrade: { blur: 1.2, noise: 6, jpeg: 50 } });
  add('wide-curl-1900', 'wide', true, { width: 1900, seed: 36, lines: 3, size: 32, font: 'Liberation Serif', degrade: { curve: 14, lighting: 0.3 } });

  // Mixed fonts and sizes on one page.
  const mixSize = (i: number) => [40, 18, 24, 14, 30, 20, 16, 26][i % 8]!;
  const mixFont = (i: number) => FONTS[i % FONTS.length]!;
  add('mixed-1', 'mixed', false, { width: 1000, seed: 41, lines: 10, size: mixSize, font: mixFont, bold: (i) => i % 3 === 0 }, true);
  add('mixed-2', 'mixed', false, { width: 800, seed: 42, lines: 12, size: (i) => mixSize(i + 3), font: (i) => mixFont(i + 2) });
  add('mixed-3', 'mixed', false, { width: 1400, seed: 43, lines: 14, size: (i) => mixSize(i + 5), font: (i) => mixFont(i + 1), bold: (i) => i % 4 === 1 });
  add('mixed-headings', 'mixed', false, { width: 1200, seed: 44, lines: 12, size: (i) => (i % 4 === 0 ? 44 : 20), font: (i) => (i % 4 === 0 ? 'Liberation Sans' : 'DejaVu Serif'), bold: (i) => i % 4 === 0 });
  add('mixed-jpeg', 'mixed', true, { width: 1000, seed: 45, lines: 10, size: mixSize, font: mixFont, degrade: { jpeg: 35, noise: 5 } });
  add('mixed-perspective', 'mixed', true, { width: 1100, seed: 46, lines: 12, size: (i) => mixSize(i + 1), font: mixFont, degrade: { perspective: 0.1, lighting: 0.35, blur: 0.7 } });

  // Multi-column layout.
  add('columns-2', 'columns', false, { width: 1400, seed: 51, columns: 2, lines: 30, size: 20, font: 'DejaVu Serif', columnGap: 70 }, true);
  add('columns-3', 'columns', false, { width: 1800, seed: 52, columns: 3, lines: 45, size: 18, font: 'Liberation Sans', columnGap: 60 });
  add('columns-2-news', 'columns', false, { width: 1100, seed: 53, columns: 2, lines: 36, size: 16, font: 'Liberation Serif', columnGap: 50 });
  add('columns-2-mono', 'columns', false, { width: 1300, seed: 54, columns: 2, lines: 24, size: 20, font: 'DejaVu Sans Mono', columnGap: 80 });
  add('columns-3-scan', 'columns', true, { width: 1800, seed: 55, columns: 3, lines: 42, size: 20, font: 'DejaVu Serif', degrade: { lighting: 0.3, noise: 9, jpeg: 50 } });
  add('columns-2-photo', 'columns', true, { width: 1400, seed: 56, columns: 2, lines: 28, size: 22, font: 'DejaVu Sans', degrade: { perspective: 0.08, curve: 8, blur: 0.6 } });

  // Photo-like backgrounds.
  add('photo-1', 'photo', false, { width: 900, seed: 61, lines: 6, size: 30, font: 'DejaVu Sans', background: 'photo' }, true);
  add('photo-2', 'photo', false, { width: 700, seed: 62, lines: 8, size: 22, font: 'DejaVu Serif', background: 'photo' });
  add('photo-3', 'photo', false, { width: 1200, seed: 63, lines: 10, size: 26, font: 'Liberation Sans', background: 'photo' });
  add('photo-4', 'photo', false, { width: 600, seed: 64, lines: 5, size: 24, font: 'DejaVu Sans Mono', background: 'photo' });
  add('photo-shot', 'photo', true, { width: 1000, seed: 65, lines: 9, size: 26, font: 'DejaVu Serif', background: 'photo', degrade: { perspective: 0.1, lighting: 0.3, blur: 0.8, jpeg: 45 } });
  add('photo-curl', 'photo', true, { width: 900, seed: 66, lines: 8, size: 24, font: 'Liberation Serif', background: 'photo', degrade: { curve: 9, noise: 10, jpeg: 55 } });

  // Upside-down pages.
  add('upside-1', 'upside-down', false, { width: 900, seed: 71, lines: 8, size: 26, font: 'DejaVu Sans', rotate180: true }, true);
  add('upside-2', 'upside-down', false, { width: 1200, seed: 72, lines: 16, size: 24, font: 'DejaVu Serif', rotate180: true });
  add('upside-3', 'upside-down', false, { width: 700, seed: 73, lines: 6, size: 20, font: 'Liberation Sans', rotate180: true });
  add('upside-dense', 'upside-down', false, { width: 1400, seed: 74, lines: 40, size: 22, font: 'DejaVu Sans', rotate180: true, lineGap: 0.35 });
  add('upside-photo', 'upside-down', true, { width: 1000, seed: 75, lines: 8, size: 26, font: 'DejaVu Serif', background: 'photo', rotate180: true, degrade: { lighting: 0.3, jpeg: 50 } });
  add('upside-mixed', 'upside-down', true, { width: 1000, seed: 76, lines: 10, size: mixSize, font: mixFont, rotate180: true, degrade: { blur: 0.6, noise: 6 } });
  return specs;
}

// ---------------------------------------------------------------------------------------------- scoring

const normalize = (s: string) => s.normalize('NFKC').replace(/\s+/g, ' ').trim();

/** Levenshtein distance of `a` against the best-matching substring of `b` (semi-global alignment). */
export function substringDistance(a: string, b: string): number {
  const m = a.length, n = b.length;
  let prev = new Int32Array(n + 1); // row 0: starting anywhere in b is free
  let cur = new Int32Array(n + 1);
  for (let i = 1; i <= m; i++) {
    cur[0] = i;
    const ca = a.charCodeAt(i - 1);
    for (let j = 1; j <= n; j++) {
      const sub = prev[j - 1]! + (ca === b.charCodeAt(j - 1) ? 0 : 1);
      cur[j] = Math.min(sub, prev[j]! + 1, cur[j - 1]! + 1);
    }
    [prev, cur] = [cur, prev];
  }
  let best = m;
  for (let j = 0; j <= n; j++) best = Math.min(best, prev[j]!);
  return best;
}

export interface Score {
  /** Character errors (edits against the best-matching predicted line, plus characters of predicted lines that match nothing). */
  errors: number;
  chars: number;
  cer: number;
  /** Expected lines read with at most 10 % CER. */
  found: number;
  lines: number;
  recall: number;
}

/**
 * Reading order and line merges are not scored (a two-column page may be read column by column or row by
 * row): each expected line is aligned against the best substring of any predicted line (an alignment with
 * more edits than half the line counts as a miss: all its characters). Predicted lines that no expected
 * line aligned to are spurious: their characters count as insertions.
 */
export function score(expected: readonly string[], predicted: readonly string[]): Score {
  const exp = expected.map(normalize).filter((s) => s !== '');
  const pred = predicted.map(normalize).filter((s) => s !== '');
  const used = new Set<number>();
  let errors = 0, chars = 0, found = 0;
  for (const e of exp) {
    let best = e.length, at = -1;
    for (let j = 0; j < pred.length; j++) {
      // Cheap bound: a predicted line much shorter than e cannot beat the current best.
      if (e.length - pred[j]!.length >= best) continue;
      const d = substringDistance(e, pred[j]!);
      if (d < best) {
        best = d;
        at = j;
      }
    }
    // An alignment that gets half the line wrong is a chance match against some other line: a miss.
    if (best > 0.5 * e.length) best = e.length;
    else if (at >= 0) used.add(at);
    errors += best;
    chars += e.length;
    if (best <= 0.1 * e.length) found++;
  }
  pred.forEach((p, j) => {
    if (!used.has(j)) errors += p.replace(/ /g, '').length;
  });
  return { errors, chars, cer: chars ? errors / chars : 0, found, lines: exp.length, recall: exp.length ? found / exp.length : 1 };
}
