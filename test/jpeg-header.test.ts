/**
 * jpeg-header.ts against libvips: on every JPEG it answers for, its size and orientation must be exactly what
 * sharp's metadata says (real photos, all eight EXIF orientations, other software's markers, mutations), it
 * never throws, and it is linear on long adversarial input.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import sharp from 'sharp';
import { jpegHeader } from '../src/inference/jpeg-header.js';
import { inspectImage } from '../src/inference/image.js';
import { photo } from './helpers/photos.js';

/** What libvips says, or undefined when it refuses the header. */
async function vips(buf: Buffer): Promise<{ width: number; height: number; orientation: number } | undefined> {
  try {
    const m = await sharp(buf, { failOn: 'error', limitInputPixels: false }).metadata();
    return { width: m.width ?? 0, height: m.height ?? 0, orientation: m.orientation ?? 1 };
  } catch {
    return undefined;
  }
}

const segment = (marker: number, payload: Buffer) => Buffer.concat([Buffer.from([0xff, marker, (payload.length + 2) >> 8, (payload.length + 2) & 0xff]), payload]);

/** A TIFF block (the APP1 payload after "Exif\0\0") whose IFD0 holds `entries` (tag, type, count, value). */
function tiff(little: boolean, entries: Array<[number, number, number, number]>): Buffer {
  const b = Buffer.alloc(8 + 2 + entries.length * 12 + 4);
  const u16 = (v: number, at: number) => (little ? b.writeUInt16LE(v, at) : b.writeUInt16BE(v, at));
  const u32 = (v: number, at: number) => (little ? b.writeUInt32LE(v, at) : b.writeUInt32BE(v, at));
  b.write(little ? 'II' : 'MM', 0, 'latin1');
  u16(42, 2);
  u32(8, 4);
  u16(entries.length, 8);
  entries.forEach(([tag, type, count, value], i) => {
    const at = 10 + i * 12;
    u16(tag, at);
    u16(type, at + 2);
    u32(count, at + 4);
    u16(value, at + 8);
  });
  return b;
}

/** `jpeg` with an APP1 EXIF segment inserted after SOI. */
const withApp1 = (jpeg: Buffer, tiffBlock: Buffer) => Buffer.concat([jpeg.subarray(0, 2), segment(0xe1, Buffer.concat([Buffer.from('Exif\0\0', 'latin1'), tiffBlock])), jpeg.subarray(2)]);

describe('jpegHeader', () => {
  it('agrees with libvips on real photos, every orientation and both byte orders', async () => {
    const cases: Array<[string, Buffer]> = [];
    for (const name of ['astronaut', 'camera', 'chelsea', 'coffee'] as const) {
      cases.push([`${name} q90`, await sharp(photo(name)).jpeg({ quality: 90 }).toBuffer()]);
      cases.push([`${name} progressive q30`, await sharp(photo(name)).resize(333, 211).jpeg({ quality: 30, progressive: true }).toBuffer()]);
      cases.push([`${name} mozjpeg 4:4:4`, await sharp(photo(name)).resize(97, 1203).jpeg({ mozjpeg: true, chromaSubsampling: '4:4:4' }).toBuffer()]);
    }
    const plain = await sharp(photo('astronaut')).resize(120, 80).jpeg().toBuffer();
    for (let o = 1; o <= 8; o++) {
      cases.push([`sharp orientation ${o}`, await sharp(photo('camera')).resize(64, 48).jpeg().withMetadata({ orientation: o }).toBuffer()]);
      cases.push([`big-endian orientation ${o}`, withApp1(plain, tiff(false, [[0x010f, 2, 4, 0], [0x0112, 3, 1, o]]))]);
    }
    cases.push(['grey', await sharp(photo('camera')).greyscale().jpeg().toBuffer()]);
    cases.push(['cmyk', await sharp(photo('coffee')).toColourspace('cmyk').jpeg().toBuffer()]);
    let answered = 0;
    for (const [name, buf] of cases) {
      const mine = jpegHeader(buf);
      const theirs = await vips(buf);
      assert.ok(theirs, `${name}: libvips reads it`);
      if (mine === undefined) continue;
      answered++;
      assert.deepEqual(mine, theirs, name);
    }
    assert.ok(answered >= cases.length - 2, `answered ${answered} of ${cases.length} itself`);
  });

  it('leaves to libvips what it is unsure of: no orientation in IFD0, odd types, values past 8, two frames, bad lengths', async () => {
    const plain = await sharp(photo('astronaut')).resize(120, 80).jpeg().toBuffer();
    const sof = plain.indexOf(Buffer.from([0xff, 0xc0]));
    assert.ok(sof > 0);
    const unsure: Array<[string, Buffer]> = [
      ['EXIF without orientation', withApp1(plain, tiff(true, [[0x010f, 2, 4, 0]]))],
      ['orientation as a LONG', withApp1(plain, tiff(true, [[0x0112, 4, 1, 6]]))],
      ['orientation 9', withApp1(plain, tiff(true, [[0x0112, 3, 1, 9]]))],
      ['orientation 0', withApp1(plain, tiff(true, [[0x0112, 3, 1, 0]]))],
      ['IFD0 past the segment', withApp1(plain, Buffer.from('II*\u0000\u00ff\u00ff\u0000\u0000', 'latin1'))],
      ['not a TIFF', withApp1(plain, Buffer.from('XX*\u0000\u0008\u0000\u0000\u0000\u0000\u0000', 'latin1'))],
      ['two frame headers', Buffer.concat([plain.subarray(0, sof), plain.subarray(sof, sof + 19), plain.subarray(sof)])],
      ['length past the end', Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x7f, 0xff, 0, 0])],
      ['length under 2', Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x01, 0, 0])],
      ['no frame before the scan', Buffer.from([0xff, 0xd8, 0xff, 0xda, 0x00, 0x02])],
      ['zero height (DNL)', Buffer.concat([plain.subarray(0, sof + 5), Buffer.from([0, 0]), plain.subarray(sof + 7)])],
      ['truncated after SOI', plain.subarray(0, 3)],
    ];
    for (const [name, buf] of unsure) assert.equal(jpegHeader(buf), undefined, name);
    // Through inspectImage, libvips then answers (or refuses with a 4xx): never a wrong size.
    const exifNoOrientation = unsure[0]![1];
    assert.deepEqual(await inspectImage(exifNoOrientation), { format: 'jpeg', width: 120, height: 80, orientation: 1 });
    await assert.rejects(inspectImage(unsure[7]![1]), (e: { status?: number }) => e.status === 400);
  });

  it('fuzz: never throws; on mutated photos, whatever it answers libvips answers too', async () => {
    const seeds = await Promise.all(
      (['astronaut', 'camera'] as const).map(async (n, i) => withApp1(await sharp(photo(n)).resize(40 + i * 17, 30).jpeg({ quality: 50 }).toBuffer(), tiff(i === 0, [[0x0112, 3, 1, 3 + i * 3]]))),
    );
    const mutated = fc
      .tuple(fc.constantFrom(...seeds), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }), fc.nat())
      .map(([seed, edits, cut]) => {
        const b = Buffer.from(seed);
        // Edits land in the header, where this parser reads.
        for (const [at, v] of edits) b[at % Math.min(b.length, 700)] = v;
        return cut % 5 === 0 ? b.subarray(0, cut % b.length) : b;
      });
    await fc.assert(
      fc.asyncProperty(mutated, async (buf) => {
        const mine = jpegHeader(buf);
        if (mine === undefined) return;
        const theirs = await vips(buf);
        // libvips may refuse what the header walk accepted (a broken table); it must not read another size.
        if (theirs !== undefined) assert.deepEqual(mine, theirs);
      }),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 4096 }), (bytes) => {
        const r = jpegHeader(Buffer.concat([Buffer.from([0xff, 0xd8]), Buffer.from(bytes)]));
        assert.ok(r === undefined || (r.width > 0 && r.height > 0 && r.orientation >= 1 && r.orientation <= 8));
      }),
      { numRuns: 2000 },
    );
  });

  it('is linear on long adversarial headers (fill bytes, stand-alone markers, tiny segments)', () => {
    const mb = 8 * 1024 * 1024;
    const bodies = [
      Buffer.concat([Buffer.from([0xff, 0xd8]), Buffer.alloc(mb, 0xff)]),
      Buffer.concat([Buffer.from([0xff, 0xd8]), Buffer.from(Array.from({ length: mb / 2 }, (_, i) => (i % 2 ? 0xd0 : 0xff)))]),
      Buffer.concat([Buffer.from([0xff, 0xd8]), Buffer.concat(Array.from({ length: mb / 4 }, () => Buffer.from([0xff, 0xe0, 0x00, 0x02])))]),
    ];
    for (const body of bodies) {
      const t0 = performance.now();
      assert.equal(jpegHeader(body), undefined);
      assert.ok(performance.now() - t0 < 1000, `${performance.now() - t0} ms`);
    }
  });
});
