/**
 * Messages between the main thread and a model's worker thread (session-worker.ts). Tensors travel as
 * typed arrays; input buffers are transferred, not copied.
 */
import type { ProviderFailure } from '../providers.js';

export interface TensorData {
  data: Float32Array;
  dims: number[];
}

/** The typed arrays a numeric tensor is held in, whatever speaks of it (ONNX Runtime, the inference protocol). */
export type NumericValues =
  | Float32Array | Float64Array | Int8Array | Int16Array | Int32Array | BigInt64Array
  | Uint8Array | Uint16Array | Uint32Array | BigUint64Array;

/** Tensor contents in the model's own element type: BOOL as 0/1 bytes, float16 as its raw 16-bit patterns. */
export type RawValues = NumericValues | string[];

/**
 * A tensor as ONNX Runtime holds it, for `kernelgate worker`, which must answer every output in its
 * declared type with the exact values (an INT64 above 2^24 does not survive float32). Kernels never see one.
 */
/** The buffers behind raw tensors, each once, to transfer with a message (strings have none). */
export const buffersOf = (tensors: RawTensor[]): ArrayBuffer[] => [...new Set(tensors.flatMap((t) => (Array.isArray(t.data) ? [] : [t.data.buffer as ArrayBuffer])))];

export interface RawTensor {
  /** ONNX Runtime's element type name, e.g. "int64", "bool", "float16". */
  type: string;
  data: RawValues;
  dims: number[];
}

/**
 * Per-step arg-max of a `[N, T, C]` probability output, computed in the worker so that the (large)
 * recognition output never crosses threads and the O(N·T·C) scan stays off the event loop.
 */
export interface ArgmaxSteps {
  batch: number;
  steps: number;
  /** Winning class per (n, t). */
  index: Int32Array;
  /** Its probability. */
  prob: Float32Array;
  /** Probability of the watched class (`watch`, e.g. the space), or zeros. */
  watched: Float32Array;
}

export type Reduce = { kind: 'argmax'; watch: number };

export type ToWorker =
  | {
      type: 'load';
      modelPath: string;
      providers: readonly string[];
      intraOpNumThreads: number;
      fromBytes?: boolean;
      /** The model itself (an edited file, e.g. the recognizer with its reduced outputs); modelPath is then a label. */
      bytes?: Uint8Array;
    }
  | { type: 'run'; id: number; feeds: Record<string, TensorData>; reduce?: Reduce; allOutputs?: boolean; outputs?: readonly string[] }
  /** Inputs and outputs in their own element types (the worker server; the kernels' float32 path is 'run'). */
  | { type: 'run-raw'; id: number; feeds: Record<string, RawTensor>; outputs: readonly string[] };

export type FromWorker =
  | {
      type: 'loaded';
      provider: string;
      skipped: ProviderFailure[];
      inputNames: string[];
      outputNames: string[];
      outputShapes: (number | string)[][];
      /** Declared input shapes and element types (ORT's names, e.g. "float32"): model metadata for `kernelgate worker`. */
      inputShapes: (number | string)[][];
      inputTypes: string[];
      outputTypes: string[];
    }
  | { type: 'load-error'; message: string; failures: ProviderFailure[] }
  | { type: 'output'; id: number; output: TensorData }
  | { type: 'outputs'; id: number; outputs: Record<string, TensorData> }
  | { type: 'raw-outputs'; id: number; outputs: Record<string, RawTensor> }
  | { type: 'argmax'; id: number; output: ArgmaxSteps }
  | { type: 'error'; id: number; message: string };

/** A call awaiting its reply from the worker. */
export type Pending = { resolve: (m: FromWorker) => void; reject: (e: Error) => void };

/** What a runner learns from its model's `loaded` reply: provider, skipped providers, names, shapes, types. */
export function loadedDescription({ type: _type, ...description }: Extract<FromWorker, { type: 'loaded' }>): Omit<Extract<FromWorker, { type: 'loaded' }>, 'type'> {
  return description;
}
