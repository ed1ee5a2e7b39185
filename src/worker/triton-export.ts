/**
 * `kernelgate worker --export-repository DIR`: the models `kernelgate worker` serves, written as a Triton
 * model repository under the same names, so operators can run them on Triton instead:
 *
 *   DIR/<name>/config.pbtxt     platform "onnxruntime_onnx", inputs and outputs with types and dims
 *   DIR/<name>/1/model.onnx     the model file (the OCR recognizer with its reduced outputs, onnx-augment.ts)
 *
 * `max_batch_size: 0`: the dims are the model's own, batch dimension included (-1 where it varies), which
 * is exactly what the gateway's remote runner sends and checks against the metadata. (With a positive
 * max_batch_size Triton leaves the batch dimension out of dims and may merge requests; the kernels already
 * batch their own work.) Types and shapes are read from each file's graph (a linear protobuf walk), without
 * loading it.
 */
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { graphSignature, type ValueSignature } from '../inference/onnx-inspect.js';
import type { Datatype, ModelMetadata } from '../inference/runners/kserve/protocol.js';
import { modelBytes, type WorkerModels } from './models.js';

/** ONNX TensorProto.DataType → protocol datatype. */
const ONNX_TO_DATATYPE: Record<number, Datatype> = {
  1: 'FP32', 2: 'UINT8', 3: 'INT8', 4: 'UINT16', 5: 'INT16', 6: 'INT32', 7: 'INT64', 8: 'BYTES', 9: 'BOOL', 10: 'FP16', 11: 'FP64', 12: 'UINT32', 13: 'UINT64',
};

/** The protocol metadata of a model file, read from its graph (no ONNX Runtime session). */
export function fileMetadata(name: string, onnx: Uint8Array): ModelMetadata {
  const sig = graphSignature(onnx);
  const tensor = (v: ValueSignature) => {
    const datatype = ONNX_TO_DATATYPE[v.elemType];
    if (!datatype) throw new Error(`model ${name}: ${v.name} is not a tensor of a supported type (${v.elemType})`);
    return { name: v.name, datatype, shape: v.shape };
  };
  return { name, versions: ['1'], platform: 'onnxruntime_onnx', inputs: sig.inputs.map(tensor), outputs: sig.outputs.map(tensor) };
}

/** Protocol datatypes as Triton's model-config data types (BYTES is TYPE_STRING there). */
const TRITON_TYPE: Record<Datatype, string> = {
  BOOL: 'TYPE_BOOL', UINT8: 'TYPE_UINT8', UINT16: 'TYPE_UINT16', UINT32: 'TYPE_UINT32', UINT64: 'TYPE_UINT64',
  INT8: 'TYPE_INT8', INT16: 'TYPE_INT16', INT32: 'TYPE_INT32', INT64: 'TYPE_INT64',
  FP16: 'TYPE_FP16', FP32: 'TYPE_FP32', FP64: 'TYPE_FP64', BYTES: 'TYPE_STRING',
};

/** config.pbtxt (protobuf text format) of one model. */
export function tritonConfig(meta: ModelMetadata): string {
  const tensors = (list: ModelMetadata['inputs']) =>
    list
      .map((t) => `  {\n    name: ${JSON.stringify(t.name)}\n    data_type: ${TRITON_TYPE[t.datatype]}\n    dims: [ ${t.shape.join(', ')} ]\n  }`)
      .join(',\n');
  return [
    `name: ${JSON.stringify(meta.name)}`,
    'platform: "onnxruntime_onnx"',
    'max_batch_size: 0',
    `input [\n${tensors(meta.inputs)}\n]`,
    `output [\n${tensors(meta.outputs)}\n]`,
    '',
  ].join('\n');
}

/** Writes every served model into `dir` (created; must be empty or absent). Returns the names written. */
export function exportRepository(models: WorkerModels, dir: string): string[] {
  if (existsSync(dir) && readdirSync(dir).length > 0) throw new Error(`${dir} is not empty; export into a new folder`);
  const written: string[] = [];
  for (const model of models.list()) {
    // The recognizer with its reduced outputs appended, as the worker serves it (a gateway asks Triton for
    // those when the config lists them); every other model as it is.
    const bytes = modelBytes(model);
    const meta = fileMetadata(model.name, bytes);
    const folder = join(dir, model.name);
    mkdirSync(join(folder, '1'), { recursive: true });
    writeFileSync(join(folder, 'config.pbtxt'), tritonConfig(meta));
    writeFileSync(join(folder, '1', 'model.onnx'), bytes);
    written.push(model.name);
  }
  return written;
}
