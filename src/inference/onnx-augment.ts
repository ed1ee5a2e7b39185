/**
 * Appends the OCR recognizer's per-step reduction to its ONNX graph as three extra outputs, computed by
 * standard ops, so that a remote Open Inference Protocol server (`kernelgate worker`, or Triton serving
 * the exported repository) can answer `[N, T]` tensors instead of the whole `[N, T, C]` probabilities
 * (6625 classes: megabytes per page). They are exactly what ctcArgmax (ocr/ctc.ts) computes:
 *
 *   kg_argmax            ArgMax(axis 2, keepdims 0)            INT64 [N, T]  first index of the maximum
 *   kg_maxprob           ReduceMax(axes [2], keepdims 0)       FP32  [N, T]
 *   kg_watch_<class>     Gather(index <class>, axis 2)         FP32  [N, T]  the watched (space) class
 *
 * The watched class is in the output's name, so a client that watches another class sees no match and
 * falls back to the full output. Axis 2, not -1: negative axes are only defined from opset 11 and the
 * recognizer is opset 9. ReduceMax takes its axes as an attribute before opset 18 and as an input from 18.
 *
 * The edit is a linear protobuf walk that never re-encodes what it does not add: GraphProto (ModelProto
 * field 7) gets nodes (field 1), initializers (field 5) and outputs (field 12) appended — protobuf
 * concatenates repeated fields, and appended nodes come after the ones whose output they read — and only
 * the graph's length prefix is written anew. Anything it does not understand is refused with
 * OnnxAugmentError, never half-edited.
 */

import { bytes, fields, int, memoryView, ProtobufError, text, varint, type Field, type View } from './protobuf.js';

export class OnnxAugmentError extends Error {}

export const ARGMAX_OUTPUT = 'kg_argmax';
export const MAXPROB_OUTPUT = 'kg_maxprob';
export const WATCH_PREFIX = 'kg_watch_';
const WATCH_INDEX = 'kg_watch_index';
const REDUCE_AXES = 'kg_reduce_axes';

/** A message's fields, read in memory; every malformed byte is an OnnxAugmentError. */
function fieldsOf(buf: Uint8Array | View): Field[] {
  try {
    return [...fields(buf instanceof Uint8Array ? memoryView(buf) : buf)];
  } catch (error) {
    throw error instanceof ProtobufError ? new OnnxAugmentError(error.message) : error;
  }
}

/** The bytes of a length-delimited field read in memory (a memory View hands back its whole range). */
const raw = (v: View): Uint8Array => v.bytes();

/** AttributeProto: an INT (type 2) or INTS (type 7). */
const intAttr = (name: string, v: number) => Buffer.concat([bytes(1, name), int(3, v), int(20, 2)]);
const intsAttr = (name: string, vs: number[]) => Buffer.concat([bytes(1, name), ...vs.map((v) => int(8, v)), int(20, 7)]);

function node(op: string, inputs: string[], output: string, attrs: Buffer[]): Buffer {
  return bytes(1, Buffer.concat([...inputs.map((s) => bytes(1, s)), bytes(2, output), bytes(3, `${output}_node`), bytes(4, op), ...attrs.map((a) => bytes(5, a))]));
}

/** An INT64 initializer (TensorProto: dims 1, data_type 2, name 8, raw_data 9). */
function int64Initializer(name: string, dims: number[], values: number[]): Buffer {
  const data = Buffer.alloc(values.length * 8);
  values.forEach((v, i) => data.writeBigInt64LE(BigInt(v), i * 8));
  return bytes(5, Buffer.concat([...dims.map((d) => int(1, d)), int(2, 7), bytes(8, name), bytes(9, data)]));
}

/** A graph output (ValueInfoProto → TypeProto.tensor_type) of `elemType` with the given raw dimensions. */
const output = (name: string, elemType: number, dims: Uint8Array[]) =>
  bytes(12, Buffer.concat([bytes(1, name), bytes(2, bytes(1, Buffer.concat([int(1, elemType), bytes(2, Buffer.concat(dims.map((d) => bytes(1, d))))])))]));

/** The default-domain opset the model imports (ModelProto.opset_import, field 8). */
function defaultOpset(model: Field[]): number {
  let version: number | undefined;
  for (const f of model) {
    if (f.no !== 8 || !f.bytes) continue;
    let domain = '';
    let v: bigint | undefined;
    for (const o of fieldsOf(f.bytes)) {
      if (o.no === 1 && o.bytes) domain = text(o.bytes);
      else if (o.no === 2 && o.value !== undefined) v = o.value;
    }
    if ((domain === '' || domain === 'ai.onnx') && v !== undefined) version = Number(BigInt.asIntN(64, v));
  }
  if (version === undefined || version < 1) throw new OnnxAugmentError('the model imports no default-domain opset');
  return version;
}

/** The first graph output: its name and raw TensorShapeProto.Dimension messages; it must be FLOAT of rank 3. */
function firstOutput(graph: Field[]): { name: string; dims: Uint8Array[] } {
  const f = graph.find((g) => g.no === 12 && g.bytes);
  if (!f) throw new OnnxAugmentError('the graph declares no output');
  let name = '';
  let elemType = 0;
  let dims: Uint8Array[] | undefined;
  for (const v of fieldsOf(f.bytes!)) {
    if (v.no === 1 && v.bytes) name = text(v.bytes);
    else if (v.no === 2 && v.bytes) {
      for (const t of fieldsOf(v.bytes)) {
        if (t.no !== 1 || !t.bytes) continue;
        for (const tt of fieldsOf(t.bytes)) {
          if (tt.no === 1 && tt.value !== undefined) elemType = Number(tt.value);
          else if (tt.no === 2 && tt.bytes) dims = fieldsOf(tt.bytes).filter((d) => d.no === 1 && d.bytes).map((d) => raw(d.bytes!));
        }
      }
    }
  }
  if (name === '') throw new OnnxAugmentError('the first output has no name');
  if (elemType !== 1) throw new OnnxAugmentError(`output ${name} is not FLOAT`);
  if (!dims || dims.length !== 3) throw new OnnxAugmentError(`output ${name} is not of rank 3 ([N, T, C])`);
  return { name, dims };
}

/** Classes of the last dimension when fixed (Dimension.dim_value, field 1), else undefined. */
function fixedSize(dim: Uint8Array): number | undefined {
  const v = fieldsOf(dim).find((d) => d.no === 1 && d.value !== undefined)?.value;
  return v === undefined ? undefined : Number(BigInt.asIntN(64, v));
}

/** Every value name the graph defines or declares: node outputs, initializers, inputs, outputs. */
function graphNames(graph: Field[]): Set<string> {
  const names = new Set<string>();
  for (const g of graph) {
    if (!g.bytes) continue;
    if (g.no === 1) for (const n of fieldsOf(g.bytes)) if (n.no === 2 && n.bytes) names.add(text(n.bytes));
    if (g.no === 5) for (const t of fieldsOf(g.bytes)) if (t.no === 8 && t.bytes) names.add(text(t.bytes));
    if (g.no === 11 || g.no === 12) for (const v of fieldsOf(g.bytes)) if (v.no === 1 && v.bytes) names.add(text(v.bytes));
  }
  return names;
}

/**
 * The model with kg_argmax, kg_maxprob and kg_watch_<watch> appended, reduced over the last axis of its
 * first output (FLOAT [N, T, C]). Throws OnnxAugmentError for bytes that are not such a model.
 */
export function appendArgmaxOutputs(model: Uint8Array, watch: number): Uint8Array {
  if (!Number.isInteger(watch) || watch < 0 || watch > 0x7fffffff) throw new OnnxAugmentError(`watched class ${watch} is not a class index`);
  const top = fieldsOf(model);
  const graphs = top.filter((f) => f.no === 7);
  if (graphs.length !== 1 || !graphs[0]!.bytes) throw new OnnxAugmentError('the model must have exactly one graph');
  const g = graphs[0]!;
  // Before IR version 4 every initializer had to be listed among the graph's inputs as well.
  const ir = top.find((f) => f.no === 1 && f.value !== undefined)?.value;
  if (ir === undefined || ir < 4n) throw new OnnxAugmentError(`IR version ${ir ?? 'missing'}: 4 or later is needed for initializers outside the inputs`);
  const opset = defaultOpset(top);
  const graph = fieldsOf(g.bytes!);
  const out = firstOutput(graph);
  const classes = fixedSize(out.dims[2]!);
  if (classes !== undefined && watch >= classes) throw new OnnxAugmentError(`watched class ${watch} is outside the output's ${classes} classes`);
  const watchName = `${WATCH_PREFIX}${watch}`;
  const names = graphNames(graph);
  const taken = [ARGMAX_OUTPUT, MAXPROB_OUTPUT, watchName, WATCH_INDEX, REDUCE_AXES].find((n) => names.has(n));
  if (taken) throw new OnnxAugmentError(`the graph already has a value named ${taken}`);

  const reduceMax = opset >= 18
    ? node('ReduceMax', [out.name, REDUCE_AXES], MAXPROB_OUTPUT, [intAttr('keepdims', 0)])
    : node('ReduceMax', [out.name], MAXPROB_OUTPUT, [intsAttr('axes', [2]), intAttr('keepdims', 0)]);
  const nt = out.dims.slice(0, 2);
  const appended = Buffer.concat([
    node('ArgMax', [out.name], ARGMAX_OUTPUT, [intAttr('axis', 2), intAttr('keepdims', 0)]),
    reduceMax,
    node('Gather', [out.name, WATCH_INDEX], watchName, [intAttr('axis', 2)]),
    int64Initializer(WATCH_INDEX, [], [watch]),
    ...(opset >= 18 ? [int64Initializer(REDUCE_AXES, [1], [2])] : []),
    output(ARGMAX_OUTPUT, 7, nt),
    output(MAXPROB_OUTPUT, 1, nt),
    output(watchName, 1, nt),
  ]);
  const length = g.bytes!.length + appended.length;
  return Buffer.concat([model.subarray(0, g.start), varint((7 << 3) | 2), varint(length), raw(g.bytes!), appended, model.subarray(g.end)]);
}

/** The watched class of a model's (or its metadata's) outputs, when all three reduced outputs are there. */
export function argmaxWatchOf(outputs: ReadonlyArray<{ name: string; datatype: string }>): number | undefined {
  const has = (name: string, datatype: string) => outputs.some((o) => o.name === name && o.datatype === datatype);
  if (!has(ARGMAX_OUTPUT, 'INT64') || !has(MAXPROB_OUTPUT, 'FP32')) return undefined;
  const watched = outputs.filter((o) => o.name.startsWith(WATCH_PREFIX) && o.datatype === 'FP32' && /^\d{1,10}$/.test(o.name.slice(WATCH_PREFIX.length)));
  return watched.length === 1 ? Number(watched[0]!.name.slice(WATCH_PREFIX.length)) : undefined;
}
