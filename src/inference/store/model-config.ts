import { MODEL_NAME } from '../../validation/names.js';
import { ApiError } from '../../problems/api-error.js';
import { ajv, firstProblem } from '../../validation/ajv.js';

/** What an admin declares with an uploaded ONNX model. */
export interface ModelConfig {
  name: string;
  task: 'classify' | 'detect';
  input: { width: number; height: number; color: 'RGB' | 'BGR' };
  /** Per channel, applied to pixel / 255: (x - mean) / std. */
  normalize: { mean: [number, number, number]; std: [number, number, number] };
  labels: string[];
  /** How many labels to return, best first (classify). */
  top_k?: number;
  /** detect: the output layout, `[1, 4+C, N]` (Ultralytics v8/v11) or `[1, N, 5+C]` (v5, with objectness). */
  format?: DetectFormat;
  /** detect: boxes of one class overlapping a better one by more than this IoU are dropped. */
  iou_threshold?: number;
}

export const DETECT_FORMATS = ['yolov8', 'yolov5'] as const;
export type DetectFormat = (typeof DETECT_FORMATS)[number];
export const DEFAULT_IOU_THRESHOLD = 0.45;

/** Names the gateway keeps for its built-in kernels. */
export const RESERVED_MODEL_NAMES = new Set(['ocr', 'face', 'backup', 'restore']);

export const modelConfigSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'task', 'input', 'labels'],
  properties: {
    name: { type: 'string', pattern: MODEL_NAME },
    task: { enum: ['classify', 'detect'] },
    input: {
      type: 'object',
      additionalProperties: false,
      required: ['width', 'height'],
      properties: {
        width: { type: 'integer', minimum: 1, maximum: 4096 },
        height: { type: 'integer', minimum: 1, maximum: 4096 },
        color: { enum: ['RGB', 'BGR'] },
      },
    },
    normalize: {
      type: 'object',
      additionalProperties: false,
      required: ['mean', 'std'],
      properties: {
        mean: { type: 'array', minItems: 3, maxItems: 3, items: { type: 'number' } },
        std: { type: 'array', minItems: 3, maxItems: 3, items: { type: 'number', exclusiveMinimum: 0 } },
      },
    },
    labels: { type: 'array', minItems: 1, maxItems: 100000, items: { type: 'string', maxLength: 256 } },
    top_k: { type: 'integer', minimum: 1, maximum: 100 },
    format: { enum: [...DETECT_FORMATS] },
    iou_threshold: { type: 'number', minimum: 0, maximum: 1 },
  },
} as const;

const validate = ajv.compile(modelConfigSchema);

/** Validates an admin's model config and fills in the defaults. */
export function parseModelConfig(raw: unknown): ModelConfig {
  if (!validate(raw)) {
    const { path, message } = firstProblem(validate);
    throw new ApiError(400, 'invalid-api-params', `Invalid model config "${path || 'config'}": ${message}.`);
  }
  const c = raw as Record<string, any>;
  if (RESERVED_MODEL_NAMES.has(c.name)) throw new ApiError(400, 'invalid-api-params', `"${c.name}" is a reserved model name.`);
  const common = {
    name: c.name as string,
    input: { width: c.input.width, height: c.input.height, color: c.input.color ?? 'RGB' },
    normalize: c.normalize ?? { mean: [0, 0, 0], std: [1, 1, 1] },
    labels: c.labels as string[],
  };
  if (c.task === 'detect') {
    if (c.format === undefined) throw new ApiError(400, 'invalid-api-params', 'Invalid model config "format": a detect model needs "yolov8" ([1, 4+C, N]) or "yolov5" ([1, N, 5+C]).');
    if (c.top_k !== undefined) throw new ApiError(400, 'invalid-api-params', 'Invalid model config "top_k": only classify models have it.');
    return { ...common, task: 'detect', format: c.format, iou_threshold: c.iou_threshold ?? DEFAULT_IOU_THRESHOLD };
  }
  if (c.format !== undefined || c.iou_threshold !== undefined) {
    throw new ApiError(400, 'invalid-api-params', 'Invalid model config: "format" and "iou_threshold" belong to detect models.');
  }
  return {
    name: c.name,
    task: 'classify',
    input: { width: c.input.width, height: c.input.height, color: c.input.color ?? 'RGB' },
    normalize: c.normalize ?? { mean: [0, 0, 0], std: [1, 1, 1] },
    labels: c.labels,
    top_k: Math.min(c.top_k ?? 5, c.labels.length),
  };
}
