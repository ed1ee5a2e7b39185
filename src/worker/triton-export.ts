/**
 * `kernelgate worker --export-repository DIR`: the models `kernelgate worker` serves, written as a Triton
 * model repository under the same names, so operators can run them on Triton instead:
 *
 *   DIR/<name>/config.pbtxt     platform "onnxruntime_onnx", inputs and outputs with types and dims
 *   DIR/<name>/1/model.onnx     the model file
 *
 * `max_batch_size: 0`: the dims are the model's own, batch dimension included (-1 where it varies), which
 * is exactly what the gateway's remote runner sends and checks against the metadata. (With a positive
 * max_batch_size Triton leaves the batch dimension out of dims and may merge requests; the kernels already
 * batch their own work.) Each model is loaded once on the CPU to read its declared types and shapes.
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Datatype, ModelMetadata } from '../inference/runners/kserve/protocol.js';
import { startIsolatedRunner } from '../inference/runners/ort-process.js';
import { describe, type WorkerModels } from './models.js';

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
export async function exportRepository(models: WorkerModels, dir: string): Promise<string[]> {
  if (existsSync(dir) && readdirSync(dir).length > 0) throw new Error(`${dir} is not empty; export into a new folder`);
  const written: string[] = [];
  for (const model of models.list()) {
    // A child process per model, loaded from bytes on the CPU: only its metadata is wanted.
    const runner = await startIsolatedRunner(model.path, { providers: ['cpu'], loadTimeoutMs: 120_000, runTimeoutMs: 1000, maxMemoryBytes: 0 });
    let meta: ModelMetadata;
    try {
      meta = describe(model.name, runner);
    } finally {
      await runner.close();
    }
    const folder = join(dir, model.name);
    mkdirSync(join(folder, '1'), { recursive: true });
    writeFileSync(join(folder, 'config.pbtxt'), tritonConfig(meta));
    copyFileSync(model.path, join(folder, '1', 'model.onnx'));
    written.push(model.name);
  }
  return written;
}
