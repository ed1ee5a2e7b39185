/**
 * A model runner: something that holds one loaded model and runs tensors through it. Kernels (the tasks:
 * ocr, classify, ...) only see this interface, so where a model runs is the runner's business: an ORT
 * session in a worker thread (built-in models, ort-worker.ts), one in a killable child process (uploaded
 * models, ort-process.ts), and later a remote Open Inference Protocol server.
 */
import type { ArgmaxSteps, RawTensor, TensorData } from './session-protocol.js';

export type { ArgmaxSteps, RawTensor, RawValues, TensorData } from './session-protocol.js';

/** Input tensors by the model's input name. */
export type Feeds = Record<string, TensorData>;
/** Output tensors by the model's output name. */
export type Outputs = Record<string, TensorData>;

export interface RunOptions {
  /** Deadline of this run, ms: a runner that can stop a run stops it (ModelFailure 'timeout'); others may ignore it. */
  timeoutMs?: number;
  /** Answer with every output of the model, not only the first (which is all most kernels read). */
  allOutputs?: boolean;
  /**
   * Answer with these outputs only (ONNX Runtime fetches no others); overrides `allOutputs`. Integer
   * outputs come back as float32, exact below 2^24 (arg-max indices).
   */
  outputs?: readonly string[];
}

export interface ModelRunner {
  /** Where the model runs, e.g. "cpu" or "cuda": reported in results and /health. */
  readonly provider: string;
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  /** Declared shape of each output (symbolic dimensions as strings). */
  readonly outputShapes: readonly (readonly (number | string)[])[];
  /**
   * Run float32 inputs. The ORT runners answer with the model's first output only unless
   * `opts.allOutputs` (copying every output across threads would cost the OCR path for nothing).
   */
  run(feeds: Feeds, opts?: RunOptions): Promise<Outputs>;
  /** True once the runner can no longer run (crashed, killed, closed): start a new one. */
  readonly dead: boolean;
  /** Release the model; pending runs reject. */
  close(): Promise<void>;
}

/** What a local runner knows of its model beyond names: the metadata `kernelgate worker` serves. */
export interface ModelDescription {
  readonly inputShapes: readonly (readonly (number | string)[])[];
  /** ONNX Runtime's element type names, e.g. "float32". */
  readonly inputTypes: readonly string[];
  readonly outputTypes: readonly string[];
}

/**
 * A local runner that also runs tensors in the model's own element types, every output exactly as ONNX
 * Runtime produced it: what `kernelgate worker` serves. Kernels use run() (float32) and never this.
 */
export interface RawRunner {
  /** Inputs by name in their declared types; answers `outputs` only (ONNX Runtime fetches no others). */
  runRaw(feeds: Record<string, RawTensor>, opts: { outputs: readonly string[]; timeoutMs?: number }): Promise<Record<string, RawTensor>>;
}

/**
 * A runner that can reduce a `[N, T, C]` output to its per-step arg-max where the model runs, so that the
 * large output never crosses to the event loop (the OCR recognizer's CTC output).
 */
export interface ArgmaxRunner extends ModelRunner {
  runArgmax(feeds: Feeds, watchClass: number): Promise<ArgmaxSteps>;
}

/** Why a runner was stopped: it overstayed its deadline, outgrew its memory cap, or died. */
export class ModelFailure extends Error {
  constructor(
    readonly kind: 'timeout' | 'memory' | 'crashed',
    message: string,
  ) {
    super(message);
    this.name = 'ModelFailure';
  }
}

/** Feeds for a model with one input. */
export const onlyInput = (runner: ModelRunner, input: TensorData): Feeds => ({ [runner.inputNames[0]!]: input });

/** The model's first output. */
export function firstOutput(runner: ModelRunner, outputs: Outputs): TensorData {
  const out = outputs[runner.outputNames[0]!];
  if (!out) throw new Error(`the model gave no output ${JSON.stringify(runner.outputNames[0])}`);
  return out;
}
