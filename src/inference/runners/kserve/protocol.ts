/**
 * The Open Inference Protocol (KServe v2 REST) and Triton's binary tensor data extension, as pure
 * functions over bytes: encode and decode inference requests and responses, in JSON tensors or binary
 * tensors, for the client (the gateway's remote runner) and the server (`kernelgate worker`) alike.
 *
 * Binary layout (extension_binary_data.md): the JSON object, then each binary tensor's bytes in the order
 * the tensors appear in the JSON, little-endian, row-major, no padding; `Inference-Header-Content-Length`
 * gives the JSON's length. BOOL is one byte per element (1 true, 0 false); BYTES is, per element, a 4-byte
 * little-endian length and the bytes. Every decoder is one linear pass, bounds every count by the bytes it
 * was given before allocating, and throws ProtocolError (the peer's fault) for anything malformed.
 */

import type { NumericValues } from '../session-protocol.js';

export class ProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProtocolError';
  }
}

export const DATATYPES = ['BOOL', 'UINT8', 'UINT16', 'UINT32', 'UINT64', 'INT8', 'INT16', 'INT32', 'INT64', 'FP16', 'FP32', 'FP64', 'BYTES'] as const;
export type Datatype = (typeof DATATYPES)[number];

/** Bytes per element; BYTES has none (each element carries its length). */
export const ELEMENT_SIZE: Record<Exclude<Datatype, 'BYTES'>, number> = {
  BOOL: 1, UINT8: 1, UINT16: 2, UINT32: 4, UINT64: 8, INT8: 1, INT16: 2, INT32: 4, INT64: 8, FP16: 2, FP32: 4, FP64: 8,
};

/**
 * Tensor contents by datatype: BOOL as 0/1 bytes, FP16 as its raw 16-bit patterns, 64-bit integers as
 * BigInt arrays, BYTES as one byte array per element.
 */
export type TensorValues = NumericValues | Uint8Array[];

export interface Tensor {
  name: string;
  datatype: Datatype;
  shape: number[];
  data: TensorValues;
  parameters?: Record<string, unknown>;
}

export interface RequestedOutput {
  name: string;
  /** Triton's `binary_data` output parameter; undefined follows the request's `binary_data_output`. */
  binary?: boolean;
}

export interface InferRequest {
  id?: string;
  inputs: Tensor[];
  /** Absent: every output the model has. */
  outputs?: RequestedOutput[];
  /** `parameters.binary_data_output`. */
  binaryOutput?: boolean;
  parameters?: Record<string, unknown>;
}

export interface InferResponse {
  model_name?: string;
  model_version?: string;
  id?: string;
  outputs: Tensor[];
}

/** An encoded message: the body and, when it carries binary tensors, the JSON header's length. */
export interface Encoded {
  /** Chunks in order (tensor bytes are views, not copies): write them one after the other. */
  chunks: Uint8Array[];
  length: number;
  /** `Inference-Header-Content-Length`, present only when binary data follows the JSON. */
  headerLength?: number;
  contentType: 'application/json' | 'application/octet-stream';
}

export interface MetadataTensor {
  name: string;
  datatype: Datatype;
  /** -1 for a variable dimension. */
  shape: number[];
}

export interface ModelMetadata {
  name: string;
  versions?: string[];
  platform: string;
  inputs: MetadataTensor[];
  outputs: MetadataTensor[];
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const MAX_RANK = 16;
const enc = new TextEncoder();

export const isDatatype = (v: unknown): v is Datatype => typeof v === 'string' && (DATATYPES as readonly string[]).includes(v);

/** Elements a shape holds; throws on a dimension that is not a non-negative safe integer. */
export function elementCount(shape: readonly number[], limit = Number.MAX_SAFE_INTEGER): number {
  if (shape.length > MAX_RANK) throw new ProtocolError(`shape has ${shape.length} dimensions (at most ${MAX_RANK})`);
  let n = 1;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) throw new ProtocolError(`shape dimension ${JSON.stringify(d)} is not a non-negative integer`);
    n *= d;
    if (n > limit) throw new ProtocolError(`shape [${shape.join(', ')}] holds more elements than the message can carry`);
  }
  return n;
}

const valuesLength = (data: TensorValues) => (Array.isArray(data) ? data.length : data.length);

// ---------------------------------------------------------------------------------------------- FP16

/** IEEE 754 half-precision bits → number. */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** number → IEEE 754 half-precision bits (round to nearest even). */
export function floatToHalf(v: number): number {
  const f32 = new Float32Array([v]);
  const x = new Uint32Array(f32.buffer)[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++;
  e = half >> 10;
  return sign | half;
}

// ------------------------------------------------------------------------------------ binary tensors

/** The bytes of a tensor in the extension's layout (a view where the host is little-endian). */
export function tensorBytes(t: Pick<Tensor, 'datatype' | 'data'>): Uint8Array[] {
  if (t.datatype === 'BYTES') {
    const items = t.data as Uint8Array[];
    const out: Uint8Array[] = [];
    for (const item of items) {
      const len = new Uint8Array(4);
      new DataView(len.buffer).setUint32(0, item.length, true);
      out.push(len, item);
    }
    return out;
  }
  const arr = t.data as Exclude<TensorValues, Uint8Array[]>;
  if (LITTLE_ENDIAN || ELEMENT_SIZE[t.datatype] === 1) return [new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength)];
  return [swapped(arr, ELEMENT_SIZE[t.datatype])];
}

function swapped(arr: { buffer: ArrayBufferLike; byteOffset: number; byteLength: number }, size: number): Uint8Array {
  const src = new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength);
  const out = new Uint8Array(src.length);
  for (let i = 0; i < src.length; i += size) for (let j = 0; j < size; j++) out[i + j] = src[i + size - 1 - j]!;
  return out;
}

const byteLengthOf = (chunks: Uint8Array[]) => chunks.reduce((n, c) => n + c.length, 0);

/** Typed values from a tensor's bytes (copied, so they are aligned and independent of the body). */
export function valuesFromBytes(datatype: Datatype, bytes: Uint8Array, count: number): TensorValues {
  if (datatype === 'BYTES') {
    const items: Uint8Array[] = [];
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let pos = 0;
    for (let i = 0; i < count; i++) {
      if (pos + 4 > bytes.length) throw new ProtocolError('BYTES element truncated (its 4-byte length is missing)');
      const len = view.getUint32(pos, true);
      pos += 4;
      if (len > bytes.length - pos) throw new ProtocolError(`BYTES element of ${len} bytes runs past the tensor's data`);
      items.push(new Uint8Array(bytes.subarray(pos, pos + len))); // a copy (Buffer#slice would be a view)
      pos += len;
    }
    if (pos !== bytes.length) throw new ProtocolError(`BYTES tensor has ${bytes.length - pos} bytes after its ${count} elements`);
    return items;
  }
  const size = ELEMENT_SIZE[datatype];
  if (bytes.length !== count * size) throw new ProtocolError(`${datatype} tensor of ${count} elements needs ${count * size} bytes, got ${bytes.length}`);
  // A copy in a buffer of its own (Buffer#slice would be a view into a shared pool).
  const copy = LITTLE_ENDIAN || size === 1 ? new Uint8Array(bytes) : swapped(bytes, size);
  const buf = copy.buffer;
  let values: TensorValues;
  switch (datatype) {
    case 'BOOL':
      for (const b of copy) if (b > 1) throw new ProtocolError(`BOOL element is ${b}; only 0 and 1 are defined`);
      return copy;
    case 'UINT8': return copy;
    case 'INT8': values = new Int8Array(buf); break;
    case 'UINT16': case 'FP16': values = new Uint16Array(buf); break;
    case 'INT16': values = new Int16Array(buf); break;
    case 'UINT32': values = new Uint32Array(buf); break;
    case 'INT32': values = new Int32Array(buf); break;
    case 'UINT64': values = new BigUint64Array(buf); break;
    case 'INT64': values = new BigInt64Array(buf); break;
    case 'FP32': values = new Float32Array(buf); break;
    case 'FP64': values = new Float64Array(buf); break;
  }
  return values;
}

// -------------------------------------------------------------------------------------- JSON tensors

/** JSON tensor data: a flat array (nested arrays are flattened on decode). */
export function jsonData(t: Pick<Tensor, 'datatype' | 'data'>): unknown[] {
  switch (t.datatype) {
    case 'BOOL': return Array.from(t.data as Uint8Array, (b) => b !== 0);
    case 'BYTES': return (t.data as Uint8Array[]).map((b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8'));
    case 'FP16': return Array.from(t.data as Uint16Array, halfToFloat);
    case 'INT64': case 'UINT64': return Array.from(t.data as BigInt64Array, (v) => (v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString()));
    default: return Array.from(t.data as Float32Array, (v) => (Number.isFinite(v) ? v : null));
  }
}

/**
 * Row-major flattening of nested JSON arrays without recursion (one pass, an explicit stack bounded by
 * MAX_RANK), stopping as soon as more than `limit` elements appear.
 */
function flatten(data: unknown, limit: number): unknown[] {
  if (!Array.isArray(data)) throw new ProtocolError('"data" must be an array');
  const out: unknown[] = [];
  const stack: Array<{ a: unknown[]; i: number }> = [{ a: data, i: 0 }];
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    if (top.i >= top.a.length) {
      stack.pop();
      continue;
    }
    const v = top.a[top.i++];
    if (Array.isArray(v)) {
      if (stack.length >= MAX_RANK) throw new ProtocolError(`"data" is nested deeper than ${MAX_RANK} levels`);
      stack.push({ a: v, i: 0 });
    } else {
      if (out.length >= limit) throw new ProtocolError(`"data" has more elements than the shape holds (${limit})`);
      out.push(v);
    }
  }
  return out;
}

const INT_RANGE: Partial<Record<Datatype, [number, number]>> = {
  UINT8: [0, 255], UINT16: [0, 65535], UINT32: [0, 4294967295], INT8: [-128, 127], INT16: [-32768, 32767], INT32: [-2147483648, 2147483647],
};

/** Typed values from JSON `data` of `count` elements (nested or flat, row-major). */
export function valuesFromJson(datatype: Datatype, data: unknown, count: number): TensorValues {
  const flat = flatten(data, count);
  if (flat.length !== count) throw new ProtocolError(`"data" has ${flat.length} elements, the shape holds ${count}`);
  const bad = (v: unknown) => new ProtocolError(`${datatype} element ${JSON.stringify(v)?.slice(0, 40)} is not valid`);
  switch (datatype) {
    case 'BOOL':
      return Uint8Array.from(flat, (v) => {
        if (typeof v !== 'boolean') throw bad(v);
        return v ? 1 : 0;
      });
    case 'BYTES':
      return flat.map((v) => {
        if (typeof v !== 'string') throw bad(v);
        return enc.encode(v);
      });
    case 'FP16': case 'FP32': case 'FP64': {
      const nums = flat.map((v) => {
        if (typeof v !== 'number') throw bad(v);
        return v;
      });
      if (datatype === 'FP16') return Uint16Array.from(nums, floatToHalf);
      return datatype === 'FP32' ? Float32Array.from(nums) : Float64Array.from(nums);
    }
    case 'INT64': case 'UINT64': {
      const big = flat.map((v) => {
        if (!(typeof v === 'number' && Number.isSafeInteger(v)) && !(typeof v === 'string' && /^-?\d{1,20}$/.test(v))) throw bad(v);
        const b = BigInt(v);
        if (datatype === 'UINT64' ? b < 0n || b > 0xffffffffffffffffn : b < -(2n ** 63n) || b >= 2n ** 63n) throw bad(v);
        return b;
      });
      return datatype === 'INT64' ? BigInt64Array.from(big) : BigUint64Array.from(big);
    }
    default: {
      const [lo, hi] = INT_RANGE[datatype]!;
      const ints = flat.map((v) => {
        if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) throw bad(v);
        return v;
      });
      const Ctor = { UINT8: Uint8Array, UINT16: Uint16Array, UINT32: Uint32Array, INT8: Int8Array, INT16: Int16Array, INT32: Int32Array }[datatype as 'UINT8'];
      return Ctor.from(ints);
    }
  }
}

// -------------------------------------------------------------------------------- whole messages

function encodeMessage(header: Record<string, unknown>, binary: Uint8Array[]): Encoded {
  const json = enc.encode(JSON.stringify(header));
  if (binary.length === 0) return { chunks: [json], length: json.length, contentType: 'application/json' };
  return { chunks: [json, ...binary], length: json.length + byteLengthOf(binary), headerLength: json.length, contentType: 'application/octet-stream' };
}

function tensorJson(t: Tensor, binary: boolean, sink: Uint8Array[]): Record<string, unknown> {
  const out: Record<string, unknown> = { name: t.name, shape: t.shape, datatype: t.datatype };
  const parameters: Record<string, unknown> = { ...t.parameters };
  if (binary) {
    const bytes = tensorBytes(t);
    sink.push(...bytes);
    parameters.binary_data_size = byteLengthOf(bytes);
  }
  if (Object.keys(parameters).length > 0) out.parameters = parameters;
  if (!binary) out.data = jsonData(t);
  return out;
}

/** An inference request; `binary` sends the inputs as binary tensors. */
export function encodeInferRequest(req: InferRequest, opts: { binary: boolean }): Encoded {
  const sink: Uint8Array[] = [];
  const header: Record<string, unknown> = {};
  if (req.id !== undefined) header.id = req.id;
  const parameters: Record<string, unknown> = { ...req.parameters };
  if (req.binaryOutput !== undefined) parameters.binary_data_output = req.binaryOutput;
  if (Object.keys(parameters).length > 0) header.parameters = parameters;
  header.inputs = req.inputs.map((t) => tensorJson(t, opts.binary, sink));
  if (req.outputs) header.outputs = req.outputs.map((o) => (o.binary === undefined ? { name: o.name } : { name: o.name, parameters: { binary_data: o.binary } }));
  return encodeMessage(header, sink);
}

/** An inference response; each output goes binary when `binary(name)` says so. */
export function encodeInferResponse(res: InferResponse, binary: (name: string) => boolean): Encoded {
  const sink: Uint8Array[] = [];
  const header: Record<string, unknown> = {};
  if (res.model_name !== undefined) header.model_name = res.model_name;
  if (res.model_version !== undefined) header.model_version = res.model_version;
  if (res.id !== undefined) header.id = res.id;
  header.outputs = res.outputs.map((t) => tensorJson(t, binary(t.name), sink));
  return encodeMessage(header, sink);
}

/** `{"error": "..."}`, the protocol's error object. */
export const encodeError = (message: string): Uint8Array => enc.encode(JSON.stringify({ error: message }));

/**
 * `Inference-Header-Content-Length` → the JSON's length within a body of `bodyLength` bytes; undefined
 * when absent (the whole body is JSON). Strict digits only: "+5", "5.0", " 5", "0x5" are refused.
 */
export function parseHeaderLength(value: string | string[] | undefined, bodyLength: number): number | undefined {
  if (value === undefined) return undefined;
  if (Array.isArray(value) || !/^\d{1,15}$/.test(value)) throw new ProtocolError('Inference-Header-Content-Length must be one non-negative integer');
  const n = Number(value);
  if (n > bodyLength) throw new ProtocolError(`Inference-Header-Content-Length ${n} exceeds the body's ${bodyLength} bytes`);
  return n;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function parseJsonHeader(body: Uint8Array, headerLength: number | undefined): Record<string, unknown> {
  const end = headerLength ?? body.length;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(body.buffer, body.byteOffset, end).toString('utf8'));
  } catch {
    throw new ProtocolError(headerLength === undefined ? 'the body is not JSON' : 'the first Inference-Header-Content-Length bytes are not JSON');
  }
  if (!isObject(parsed)) throw new ProtocolError('the JSON must be an object');
  return parsed;
}

const optParams = (v: unknown, what: string): Record<string, unknown> | undefined => {
  if (v === undefined) return undefined;
  if (!isObject(v)) throw new ProtocolError(`${what} "parameters" must be an object`);
  return v;
};

/** Reads the tensors of a request's `inputs` or a response's `outputs`, binary parts from `body` after `start`. */
function decodeTensors(list: unknown, what: string, body: Uint8Array, start: number): { tensors: Tensor[]; end: number } {
  if (!Array.isArray(list)) throw new ProtocolError(`"${what}" must be an array`);
  let pos = start;
  const tensors = list.map((raw, i): Tensor => {
    const where = `${what}[${i}]`;
    if (!isObject(raw)) throw new ProtocolError(`${where} must be an object`);
    const { name, shape, datatype } = raw;
    if (typeof name !== 'string' || name.length === 0 || name.length > 256) throw new ProtocolError(`${where}.name must be a non-empty string`);
    if (!isDatatype(datatype)) throw new ProtocolError(`${where}.datatype must be one of ${DATATYPES.join(', ')}`);
    if (!Array.isArray(shape)) throw new ProtocolError(`${where}.shape must be an array`);
    const parameters = optParams(raw.parameters, where);
    const size = parameters?.binary_data_size;
    // Elements are bounded by the bytes that could carry them (JSON elements take at least one byte each).
    const count = elementCount(shape as number[], datatype === 'BYTES' ? body.length / 4 : body.length);
    let data: TensorValues;
    if (size !== undefined) {
      if (!Number.isSafeInteger(size) || (size as number) < 0) throw new ProtocolError(`${where}: binary_data_size must be a non-negative integer`);
      if ((size as number) > body.length - pos) throw new ProtocolError(`${where}: binary_data_size ${size} runs past the end of the body`);
      if (raw.data !== undefined) throw new ProtocolError(`${where} has both "data" and binary_data_size`);
      data = valuesFromBytes(datatype, body.subarray(pos, pos + (size as number)), count);
      pos += size as number;
    } else {
      if (raw.data === undefined) throw new ProtocolError(`${where} has neither "data" nor binary_data_size`);
      data = valuesFromJson(datatype, raw.data, count);
    }
    const t: Tensor = { name, datatype, shape: shape as number[], data };
    if (parameters) {
      const rest = { ...parameters };
      delete rest.binary_data_size;
      if (Object.keys(rest).length > 0) t.parameters = rest;
    }
    return t;
  });
  return { tensors, end: pos };
}

function checkConsumed(end: number, body: Uint8Array): void {
  if (end !== body.length) throw new ProtocolError(`${body.length - end} bytes after the last binary tensor`);
}

/** A request body as a server reads it. */
export function decodeInferRequest(body: Uint8Array, headerLength: number | undefined): InferRequest {
  const json = parseJsonHeader(body, headerLength);
  const start = headerLength ?? body.length;
  const { tensors, end } = decodeTensors(json.inputs, 'inputs', body, start);
  if (tensors.length === 0) throw new ProtocolError('"inputs" must not be empty');
  checkConsumed(end, body);
  const req: InferRequest = { inputs: tensors };
  if (json.id !== undefined) {
    if (typeof json.id !== 'string') throw new ProtocolError('"id" must be a string');
    req.id = json.id;
  }
  const parameters = optParams(json.parameters, 'the request');
  if (parameters) {
    const { binary_data_output, ...rest } = parameters;
    if (binary_data_output !== undefined) {
      if (typeof binary_data_output !== 'boolean') throw new ProtocolError('binary_data_output must be a boolean');
      req.binaryOutput = binary_data_output;
    }
    if (Object.keys(rest).length > 0) req.parameters = rest;
  }
  if (json.outputs !== undefined) {
    if (!Array.isArray(json.outputs)) throw new ProtocolError('"outputs" must be an array');
    req.outputs = json.outputs.map((o, i) => {
      if (!isObject(o) || typeof o.name !== 'string' || o.name.length === 0) throw new ProtocolError(`outputs[${i}] must be an object with a "name"`);
      const p = optParams(o.parameters, `outputs[${i}]`);
      const out: RequestedOutput = { name: o.name };
      if (p?.binary_data !== undefined) {
        if (typeof p.binary_data !== 'boolean') throw new ProtocolError(`outputs[${i}]: binary_data must be a boolean`);
        out.binary = p.binary_data;
      }
      return out;
    });
  }
  return req;
}

/** A response body as a client reads it. */
export function decodeInferResponse(body: Uint8Array, headerLength: number | undefined): InferResponse {
  const json = parseJsonHeader(body, headerLength);
  const { tensors, end } = decodeTensors(json.outputs, 'outputs', body, headerLength ?? body.length);
  checkConsumed(end, body);
  const res: InferResponse = { outputs: tensors };
  for (const k of ['model_name', 'model_version', 'id'] as const) if (typeof json[k] === 'string') res[k] = json[k];
  return res;
}

/** The `error` of an error body, when it is the protocol's `{"error": "..."}`. */
export function decodeError(body: Uint8Array): string | undefined {
  try {
    const v = JSON.parse(Buffer.from(body.buffer, body.byteOffset, Math.min(body.length, 65536)).toString('utf8')) as unknown;
    return isObject(v) && typeof v.error === 'string' ? v.error : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Model readiness from `GET /v2/models/{m}/ready`: Triton answers 200 with an empty body, KServe's Python
 * servers 200 with `{"name": ..., "ready": true}`; anything but 200 is not ready.
 */
export function parseReady(status: number, body: Uint8Array): boolean {
  if (status !== 200) return false;
  const text = Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8').trim();
  if (text === '') return true;
  try {
    const v = JSON.parse(text) as unknown;
    return isObject(v) && v.ready !== false;
  } catch {
    return false;
  }
}

/** `GET /v2/models/{m}`: checked, with -1 for variable dimensions. */
export function decodeModelMetadata(body: Uint8Array): ModelMetadata {
  const json = parseJsonHeader(body, undefined);
  const tensors = (list: unknown, what: string): MetadataTensor[] => {
    if (!Array.isArray(list)) throw new ProtocolError(`model metadata "${what}" must be an array`);
    return list.map((t, i) => {
      if (!isObject(t) || typeof t.name !== 'string' || !isDatatype(t.datatype) || !Array.isArray(t.shape)) {
        throw new ProtocolError(`model metadata ${what}[${i}] must have a name, a known datatype and a shape`);
      }
      if (t.shape.length > MAX_RANK || !t.shape.every((d) => Number.isSafeInteger(d) && (d as number) >= -1)) {
        throw new ProtocolError(`model metadata ${what}[${i}].shape must hold integers >= -1`);
      }
      return { name: t.name, datatype: t.datatype, shape: t.shape as number[] };
    });
  };
  if (typeof json.name !== 'string') throw new ProtocolError('model metadata has no "name"');
  const meta: ModelMetadata = { name: json.name, platform: typeof json.platform === 'string' ? json.platform : '', inputs: tensors(json.inputs, 'inputs'), outputs: tensors(json.outputs, 'outputs') };
  if (Array.isArray(json.versions)) meta.versions = json.versions.filter((v): v is string => typeof v === 'string');
  return meta;
}

/** Whether `dims` fits a declared shape (same rank; -1 matches any size). */
export const fitsShape = (dims: readonly number[], declared: readonly number[]) =>
  dims.length === declared.length && dims.every((d, i) => declared[i] === -1 || declared[i] === d);

/** Bytes of an encoded message as one buffer (tests, small bodies). */
export const concatEncoded = (e: Encoded): Buffer => Buffer.concat(e.chunks);
