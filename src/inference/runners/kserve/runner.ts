/**
 * A ModelRunner whose model runs on Open Inference Protocol servers (Triton, OpenVINO Model Server,
 * KServe, `kernelgate worker`). Kernels see the same interface as with the local ONNX Runtime runners:
 * float32 tensors in, the first output out; only tensors cross the network.
 *
 * At load it asks a backend whether the model is ready and reads its metadata: every input must be FP32
 * (what kernels send) and the first output numeric; each run's feeds are checked against the declared
 * names and shapes (-1: any size) before anything is sent.
 */
import { ApiError, unavailable } from '../../../problems/api-error.js';
import type { InferenceLogger } from '../../providers.js';
import { ctcArgmax } from '../../ocr/ctc.js';
import { ARGMAX_OUTPUT, argmaxWatchOf, MAXPROB_OUTPUT, WATCH_PREFIX } from '../../onnx-augment.js';
import type { ArgmaxRunner, ArgmaxSteps, Feeds, Outputs, RunOptions } from '../runner.js';
import type { BackendSet } from './backends.js';
import { modelPath } from './names.js';
import {
  decodeError, decodeInferResponse, decodeModelMetadata, encodeInferRequest, fitsShape, halfToFloat, parseHeaderLength, parseReady,
  ProtocolError, type MetadataTensor, type Tensor,
} from './protocol.js';

export type TensorEncoding = 'auto' | 'binary' | 'json';

export interface KServeRunnerOptions {
  backends: BackendSet;
  tensors: TensorEncoding;
  logger?: InferenceLogger;
}

const NUMERIC = new Set(['UINT8', 'UINT16', 'UINT32', 'UINT64', 'INT8', 'INT16', 'INT32', 'INT64', 'FP16', 'FP32', 'FP64']);

/** Output values as float32 (kernels read float32; other numeric types are converted). */
function toFloat32(t: Tensor): Float32Array {
  if (t.data instanceof Float32Array) return t.data;
  if (t.datatype === 'FP16') return Float32Array.from(t.data as Uint16Array, halfToFloat);
  if (t.data instanceof BigInt64Array || t.data instanceof BigUint64Array) return Float32Array.from(t.data, (v) => Number(v));
  if (Array.isArray(t.data)) throw new ProtocolError(`output ${t.name} is ${t.datatype}, not numeric`);
  return Float32Array.from(t.data as Float64Array);
}

export class KServeRunner implements ArgmaxRunner {
  readonly provider = 'kserve';
  inputNames: string[] = [];
  outputNames: string[] = [];
  outputShapes: (number | string)[][] = [];
  #inputs: MetadataTensor[] = [];
  /** The watched class of the model's reduced arg-max outputs, when it has them. */
  #argmaxWatch: number | undefined;
  #binary = true;
  #closed = false;
  #nextId = 1;

  readonly #opts: KServeRunnerOptions;

  private constructor(
    /** The model's name on the servers (names.ts). */
    readonly model: string,
    opts: KServeRunnerOptions,
  ) {
    this.#opts = opts;
  }

  get dead(): boolean {
    return this.#closed;
  }

  /** Ready and metadata from the first backend that answers both; a server fault (503) when none does. */
  static async load(model: string, opts: KServeRunnerOptions): Promise<KServeRunner> {
    const runner = new KServeRunner(model, opts);
    await runner.#load();
    return runner;
  }

  async #load(): Promise<void> {
    const { backends } = this.#opts;
    const ready = await backends.exchange(this.model, { method: 'GET', path: `${modelPath(this.model)}/ready` });
    if (!parseReady(ready.res.status, ready.res.body)) {
      this.#opts.logger?.warn({ backend: ready.backend.label, model: this.model, status: ready.res.status, error: decodeError(ready.res.body) }, 'inference backend: model not ready');
      throw unavailable(`Model ${this.model} is not ready on the inference backend; retry later.`, 5);
    }
    const meta = await backends.exchange(this.model, { method: 'GET', path: modelPath(this.model) });
    if (meta.res.status !== 200) {
      this.#opts.logger?.warn({ backend: meta.backend.label, model: this.model, status: meta.res.status, error: decodeError(meta.res.body) }, 'inference backend: no model metadata');
      throw unavailable(`The inference backend gave no metadata for model ${this.model}; retry later.`, 5);
    }
    let parsed;
    try {
      parsed = decodeModelMetadata(meta.res.body);
      const wrongInput = parsed.inputs.find((t) => t.datatype !== 'FP32');
      if (parsed.inputs.length === 0 || parsed.outputs.length === 0) throw new ProtocolError('the model declares no inputs or no outputs');
      if (wrongInput) throw new ProtocolError(`input ${wrongInput.name} is ${wrongInput.datatype}; kernels send FP32`);
      if (!NUMERIC.has(parsed.outputs[0]!.datatype)) throw new ProtocolError(`output ${parsed.outputs[0]!.name} is ${parsed.outputs[0]!.datatype}, not numeric`);
    } catch (error) {
      this.#opts.logger?.warn({ backend: meta.backend.label, model: this.model, detail: (error as Error).message }, 'inference backend: model metadata refused');
      throw unavailable(`Model ${this.model} on the inference backend does not fit: ${(error as Error).message}.`, 30);
    }
    this.#inputs = parsed.inputs;
    this.inputNames = parsed.inputs.map((t) => t.name);
    this.outputNames = parsed.outputs.map((t) => t.name);
    this.#argmaxWatch = argmaxWatchOf(parsed.outputs);
    // As the local runners report them: variable dimensions are not numbers.
    this.outputShapes = parsed.outputs.map((t) => t.shape.map((d) => (d === -1 ? '?' : d)));
    this.#binary = this.#opts.tensors !== 'json' && (this.#opts.tensors === 'binary' || (await this.#serverHasBinary()));
  }

  /** 'auto': binary tensors unless the server lists its extensions and binary_tensor_data is not one. */
  async #serverHasBinary(): Promise<boolean> {
    try {
      const { res } = await this.#opts.backends.exchange(this.model, { method: 'GET', path: '/v2' });
      const ext = (JSON.parse(res.body.toString('utf8')) as { extensions?: unknown }).extensions;
      return !Array.isArray(ext) || ext.includes('binary_tensor_data');
    } catch {
      return true;
    }
  }

  /** Binary or JSON tensors (after load). */
  get binary(): boolean {
    return this.#binary;
  }

  async run(feeds: Feeds, opts: RunOptions = {}): Promise<Outputs> {
    // The first output only, unless the kernel asks for all (BlazeFace has four): less to send back.
    const wanted = opts.outputs ?? (opts.allOutputs ? this.outputNames : [this.outputNames[0]!]);
    const decoded = await this.#infer(feeds, wanted, opts.timeoutMs, (out) => ({ data: toFloat32(out), dims: out.shape }));
    return Object.fromEntries(wanted.map((name, i) => [name, decoded[i]!]));
  }

  /** One inference asking for `wanted` outputs; each is converted by `read` (a refusal there is an unreadable answer). */
  async #infer<T>(feeds: Feeds, wanted: readonly string[], timeoutMs: number | undefined, read: (t: Tensor) => T): Promise<T[]> {
    if (this.#closed) throw new Error(`runner for ${this.model} closed`);
    const inputs: Tensor[] = Object.entries(feeds).map(([name, t]) => {
      const declared = this.#inputs.find((i) => i.name === name);
      if (!declared || !fitsShape(t.dims, declared.shape)) {
        throw unavailable(`Model ${this.model} on the inference backend does not take input ${name} [${t.dims.join(', ')}] (it declares ${declared ? `[${declared.shape.join(', ')}]` : 'no such input'}).`, 30);
      }
      return { name, datatype: 'FP32', shape: t.dims, data: t.data };
    });
    const body = encodeInferRequest(
      { id: String(this.#nextId++), inputs, outputs: wanted.map((name) => ({ name, binary: this.#binary })), binaryOutput: this.#binary },
      { binary: this.#binary },
    );
    const headers: Record<string, string | number> = { 'content-type': body.contentType };
    if (body.headerLength !== undefined) headers['inference-header-content-length'] = body.headerLength;
    const { backend, res } = await this.#opts.backends.exchange(this.model, { method: 'POST', path: `${modelPath(this.model)}/infer`, headers, chunks: body.chunks, timeoutMs });
    if (res.status !== 200) throw this.#refused(backend.label, res.status, res.headers['retry-after'], res.body);
    try {
      const decoded = decodeInferResponse(res.body, parseHeaderLength(res.headers['inference-header-content-length'] as string | undefined, res.body.length));
      return wanted.map((name) => {
        const out = decoded.outputs.find((t) => t.name === name);
        if (!out) throw new ProtocolError(`the answer has no output ${name}`);
        return read(out);
      });
    } catch (error) {
      this.#opts.logger?.warn({ backend: backend.label, model: this.model, detail: (error as Error).message }, 'inference backend: answer refused');
      throw unavailable('The inference backend gave an answer that could not be read; retry later.', 1);
    }
  }

  /** The backend's `{"error": ...}` as a problem: its text goes to the log only (it may name server internals). */
  #refused(backend: string, status: number, retryAfter: string | string[] | undefined, body: Buffer): ApiError {
    this.#opts.logger?.warn({ backend, model: this.model, status, error: decodeError(body)?.slice(0, 500) }, 'inference backend refused a job');
    if (status === 503 || status === 429) {
      const seconds = Number(Array.isArray(retryAfter) ? retryAfter[0] : retryAfter);
      return unavailable(`The inference backend is busy; retry later.`, Number.isInteger(seconds) && seconds > 0 && seconds < 3600 ? seconds : 1);
    }
    if (status === 504) return new ApiError(504, 'gateway-timeout', 'The inference backend did not finish in time.');
    return unavailable(`The inference backend refused the job (HTTP ${status}); retry later.`, 5);
  }

  /**
   * Per-step arg-max of the `[N, T, C]` output. When the served model has the reduced outputs for this
   * watched class (`kernelgate worker`, or Triton serving its exported repository: onnx-augment.ts), only
   * those `[N, T]` tensors are asked for; otherwise (a server with the original model) the whole output
   * crosses the network and is reduced here.
   */
  async runArgmax(feeds: Feeds, watchClass: number): Promise<ArgmaxSteps> {
    if (this.#argmaxWatch !== watchClass) {
      const out = (await this.run(feeds))[this.outputNames[0]!]!;
      return ctcArgmax(out.data, out.dims, watchClass);
    }
    const [index, prob, watched] = await this.#infer(feeds, [ARGMAX_OUTPUT, MAXPROB_OUTPUT, `${WATCH_PREFIX}${watchClass}`], undefined, (t) => {
      if (t.shape.length !== 2) throw new ProtocolError(`output ${t.name} has shape [${t.shape.join(', ')}], not [N, T]`);
      return { shape: t.shape, data: t.data instanceof BigInt64Array ? Int32Array.from(t.data, Number) : toFloat32(t) };
    });
    const [batch, steps] = index!.shape as [number, number];
    if ([prob, watched].some((t) => t!.shape[0] !== batch || t!.shape[1] !== steps) || index!.data instanceof Float32Array) {
      this.#opts.logger?.warn({ model: this.model }, 'inference backend: reduced outputs do not agree');
      throw unavailable('The inference backend gave an answer that could not be read; retry later.', 1);
    }
    return { batch, steps, index: index!.data as Int32Array, prob: prob!.data as Float32Array, watched: watched!.data as Float32Array };
  }

  async close(): Promise<void> {
    this.#closed = true;
  }
}
