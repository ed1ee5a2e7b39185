/**
 * A minimal ONNX (protobuf) encoder for building small test models by hand, hostile ones included.
 * There is no ONNX package in the dependency set, and a few message types are all a test needs:
 * ModelProto, GraphProto, NodeProto, AttributeProto, TensorProto, ValueInfoProto.
 * Field numbers are those of onnx/onnx.proto; the wire encoding is the gateway's own (src/inference/protobuf.ts).
 */
import { bytes, int, varint } from '../../src/inference/protobuf.js';

type Field = Buffer;

const key = (field: number, wire: number) => varint((field << 3) | wire);
const f32 = (field: number, v: number): Field => {
  const b = Buffer.alloc(4);
  b.writeFloatLE(v);
  return Buffer.concat([key(field, 5), b]);
};

export const DT = { FLOAT: 1, UINT8: 2, INT64: 7, BOOL: 9, FLOAT16: 10, DOUBLE: 11 } as const;

export interface TensorSpec {
  name: string;
  type: number;
  dims: number[];
  /** Little-endian raw bytes; absent for external data. */
  raw?: Buffer;
  /** ONNX external data: `location` etc.; sets data_location = EXTERNAL. */
  external?: Record<string, string>;
}

export function tensor(t: TensorSpec): Buffer {
  const parts: Buffer[] = [...t.dims.map((d) => int(1, d)), int(2, t.type), bytes(8, t.name)];
  if (t.raw) parts.push(bytes(9, t.raw));
  if (t.external) {
    for (const [k, v] of Object.entries(t.external)) parts.push(bytes(13, Buffer.concat([bytes(1, k), bytes(2, v)])));
    parts.push(int(14, 1));
  }
  return Buffer.concat(parts);
}

export const floats = (name: string, dims: number[], values: number[]): TensorSpec => {
  const raw = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => raw.writeFloatLE(v, i * 4));
  return { name, type: DT.FLOAT, dims, raw };
};
export const int64s = (name: string, dims: number[], values: Array<number | bigint>): TensorSpec => {
  const raw = Buffer.alloc(values.length * 8);
  values.forEach((v, i) => raw.writeBigInt64LE(BigInt(v), i * 8));
  return { name, type: DT.INT64, dims, raw };
};
export const bools = (name: string, dims: number[], values: boolean[]): TensorSpec => ({ name, type: DT.BOOL, dims, raw: Buffer.from(values.map((v) => (v ? 1 : 0))) });

export type Attr =
  | { name: string; i: number | bigint }
  | { name: string; f: number }
  | { name: string; ints: number[] }
  | { name: string; t: TensorSpec }
  | { name: string; g: GraphSpec };

function attribute(a: Attr): Buffer {
  const parts = [bytes(1, a.name)];
  if ('i' in a) parts.push(int(3, a.i), int(20, 2));
  else if ('f' in a) parts.push(f32(2, a.f), int(20, 1));
  else if ('ints' in a) parts.push(...a.ints.map((v) => int(8, v)), int(20, 7));
  else if ('t' in a) parts.push(bytes(5, tensor(a.t)), int(20, 4));
  else parts.push(bytes(6, graph(a.g)), int(20, 5));
  return Buffer.concat(parts);
}

export interface NodeSpec {
  op: string;
  inputs: string[];
  outputs: string[];
  attrs?: Attr[];
}

export interface ValueSpec {
  name: string;
  type: number;
  /** Numbers are fixed dimensions, strings symbolic ones; undefined: unknown rank. */
  dims?: Array<number | string>;
}

function valueInfo(v: ValueSpec): Buffer {
  const dims = (v.dims ?? []).map((d) => bytes(1, typeof d === 'number' ? int(1, d) : bytes(2, d)));
  const tensorType = Buffer.concat([int(1, v.type), ...(v.dims ? [bytes(2, Buffer.concat(dims))] : [])]);
  return Buffer.concat([bytes(1, v.name), bytes(2, bytes(1, tensorType))]);
}

export interface GraphSpec {
  name?: string;
  nodes: NodeSpec[];
  inputs: ValueSpec[];
  outputs: ValueSpec[];
  initializers?: TensorSpec[];
}

export function graph(g: GraphSpec): Buffer {
  return Buffer.concat([
    ...g.nodes.map((n, i) =>
      bytes(1, Buffer.concat([...n.inputs.map((s) => bytes(1, s)), ...n.outputs.map((s) => bytes(2, s)), bytes(3, `n${i}_${n.op}`), bytes(4, n.op), ...(n.attrs ?? []).map((a) => bytes(5, attribute(a)))])),
    ),
    bytes(2, g.name ?? 'g'),
    ...(g.initializers ?? []).map((t) => bytes(5, tensor(t))),
    ...g.inputs.map((v) => bytes(11, valueInfo(v))),
    ...g.outputs.map((v) => bytes(12, valueInfo(v))),
  ]);
}

/** A complete model file (IR version 8, default-domain opset 13). */
export function model(g: GraphSpec, opset = 13): Buffer {
  return Buffer.concat([int(1, 8), bytes(2, 'kernelgate-test'), bytes(7, graph(g)), bytes(8, int(2, opset))]);
}

/** The input every test classifier takes: `x` float [1, 3, H, W]. */
const image = (h: number, w: number): ValueSpec => ({ name: 'x', type: DT.FLOAT, dims: [1, 3, h, w] });

/** scale · sum(x), as an int64 scalar: 0 for the blank self-test input, huge for a real image. */
const dataDependentCount = (scale: number, offset: number): NodeSpec[] => [
  { op: 'ReduceSum', inputs: ['x'], outputs: ['sum'], attrs: [{ name: 'keepdims', i: 0 }] },
  { op: 'Mul', inputs: ['sum', 'scale'], outputs: ['scaled'] },
  { op: 'Add', inputs: ['scaled', 'offset'], outputs: ['shifted'] },
  { op: 'Cast', inputs: ['shifted'], outputs: ['count'], attrs: [{ name: 'to', i: DT.INT64 }] },
];
const countConsts = (scale: number, offset: number) => [floats('scale', [], [scale]), floats('offset', [], [offset])];

/** `Loop` that just passes a 2-vector through `trip` iterations (`trip`: a constant or the data-dependent count). */
function loopModel(h: number, w: number, trip: 'constant' | 'data', count: number | bigint): Buffer {
  const body: GraphSpec = {
    name: 'body',
    nodes: [
      { op: 'Identity', inputs: ['cond_in'], outputs: ['cond_out'] },
      { op: 'Identity', inputs: ['v_in'], outputs: ['v_out'] },
    ],
    inputs: [
      { name: 'iter', type: DT.INT64, dims: [] },
      { name: 'cond_in', type: DT.BOOL, dims: [] },
      { name: 'v_in', type: DT.FLOAT, dims: [2] },
    ],
    outputs: [
      { name: 'cond_out', type: DT.BOOL, dims: [] },
      { name: 'v_out', type: DT.FLOAT, dims: [2] },
    ],
  };
  const nodes: NodeSpec[] = trip === 'data' ? dataDependentCount(Number(count), 0) : [];
  const inits: TensorSpec[] = [bools('cond', [], [true]), floats('v0', [2], [0.25, 0.75])];
  if (trip === 'data') inits.push(...countConsts(Number(count), 0));
  else inits.push(int64s('count', [], [count]));
  // The loop's result is added to x's sum × 0, so the graph's input stays in use.
  nodes.push(
    { op: 'Loop', inputs: ['count', 'cond', 'v0'], outputs: ['v'], attrs: [{ name: 'body', g: body }] },
    { op: 'Identity', inputs: ['v'], outputs: ['scores'] },
  );
  if (trip === 'constant') {
    nodes.unshift({ op: 'ReduceSum', inputs: ['x'], outputs: ['unused'], attrs: [{ name: 'keepdims', i: 0 }] });
  }
  return model({ nodes, inputs: [image(h, w)], outputs: [{ name: 'scores', type: DT.FLOAT, dims: [2] }], initializers: inits });
}

/** Hangs on every input, the blank self-test included. */
export const loopForeverModel = (h: number, w: number) => loopModel(h, w, 'constant', 1n << 62n);
/**
 * Passes the blank self-test (0 iterations), then loops `scale` × sum(x) times on a real image: "forever"
 * by default, or a chosen length (a white image normalized with mean 0, std 1 sums to 3·h·w).
 */
export const loopOnInputModel = (h: number, w: number, scale = 1e15) => loopModel(h, w, 'data', scale);

/** `ConstantOfShape` of `elements` floats (a shape computed at run time, so nothing folds it at load). */
export function constantOfShapeModel(h: number, w: number, elements: number): Buffer {
  return model({
    nodes: [
      ...dataDependentCount(0, elements),
      { op: 'Reshape', inputs: ['count', 'one'], outputs: ['shape'] },
      { op: 'ConstantOfShape', inputs: ['shape'], outputs: ['big'], attrs: [{ name: 'value', t: floats('value', [1], [1]) }] },
      { op: 'ReduceSum', inputs: ['big'], outputs: ['total'], attrs: [{ name: 'keepdims', i: 1 }] },
      { op: 'Add', inputs: ['total', 'two'], outputs: ['scores'] },
    ],
    inputs: [image(h, w)],
    outputs: [{ name: 'scores', type: DT.FLOAT, dims: [2] }],
    initializers: [...countConsts(0, elements), int64s('one', [1], [1]), floats('two', [2], [0, 1])],
  });
}

/** Two scores read from an external-data file named by `location` (e.g. "/etc/passwd", "../secret.bin"). */
export function externalDataModel(h: number, w: number, location: string): Buffer {
  return model({
    nodes: [
      { op: 'ReduceSum', inputs: ['x'], outputs: ['sum'], attrs: [{ name: 'keepdims', i: 0 }] },
      { op: 'Mul', inputs: ['sum', 'zero'], outputs: ['nothing'] },
      { op: 'Add', inputs: ['w', 'nothing'], outputs: ['scores'] },
    ],
    inputs: [image(h, w)],
    outputs: [{ name: 'scores', type: DT.FLOAT, dims: [2] }],
    initializers: [floats('zero', [], [0]), { name: 'w', type: DT.FLOAT, dims: [2], external: { location, offset: '0', length: '8' } }],
  });
}

/** A harmless two-class model: scores = [sum(x)·0 + 0.25, … + 0.75]. */
export function tinyClassifier(h: number, w: number): Buffer {
  return model({
    nodes: [
      { op: 'ReduceSum', inputs: ['x'], outputs: ['sum'], attrs: [{ name: 'keepdims', i: 0 }] },
      { op: 'Mul', inputs: ['sum', 'zero'], outputs: ['nothing'] },
      { op: 'Add', inputs: ['w', 'nothing'], outputs: ['scores'] },
    ],
    inputs: [image(h, w)],
    outputs: [{ name: 'scores', type: DT.FLOAT, dims: [2] }],
    initializers: [floats('zero', [], [0]), floats('w', [2], [0.25, 0.75])],
  });
}

/**
 * A detector whose output is the constant `values` of shape `dims` (a YOLO layout), whatever the image:
 * `values + sum(x)·0`, so the input stays in use. Tests place boxes in input pixels and check where the
 * gateway maps them on the original image.
 */
export function constantDetector(h: number, w: number, dims: number[], values: number[], padBytes = 0): Buffer {
  const nodes: NodeSpec[] = [
    { op: 'ReduceSum', inputs: ['x'], outputs: ['sum'], attrs: [{ name: 'keepdims', i: 0 }] },
    { op: 'Mul', inputs: ['sum', 'zero'], outputs: ['nothing'] },
    { op: 'Add', inputs: ['w', 'nothing'], outputs: ['boxes'] },
  ];
  const initializers = [floats('zero', [], [0]), floats('w', dims, values)];
  if (padBytes > 0) {
    // Bulk that the graph reads (so no optimizer drops it): its sum times zero joins the output.
    initializers.push({ name: 'pad', type: DT.FLOAT, dims: [Math.ceil(padBytes / 4)], raw: Buffer.alloc(Math.ceil(padBytes / 4) * 4) });
    nodes[1] = { op: 'ReduceSum', inputs: ['pad'], outputs: ['padsum'], attrs: [{ name: 'keepdims', i: 0 }] };
    nodes.splice(2, 0, { op: 'Add', inputs: ['sum', 'padsum'], outputs: ['both'] }, { op: 'Mul', inputs: ['both', 'zero'], outputs: ['nothing'] });
  }
  return model({ nodes, inputs: [image(h, w)], outputs: [{ name: 'boxes', type: DT.FLOAT, dims }], initializers });
}

/** Rows (one per anchor) into the yolov8 layout `[1, 4+C, N]`: attribute-major. */
export function yolov8Values(rows: number[][]): { dims: number[]; values: number[] } {
  const n = rows.length;
  const attrs = rows[0]!.length;
  const values = new Array<number>(attrs * n);
  rows.forEach((r, i) => r.forEach((v, a) => (values[a * n + i] = v)));
  return { dims: [1, attrs, n], values };
}

/** Rows into the yolov5 layout `[1, N, 5+C]`: anchor-major. */
export function yolov5Values(rows: number[][]): { dims: number[]; values: number[] } {
  return { dims: [1, rows.length, rows[0]!.length], values: rows.flat() };
}

/**
 * tinyClassifier with `padBytes` of weights the graph reads (their sum times zero joins the scores, so no
 * optimizer drops them): a big, valid classify model for upload tests.
 */
export function heavyClassifier(h: number, w: number, padBytes: number): Buffer {
  const n = Math.ceil(padBytes / 4);
  return model({
    nodes: [
      { op: 'ReduceSum', inputs: ['x'], outputs: ['sum'], attrs: [{ name: 'keepdims', i: 0 }] },
      { op: 'ReduceSum', inputs: ['pad'], outputs: ['padsum'], attrs: [{ name: 'keepdims', i: 0 }] },
      { op: 'Add', inputs: ['sum', 'padsum'], outputs: ['both'] },
      { op: 'Mul', inputs: ['both', 'zero'], outputs: ['nothing'] },
      { op: 'Add', inputs: ['w', 'nothing'], outputs: ['scores'] },
    ],
    inputs: [image(h, w)],
    outputs: [{ name: 'scores', type: DT.FLOAT, dims: [2] }],
    initializers: [floats('zero', [], [0]), floats('w', [2], [0.25, 0.75]), { name: 'pad', type: DT.FLOAT, dims: [n], raw: Buffer.alloc(n * 4) }],
  });
}

/**
 * A model whose tensors are not float32, for the worker's datatypes: inputs `n` INT64 [N], `offset` INT64
 * [1], `b` BOOL [N], `h` FP16 [N]; outputs `big` = n + offset (INT64), `flag` = b xor (n > 4) (BOOL),
 * `small` = n as UINT8, `half` = n as FP16, `hecho` = h (FP16), `wide` = big as FP64.
 */
export function typedTensorsModel(): Buffer {
  return model({
    nodes: [
      { op: 'Add', inputs: ['n', 'offset'], outputs: ['big'] },
      { op: 'Greater', inputs: ['n', 'four'], outputs: ['gt'] },
      { op: 'Xor', inputs: ['b', 'gt'], outputs: ['flag'] },
      { op: 'Cast', inputs: ['n'], outputs: ['small'], attrs: [{ name: 'to', i: DT.UINT8 }] },
      { op: 'Cast', inputs: ['n'], outputs: ['half'], attrs: [{ name: 'to', i: DT.FLOAT16 }] },
      { op: 'Identity', inputs: ['h'], outputs: ['hecho'] },
      { op: 'Cast', inputs: ['big'], outputs: ['wide'], attrs: [{ name: 'to', i: DT.DOUBLE }] },
    ],
    inputs: [
      { name: 'n', type: DT.INT64, dims: ['N'] },
      { name: 'offset', type: DT.INT64, dims: [1] },
      { name: 'b', type: DT.BOOL, dims: ['N'] },
      { name: 'h', type: DT.FLOAT16, dims: ['N'] },
    ],
    outputs: [
      { name: 'big', type: DT.INT64, dims: ['N'] },
      { name: 'flag', type: DT.BOOL, dims: ['N'] },
      { name: 'small', type: DT.UINT8, dims: ['N'] },
      { name: 'half', type: DT.FLOAT16, dims: ['N'] },
      { name: 'hecho', type: DT.FLOAT16, dims: ['N'] },
      { name: 'wide', type: DT.DOUBLE, dims: ['N'] },
    ],
    initializers: [int64s('four', [], [4])],
  });
}
