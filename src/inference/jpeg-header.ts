/**
 * A JPEG's size and EXIF orientation read from its header in JavaScript, for the check every image request
 * makes before queueing (image.ts inspectImage). Asking libvips instead is a round trip to its thread pool:
 * 0.2 ms of work, and up to a millisecond on a machine whose threads sat idle, on every request.
 *
 * It answers only what libvips would answer too, and undefined for anything else (libvips is then asked):
 * one frame header (SOFn) before the first scan, lengths that stay inside the buffer, and an EXIF
 * orientation that is a plain SHORT of 1-8 in IFD0 of the last EXIF block (libvips keeps the last APP1
 * "Exif" segment it sees). Linear: every step moves forward by at least two bytes.
 */

export interface JpegHeader {
  width: number;
  height: number;
  /** EXIF orientation 1-8 (1 when the image has no EXIF block). */
  orientation: number;
}

const SOS = 0xda;
const EOI = 0xd9;
const APP1 = 0xe1;

/** Frame headers: C0-CF except DHT (C4), JPG (C8) and DAC (CC). */
const isFrameHeader = (m: number) => m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc;
/** Markers that stand alone, without a length: TEM, RSTn, SOI. */
const standsAlone = (m: number) => m === 0x01 || (m >= 0xd0 && m <= 0xd8);

export function jpegHeader(buf: Buffer): JpegHeader | undefined {
  if (buf.length < 4 || buf[0] !== 0xff || buf[1] !== 0xd8) return undefined;
  let frame: { width: number; height: number } | undefined;
  let exif: { start: number; end: number } | undefined;
  let at = 2;
  while (at < buf.length) {
    if (buf[at] !== 0xff) return undefined; // garbage between segments: let libvips judge it
    while (at < buf.length && buf[at] === 0xff) at++; // fill bytes
    if (at >= buf.length) return undefined;
    const marker = buf[at++]!;
    if (standsAlone(marker)) continue;
    if (marker === SOS || marker === EOI) break;
    if (at + 2 > buf.length) return undefined;
    const length = (buf[at]! << 8) | buf[at + 1]!;
    const end = at + length;
    if (length < 2 || end > buf.length) return undefined;
    if (isFrameHeader(marker)) {
      if (frame !== undefined || length < 7) return undefined; // two frames: libjpeg refuses, libvips must say so
      frame = { height: (buf[at + 3]! << 8) | buf[at + 4]!, width: (buf[at + 5]! << 8) | buf[at + 6]! };
    } else if (marker === APP1 && length >= 8 && buf.toString('latin1', at + 2, at + 8) === 'Exif\u0000\u0000') {
      exif = { start: at + 8, end };
    }
    at = end;
  }
  if (frame === undefined || frame.width === 0 || frame.height === 0) return undefined;
  if (exif === undefined) return { ...frame, orientation: 1 };
  const orientation = exifOrientation(buf, exif.start, exif.end);
  return orientation === undefined ? undefined : { ...frame, orientation };
}

/** IFD0's Orientation (tag 0x0112) of the TIFF structure in buf[start, end), when it is a SHORT of 1-8. */
function exifOrientation(buf: Buffer, start: number, end: number): number | undefined {
  if (end - start < 8) return undefined;
  const little = buf[start] === 0x49 && buf[start + 1] === 0x49;
  if (!little && !(buf[start] === 0x4d && buf[start + 1] === 0x4d)) return undefined;
  const u16 = (p: number) => (little ? buf[p]! | (buf[p + 1]! << 8) : (buf[p]! << 8) | buf[p + 1]!);
  const u32 = (p: number) => (little ? (buf[p]! | (buf[p + 1]! << 8) | (buf[p + 2]! << 16)) + buf[p + 3]! * 0x1000000 : buf[p]! * 0x1000000 + ((buf[p + 1]! << 16) | (buf[p + 2]! << 8) | buf[p + 3]!));
  if (u16(start + 2) !== 42) return undefined;
  const ifd = start + u32(start + 4);
  if (ifd < start + 8 || ifd + 2 > end) return undefined;
  const count = u16(ifd);
  if (ifd + 2 + count * 12 > end) return undefined;
  for (let i = 0; i < count; i++) {
    const entry = ifd + 2 + i * 12;
    if (u16(entry) !== 0x0112) continue;
    const type = u16(entry + 2);
    const value = u16(entry + 8);
    return type === 3 && u32(entry + 4) === 1 && value >= 1 && value <= 8 ? value : undefined;
  }
  return undefined; // no orientation in IFD0: where libexif would look next is its business
}
