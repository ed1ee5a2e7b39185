/**
 * A zip writer byte by byte (PKWARE APPNOTE 4.3.7 local headers, 4.3.12 central directory, 4.3.16 end record),
 * for archives a maintained library refuses to make: `../x`, `/abs`, symlinks in the external attributes,
 * duplicate names, sizes that lie, 10k entries, entries that share their data.
 */
import * as zlib from 'node:zlib';
import { deflateRawSync } from 'node:zlib';

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

/** Node's own where it has one (20.15+), else a table-driven one. */
const nativeCrc32 = (zlib as { crc32?: (data: Buffer) => number }).crc32;

export function crc32(data: Buffer): number {
  if (nativeCrc32) return nativeCrc32(data) >>> 0;
  let c = 0xffffffff;
  for (const b of data) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export interface CraftedEntry {
  name: string;
  /** The uncompressed content. */
  data?: Buffer;
  /** 0 stored, 8 deflate (default: 8). */
  method?: number;
  /** The bytes written as the entry's data (default: data, deflated when method 8). */
  raw?: Buffer;
  /** What the headers claim (default: the truth). */
  uncompressedSize?: number;
  crc?: number;
  /** High 16 bits: Unix mode (e.g. 0o120777 for a symlink). Default: a regular file 0o100644. */
  unixMode?: number;
  flags?: number;
  /** Central directory points at the local header of another entry (index), sharing its data. */
  shareDataOf?: number;
}

/** A zip of `entries`, exactly as described (no validation at all). */
export function craftZip(entries: CraftedEntry[]): Buffer {
  const locals: Buffer[] = [];
  const central: Buffer[] = [];
  const offsets: number[] = [];
  const described: Array<{ method: number; crc: number; compressed: number; size: number }> = [];
  let offset = 0;
  entries.forEach((e, i) => {
    const data = e.data ?? Buffer.alloc(0);
    const method = e.method ?? 8;
    const raw = e.raw ?? (method === 8 ? deflateRawSync(data) : data);
    const name = Buffer.from(e.name, 'utf8');
    const crc = e.crc ?? crc32(data);
    const size = e.uncompressedSize ?? data.length;
    const flags = e.flags ?? 0x0800; // UTF-8 names
    if (e.shareDataOf !== undefined) {
      offsets.push(offsets[e.shareDataOf]!);
      described.push(described[e.shareDataOf]!);
    } else {
      const local = Buffer.alloc(30);
      local.writeUInt32LE(0x04034b50, 0);
      local.writeUInt16LE(20, 4);
      local.writeUInt16LE(flags, 6);
      local.writeUInt16LE(method, 8);
      local.writeUInt16LE(0, 10);
      local.writeUInt16LE(0x21, 12);
      local.writeUInt32LE(crc, 14);
      local.writeUInt32LE(raw.length, 18);
      local.writeUInt32LE(size, 22);
      local.writeUInt16LE(name.length, 26);
      local.writeUInt16LE(0, 28);
      offsets.push(offset);
      described.push({ method, crc, compressed: raw.length, size });
      locals.push(local, name, raw);
      offset += local.length + name.length + raw.length;
    }
    const d = described[i]!;
    const c = Buffer.alloc(46);
    c.writeUInt32LE(0x02014b50, 0);
    c.writeUInt16LE((3 << 8) | 20, 4); // made by Unix, so the high attribute bits are a Unix mode
    c.writeUInt16LE(20, 6);
    c.writeUInt16LE(flags, 8);
    c.writeUInt16LE(d.method, 10);
    c.writeUInt16LE(0, 12);
    c.writeUInt16LE(0x21, 14);
    c.writeUInt32LE(d.crc, 16);
    c.writeUInt32LE(d.compressed, 20);
    c.writeUInt32LE(d.size, 24);
    c.writeUInt16LE(name.length, 28);
    c.writeUInt16LE(0, 30);
    c.writeUInt16LE(0, 32);
    c.writeUInt16LE(0, 34);
    c.writeUInt16LE(0, 36);
    c.writeUInt32LE(((e.unixMode ?? 0o100644) << 16) >>> 0, 38);
    c.writeUInt32LE(offsets[i]!, 42);
    central.push(c, name);
  });
  const cd = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, end]);
}
