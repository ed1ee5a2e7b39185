/**
 * A look inside an uploaded ONNX file before ONNX Runtime sees it: a minimal, linear protobuf walk over
 * ModelProto → GraphProto → NodeProto → AttributeProto (nested graphs) → TensorProto.
 *
 * It finds tensors whose data lives in "external data" files (TensorProto.data_location = EXTERNAL or an
 * external_data entry). Such a reference names a path that ORT would read beside the model file: another
 * domain's model or anything else in the models folder. Uploads are single files, so any reference is
 * refused (and isolated sessions load from bytes, where references resolve nowhere).
 */

import { closeSync, fstatSync, openSync } from 'node:fs';
import { fields, fileView, memoryView, ProtobufError, text, type Field, type View } from './protobuf.js';

/** Malformed model bytes (truncated, not protobuf, no graph, nested too deep). */
export { ProtobufError as OnnxInspectError };

/** Window of a model file read at a time: weights are skipped, never read. */
const WINDOW_BYTES = 64 * 1024;

const MAX_DEPTH = 32;

function tensor(buf: View, where: string, found: string[]): void {
  let name = '';
  let external = false;
  const locations: string[] = [];
  for (const f of fields(buf)) {
    if (f.no === 8 && f.bytes) name = text(f.bytes);
    else if (f.no === 14 && f.value === 1n) external = true;
    else if (f.no === 13 && f.bytes) {
      external = true;
      let k = '';
      let v = '';
      for (const e of fields(f.bytes)) {
        if (e.no === 1 && e.bytes) k = text(e.bytes);
        if (e.no === 2 && e.bytes) v = text(e.bytes);
      }
      if (k === 'location') locations.push(v);
    }
  }
  if (external) found.push(`${where}${name ? ` tensor ${JSON.stringify(name.slice(0, 64))}` : ''}${locations.length ? ` → ${JSON.stringify(locations[0]!.slice(0, 100))}` : ''}`);
}

function sparse(buf: View, where: string, found: string[]): void {
  for (const f of fields(buf)) if ((f.no === 1 || f.no === 2) && f.bytes) tensor(f.bytes, where, found);
}

function nodes(buf: View, nodeField: number, depth: number, found: string[], other: (f: Field) => void): void {
  for (const f of fields(buf)) {
    if (f.no === nodeField && f.bytes) {
      for (const nf of fields(f.bytes)) if (nf.no === 5 && nf.bytes) attribute(nf.bytes, depth, found);
    } else other(f);
  }
}

function attribute(buf: View, depth: number, found: string[]): void {
  for (const f of fields(buf)) {
    if (!f.bytes) continue;
    if (f.no === 5 || f.no === 10) tensor(f.bytes, 'attribute', found);
    else if (f.no === 6 || f.no === 11) graph(f.bytes, depth + 1, found);
    else if (f.no === 22 || f.no === 23) sparse(f.bytes, 'attribute', found);
  }
}

function graph(buf: View, depth: number, found: string[]): void {
  if (depth > MAX_DEPTH) throw new ProtobufError(`graphs nested more than ${MAX_DEPTH} deep`);
  nodes(buf, 1, depth, found, (f) => {
    if (f.no === 5 && f.bytes) tensor(f.bytes, 'initializer', found);
    else if (f.no === 15 && f.bytes) sparse(f.bytes, 'sparse initializer', found);
  });
}

/** External-data references in an ONNX model file (empty: none). Throws OnnxInspectError on malformed bytes. */
export function externalDataReferences(model: Uint8Array): string[] {
  return externalIn(memoryView(model));
}

/** externalDataReferences() of a model file, read through a small window (the weights are skipped, never read). */
export function externalDataReferencesInFile(path: string): string[] {
  const fd = openSync(path, 'r');
  try {
    return externalIn(fileView(fd, 0, fstatSync(fd).size, { pos: 0, len: 0, buf: Buffer.alloc(WINDOW_BYTES) }));
  } finally {
    closeSync(fd);
  }
}

function externalIn(model: View): string[] {
  const found: string[] = [];
  let sawGraph = false;
  for (const f of fields(model)) {
    if (f.no === 7 && f.bytes) {
      sawGraph = true;
      graph(f.bytes, 0, found);
    } else if (f.no === 25 && f.bytes) {
      nodes(f.bytes, 7, 0, found, () => undefined); // FunctionProto.node
    }
  }
  if (!sawGraph) throw new ProtobufError('no graph');
  return found;
}

/** A graph input or output as the model file declares it. */
export interface ValueSignature {
  name: string;
  /** TensorProto.DataType (1 FLOAT, 7 INT64, 9 BOOL, ...); 0 when not a tensor. */
  elemType: number;
  /** -1 for a symbolic or unknown dimension. */
  shape: number[];
}

function valueInfo(buf: View): ValueSignature {
  const v: ValueSignature = { name: '', elemType: 0, shape: [] };
  for (const f of fields(buf)) {
    if (f.no === 1 && f.bytes) v.name = text(f.bytes);
    else if (f.no === 2 && f.bytes) {
      for (const t of fields(f.bytes)) {
        if (t.no !== 1 || !t.bytes) continue; // TypeProto.tensor_type
        for (const tt of fields(t.bytes)) {
          if (tt.no === 1 && tt.value !== undefined) v.elemType = Number(tt.value);
          else if (tt.no === 2 && tt.bytes) {
            for (const d of fields(tt.bytes)) {
              if (d.no !== 1 || !d.bytes) continue; // TensorShapeProto.dim
              let size = -1;
              for (const dv of fields(d.bytes)) if (dv.no === 1 && dv.value !== undefined) size = Number(BigInt.asIntN(64, dv.value));
              v.shape.push(size >= 0 ? size : -1);
            }
          }
        }
      }
    }
  }
  return v;
}

/**
 * The graph's inputs (less those that are initializers, as older exporters list weights among inputs) and
 * outputs, read from the file without loading it: what a Triton model config declares.
 */
export function graphSignature(model: Uint8Array): { inputs: ValueSignature[]; outputs: ValueSignature[] } {
  const inputs: ValueSignature[] = [];
  const outputs: ValueSignature[] = [];
  const initializers = new Set<string>();
  let sawGraph = false;
  for (const f of fields(memoryView(model))) {
    if (f.no !== 7 || !f.bytes) continue;
    sawGraph = true;
    for (const g of fields(f.bytes)) {
      if (!g.bytes) continue;
      if (g.no === 11) inputs.push(valueInfo(g.bytes));
      else if (g.no === 12) outputs.push(valueInfo(g.bytes));
      else if (g.no === 5) for (const t of fields(g.bytes)) if (t.no === 8 && t.bytes) initializers.add(text(t.bytes));
    }
  }
  if (!sawGraph) throw new ProtobufError('no graph');
  return { inputs: inputs.filter((i) => !initializers.has(i.name)), outputs };
}
