/**
 * The protobuf wire format, as far as ONNX files need it, with no schema: fields read by a linear walk over
 * a View (bytes in memory, or a file read through a small window, so a spooled upload of any size is walked
 * without being read into memory; weights are skipped, never read), and fields written for what is appended
 * to a model. Shared by onnx-inspect.ts (what an upload references, what a graph declares), onnx-augment.ts
 * (outputs appended to the recognizer) and the tests' model builder.
 */
import { readSync } from 'node:fs';

/** Malformed protobuf bytes. */
export class ProtobufError extends Error {}

/** A range of a message's bytes. */
export interface View {
  readonly length: number;
  at(i: number): number;
  sub(start: number, end: number): View;
  /** The range's bytes (at most `max`: names and locations are clipped when shown anyway). */
  bytes(max?: number): Uint8Array;
}

export function memoryView(buf: Uint8Array): View {
  return {
    length: buf.length,
    at: (i) => buf[i]!,
    sub: (start, end) => memoryView(buf.subarray(start, end)),
    bytes: (max = buf.length) => buf.subarray(0, Math.min(max, buf.length)),
  };
}

export const MAX_TEXT_BYTES = 4096;

/** A View of `[start, end)` of an open file, read through `window` (shared by every sub-view). */
export function fileView(fd: number, start: number, end: number, window: { pos: number; len: number; buf: Buffer }): View {
  const at = (i: number): number => {
    const abs = start + i;
    if (abs < window.pos || abs >= window.pos + window.len) {
      window.len = readSync(fd, window.buf, 0, window.buf.length, abs);
      window.pos = abs;
      if (window.len === 0) throw new ProtobufError('truncated file');
    }
    return window.buf[abs - window.pos]!;
  };
  return {
    length: end - start,
    at,
    sub: (s, e) => fileView(fd, start + s, start + e, window),
    bytes(max = MAX_TEXT_BYTES) {
      const out = Buffer.alloc(Math.min(max, end - start));
      const n = readSync(fd, out, 0, out.length, start);
      return out.subarray(0, n);
    },
  };
}

export interface Field {
  no: number;
  wire: number;
  /** Offset of the field's key, and the end of the whole field, in the walked View. */
  start: number;
  end: number;
  /** varint value (wire 0) */
  value?: bigint;
  /** bytes (wire 2) */
  bytes?: View;
}

/** The fields of one message, in order. Throws ProtobufError on bytes that are not one. */
export function* fields(buf: View): Generator<Field> {
  let pos = 0;
  const varint = (): bigint => {
    let result = 0n;
    let shift = 0n;
    for (let i = 0; i < 10; i++) {
      if (pos >= buf.length) throw new ProtobufError('truncated varint');
      const b = buf.at(pos++);
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
      shift += 7n;
    }
    throw new ProtobufError('varint too long');
  };
  while (pos < buf.length) {
    const start = pos;
    const key = varint();
    const no = Number(key >> 3n);
    const wire = Number(key & 7n);
    if (no === 0) throw new ProtobufError('field number 0');
    let value: bigint | undefined;
    let bytes: View | undefined;
    if (wire === 0) value = varint();
    else if (wire === 1) pos += 8;
    else if (wire === 5) pos += 4;
    else if (wire === 2) {
      const len = varint();
      if (len > BigInt(buf.length - pos)) throw new ProtobufError('truncated field');
      bytes = buf.sub(pos, pos + Number(len));
      pos += Number(len);
    } else throw new ProtobufError(`unsupported wire type ${wire}`);
    if (pos > buf.length) throw new ProtobufError('truncated field');
    yield { no, wire, start, end: pos, value, bytes };
  }
}

/** A string field's text (clipped to MAX_TEXT_BYTES). */
export function text(v: View): string {
  const b = v.bytes(MAX_TEXT_BYTES);
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8');
}

/** A varint. */
export function varint(n: number | bigint): Buffer {
  let v = BigInt.asUintN(64, BigInt(n));
  const out: number[] = [];
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v !== 0n) byte |= 0x80;
    out.push(byte);
  } while (v !== 0n);
  return Buffer.from(out);
}

/** Field `no` as a varint (wire type 0). */
export const int = (no: number, v: number | bigint): Buffer => Buffer.concat([varint(no << 3), varint(v)]);

/** Field `no` as length-delimited bytes (wire type 2): a string, bytes or an embedded message. */
export const bytes = (no: number, b: Uint8Array | string): Buffer => {
  const buf = typeof b === 'string' ? Buffer.from(b, 'utf8') : b;
  return Buffer.concat([varint((no << 3) | 2), varint(buf.length), buf]);
};
