/**
 * Untrusted image bytes → raw RGB pixels, with byte and pixel limits.
 *
 * Every way an input can be wrong ends in an ApiError (400 invalid-image, 413 request-too-large,
 * 415 unsupported-media-type); nothing a client sends may surface as a 500. The format is sniffed from the
 * magic bytes rather than trusted from Content-Type, and only raster formats this sharp build decodes are
 * let through: SVG in particular is refused, because rendering client SVG means an XML parser, external
 * references and unbounded rasterization cost.
 */
import sharp from 'sharp';
import { ApiError } from '../problems/api-error.js';
import { jpegHeader } from './jpeg-header.js';

export type ImageFormat = 'png' | 'jpeg' | 'webp' | 'gif' | 'tiff' | 'avif';

export interface DecodeLimits {
  /** Largest accepted encoded size. */
  maxBytes: number;
  /** Largest accepted width × height (checked from the header, before decoding). */
  maxPixels: number;
  /** libvips gives up after this long (decompression bombs that stay under the pixel limit). */
  timeoutSeconds: number;
}

export const DEFAULT_DECODE_LIMITS: DecodeLimits = {
  maxBytes: 10 * 1024 * 1024,
  maxPixels: 40_000_000,
  timeoutSeconds: 10,
};

export interface RgbImage {
  /** Packed 8-bit RGB, row-major, `width * height * 3` bytes. */
  data: Buffer;
  width: number;
  height: number;
  /** Format sniffed from the bytes. */
  format: ImageFormat;
}

const invalid = (detail: string) => new ApiError(400, 'invalid-image', detail);
const unsupported = (detail: string) => new ApiError(415, 'unsupported-media-type', detail);
const tooLarge = (detail: string) => new ApiError(413, 'request-too-large', detail);

const startsWith = (buf: Buffer, bytes: readonly number[], at = 0) =>
  buf.length >= at + bytes.length && bytes.every((b, i) => buf[at + i] === b);
const ascii = (buf: Buffer, from: number, to: number) => buf.subarray(from, to).toString('latin1');

/** Result of sniffing: a format we decode, a known format we refuse (415), or not an image at all. */
export type Sniffed = { kind: 'ok'; format: ImageFormat } | { kind: 'unsupported'; name: string } | { kind: 'unknown' };

/** Identify the container from its magic bytes. Pure and cheap: reads at most the first 512 bytes. */
export function sniffFormat(buf: Buffer): Sniffed {
  if (startsWith(buf, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return { kind: 'ok', format: 'png' };
  if (startsWith(buf, [0xff, 0xd8, 0xff])) return { kind: 'ok', format: 'jpeg' };
  if (ascii(buf, 0, 6) === 'GIF87a' || ascii(buf, 0, 6) === 'GIF89a') return { kind: 'ok', format: 'gif' };
  if (ascii(buf, 0, 4) === 'RIFF' && ascii(buf, 8, 12) === 'WEBP') return { kind: 'ok', format: 'webp' };
  if (startsWith(buf, [0x49, 0x49, 0x2a, 0x00]) || startsWith(buf, [0x4d, 0x4d, 0x00, 0x2a])) {
    return { kind: 'ok', format: 'tiff' };
  }
  if (startsWith(buf, [0x49, 0x49, 0x2b, 0x00]) || startsWith(buf, [0x4d, 0x4d, 0x00, 0x2b])) {
    return { kind: 'ok', format: 'tiff' }; // BigTIFF
  }
  // ISO-BMFF (HEIF family): `....ftyp<brand>`. The prebuilt libvips decodes AV1 (AVIF) but not HEVC (HEIC).
  if (ascii(buf, 4, 8) === 'ftyp') {
    const brands = [ascii(buf, 8, 12)];
    const boxSize = buf.length >= 4 ? buf.readUInt32BE(0) : 0;
    for (let at = 16; at + 4 <= Math.min(boxSize, buf.length, 64); at += 4) brands.push(ascii(buf, at, at + 4));
    if (brands.some((b) => b === 'avif' || b === 'avis')) return { kind: 'ok', format: 'avif' };
    if (brands.some((b) => /^(heic|heix|hevc|hevx|heim|heis|mif1|msf1)$/.test(b))) return { kind: 'unsupported', name: 'HEIC' };
    if (brands.some((b) => /^(jxl )$/.test(b))) return { kind: 'unsupported', name: 'JPEG XL' };
    return { kind: 'unsupported', name: 'ISO media (video?)' };
  }
  if (ascii(buf, 0, 2) === 'BM') return { kind: 'unsupported', name: 'BMP' };
  if (startsWith(buf, [0x00, 0x00, 0x01, 0x00])) return { kind: 'unsupported', name: 'ICO' };
  if (ascii(buf, 0, 4) === '8BPS') return { kind: 'unsupported', name: 'PSD' };
  if (ascii(buf, 0, 5) === '%PDF-') return { kind: 'unsupported', name: 'PDF' };
  if (startsWith(buf, [0xff, 0x0a]) || startsWith(buf, [0x00, 0x00, 0x00, 0x0c, 0x4a, 0x58, 0x4c, 0x20])) {
    return { kind: 'unsupported', name: 'JPEG XL' };
  }
  if (startsWith(buf, [0x00, 0x00, 0x00, 0x0c, 0x6a, 0x50, 0x20, 0x20]) || startsWith(buf, [0xff, 0x4f, 0xff, 0x51])) {
    return { kind: 'unsupported', name: 'JPEG 2000' };
  }
  if (startsWith(buf, [0x1f, 0x8b])) return { kind: 'unsupported', name: 'gzip (SVGZ?)' };
  // Text formats: SVG / XML, possibly after a BOM and whitespace.
  const head = buf.subarray(0, 512).toString('utf8').replace(/^\uFEFF/, '').trimStart().toLowerCase();
  if (head.startsWith('<svg') || head.startsWith('<?xml') || head.startsWith('<!doctype svg') || head.includes('<svg')) {
    return { kind: 'unsupported', name: 'SVG' };
  }
  return { kind: 'unknown' };
}

/** Map a libvips / sharp failure to the client's fault it describes. */
function fromSharpError(err: unknown, format: ImageFormat, maxPixels?: number): ApiError {
  const msg = err instanceof Error ? err.message : String(err);
  if (/pixel limit/i.test(msg)) {
    return tooLarge(`image has more pixels than the limit${maxPixels ? ` of ${maxPixels}` : ''} (config inference.max_image_pixels); send a smaller image`);
  }
  if (/timeout/i.test(msg)) return tooLarge('image took too long to decode');
  if (/unsupported image format|no loader|not a known file format/i.test(msg)) {
    return unsupported(`cannot decode this ${format} variant`);
  }
  // Keep libvips' first line: it says what is wrong ("Premature end of input file", …) without internals.
  const first = msg.split('\n')[0]!.slice(0, 200);
  return invalid(`corrupt or truncated ${format} image: ${first}`);
}

const open = (input: Buffer, lim: DecodeLimits) =>
  sharp(input, {
    // 'error' rejects truncated and corrupt data but tolerates warnings (e.g. junk after a JPEG's end
    // marker), which cameras and editors routinely produce.
    failOn: 'error',
    limitInputPixels: lim.maxPixels,
    sequentialRead: true,
  });

export interface ImageInfo {
  format: ImageFormat;
  /** As stored, before EXIF orientation (see orientedSize). */
  width: number;
  height: number;
  /** EXIF orientation, 1 (none) to 8; 5-8 turn the image by a quarter. */
  orientation: number;
}

/** The size the image has once turned upright by its EXIF orientation (what decodeImage answers). */
export function orientedSize(info: ImageInfo): { width: number; height: number } {
  return info.orientation >= 5 ? { width: info.height, height: info.width } : { width: info.width, height: info.height };
}

/**
 * Cheap checks from the bytes and the header only (no pixel is decoded): size, format, dimensions.
 * Lets bad input be refused before it waits for, or occupies, a model slot.
 */
export async function inspectImage(input: Buffer, limits: Partial<DecodeLimits> = {}): Promise<ImageInfo> {
  const lim: DecodeLimits = { ...DEFAULT_DECODE_LIMITS, ...limits };
  if (!Buffer.isBuffer(input) || input.length === 0) throw invalid('empty image (no bytes)');
  if (input.length > lim.maxBytes) throw tooLarge(`image is ${input.length} bytes; the limit is ${lim.maxBytes}`);

  const sniffed = sniffFormat(input);
  if (sniffed.kind === 'unsupported') {
    throw unsupported(`${sniffed.name} images are not supported; send PNG, JPEG, WebP, GIF, TIFF or AVIF`);
  }
  if (sniffed.kind === 'unknown') throw invalid('not a recognizable image');
  const format = sniffed.format;

  // A plain JPEG's header is read here (jpeg-header.ts); anything else, or a JPEG it is unsure of, by libvips.
  const { width, height, orientation } = (format === 'jpeg' ? jpegHeader(input) : undefined) ?? (await headerOf(input, format, lim));
  if (width <= 0 || height <= 0) throw invalid('image has no pixels');
  if (width * height > lim.maxPixels) {
    throw tooLarge(
      `image is ${width}x${height} = ${width * height} pixels; the limit is ${lim.maxPixels} pixels (config inference.max_image_pixels); send a smaller image`,
    );
  }
  return { format, width, height, orientation };
}

/** Size and orientation from libvips, which reads only the header (so no pixel limit: the caller checks). */
async function headerOf(input: Buffer, format: ImageFormat, lim: DecodeLimits): Promise<{ width: number; height: number; orientation: number }> {
  try {
    const meta = await sharp(input, { failOn: 'error', limitInputPixels: false }).metadata();
    const orientation = meta.orientation !== undefined && meta.orientation >= 1 && meta.orientation <= 8 ? meta.orientation : 1;
    return { width: meta.width ?? 0, height: meta.height ?? 0, orientation };
  } catch (err) {
    throw fromSharpError(err, format, lim.maxPixels);
  }
}

/**
 * Decode, auto-rotate by EXIF orientation, flatten transparency onto white (text drawn on a transparent
 * background would otherwise turn into black on black) and return packed 8-bit sRGB.
 *
 * `inspected`: inspectImage's answer for this same input, when the caller already has it. The kernels
 * inspect before queueing; reading the header again would cost another round trip to libvips' threads,
 * and the decode enforces the pixel limit itself.
 *
 * `size`: the upright image stretched to exactly this size, in the same libvips pipeline. Kernels whose
 * model takes a small input ask for it: JPEG and WebP are then decoded at a fraction of their size
 * (shrink-on-load) and the full-size pixels never exist. Measured on 640x480 photos, the face kernel's
 * two inputs took 14-16 ms by decoding first and resizing the raw pixels, 7 ms this way (README "Face kernel").
 */
export async function decodeImage(input: Buffer, limits: Partial<DecodeLimits> = {}, inspected?: ImageInfo, size?: { width: number; height: number }): Promise<RgbImage> {
  const lim: DecodeLimits = { ...DEFAULT_DECODE_LIMITS, ...limits };
  const { format } = inspected ?? (await inspectImage(input, lim));
  try {
    let pipeline = open(input, lim)
      .rotate() // EXIF orientation
      .flatten({ background: '#ffffff' })
      .toColourspace('srgb');
    if (size !== undefined) pipeline = pipeline.resize(size.width, size.height, { fit: 'fill' });
    const { data, info } = await pipeline
      .raw({ depth: 'uchar' })
      .timeout({ seconds: lim.timeoutSeconds })
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3 || data.length !== info.width * info.height * 3) {
      throw invalid(`unexpected decoded layout (${info.channels} channels)`);
    }
    return { data, width: info.width, height: info.height, format };
  } catch (err) {
    if (err instanceof ApiError) throw err;
    throw fromSharpError(err, format, lim.maxPixels);
  }
}
