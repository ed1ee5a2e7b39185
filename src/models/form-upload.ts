/**
 * A model upload as a multipart form: files `model` (the ONNX bytes, no base64) and `config` (the JSON
 * config), and optionally a field `name` (DeepStack's addmodel sends one; it fills in or must match the
 * config's). Used by POST /models and POST /v1/vision/addmodel.
 */
import type { DiskFile, Form } from '../http/form.js';
import { textField } from '../http/form.js';
import { ApiError } from '../problems/api-error.js';
import { parseModelConfig, type ModelConfig } from '../inference/store/model-config.js';

/**
 * `onnx`: the bytes, or the spool file the form parser wrote the `model` part to (a spooled upload; see
 * `uploadParts`), which kernels.install() checks and moves into the store without reading it into memory.
 */
export function uploadFromForm(form: Form): { config: ModelConfig; onnx: Buffer | DiskFile } {
  const onnx = form.diskFiles.get('model') ?? form.files.get('model');
  if (onnx === undefined || (Buffer.isBuffer(onnx) ? onnx.length : onnx.size) === 0) throw new ApiError(400, 'invalid-api-params', 'Send the ONNX model as the file part "model".');
  const rawConfig = form.files.get('config') ?? (form.fields.has('config') ? Buffer.from(form.fields.get('config')!, 'latin1') : undefined);
  if (rawConfig === undefined) throw new ApiError(400, 'invalid-api-params', 'Send the model config (JSON: task, input, labels, ...) as the file part "config".');
  let config: unknown;
  try {
    config = JSON.parse(rawConfig.toString('utf8'));
  } catch {
    throw new ApiError(400, 'invalid-api-params', 'The "config" part is not valid JSON.');
  }
  if (config === null || typeof config !== 'object' || Array.isArray(config)) throw new ApiError(400, 'invalid-api-params', 'The "config" part must be a JSON object.');
  const name = textField(form, 'name');
  const named = (config as Record<string, unknown>).name;
  if (name !== undefined && named !== undefined && named !== name) {
    throw new ApiError(400, 'invalid-api-params', `The field "name" (${JSON.stringify(name.slice(0, 64))}) and the config's name differ.`);
  }
  return { config: parseModelConfig(name === undefined ? config : { ...config, name }), onnx };
}

/** The form parts of a model upload that go to the spool (when the body was spooled): the ONNX file. */
export const UPLOAD_DISK_PARTS = ['model'];

