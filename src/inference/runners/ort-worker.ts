/**
 * The runner for built-in models: one ONNX Runtime session in its own worker thread.
 *
 * Why a worker: onnxruntime-node runs inference synchronously on the calling thread (see
 * session-worker.ts), so a session on the main thread would block the event loop for every run.
 * Sessions are large (weights, arenas, thread pools): RunnerPool (pool.ts) shares one per model, and the
 * kernel's work queue decides how many runs reach it.
 */
import { Worker } from 'node:worker_threads';
import { defaultIntraOpThreads, ProviderLoadError, reportProvider, type ProviderFailure, type SessionOptions } from '../providers.js';
import type { ArgmaxRunner, Feeds, ModelDescription, Outputs, RawRunner, RunOptions } from './runner.js';
import { buffersOf, loadedDescription, type ArgmaxSteps, type FromWorker, type Pending, type RawTensor, type ToWorker } from './session-protocol.js';

/** Under tsx (tests, `node --import tsx`) this file is .ts and so is the worker; compiled, both are .js. */
function spawnWorker(): Worker {
  const here = import.meta.url;
  if (here.endsWith('.ts')) {
    // Loader hooks given by --import are not active for a worker's entry module on Node 20, so the
    // worker registers tsx itself before importing the TypeScript source.
    const tsx = import.meta.resolve('tsx/esm/api');
    const target = new URL('./session-worker.ts', here).href;
    const code = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(target)}); });`;
    return new Worker(code, { eval: true, execArgv: [] });
  }
  return new Worker(new URL('./session-worker.js', here));
}

class WorkerRunner implements ArgmaxRunner, ModelDescription, RawRunner {
  readonly modelPath: string;
  provider = '';
  skipped: ProviderFailure[] = [];
  inputNames: string[] = [];
  outputNames: string[] = [];
  outputShapes: (number | string)[][] = [];
  inputShapes: (number | string)[][] = [];
  inputTypes: string[] = [];
  outputTypes: string[] = [];
  readonly #worker: Worker;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #dead: Error | undefined;
  readonly #onDead: () => void;

  get dead(): boolean {
    return this.#dead !== undefined;
  }

  constructor(modelPath: string, onDead: () => void) {
    this.modelPath = modelPath;
    this.#onDead = onDead;
    this.#worker = spawnWorker();
    this.#worker.unref(); // an idle model must not keep the process alive
    this.#worker.on('message', (msg: FromWorker) => {
      const id = msg.type === 'loaded' || msg.type === 'load-error' ? 0 : msg.id;
      const p = this.#pending.get(id);
      if (!p) return;
      this.#pending.delete(id);
      this.#refresh();
      p.resolve(msg);
    });
    const die = (err: Error) => {
      if (this.#dead) return;
      this.#dead = err;
      this.#onDead();
      for (const p of this.#pending.values()) p.reject(err);
      this.#pending.clear();
    };
    this.#worker.on('error', (err) => die(err instanceof Error ? err : new Error(String(err))));
    this.#worker.on('exit', (code) => die(new Error(`inference worker for ${modelPath} exited (${code})`)));
  }

  /** Keep the process alive only while a request is in flight. */
  #refresh(): void {
    if (this.#pending.size > 0) this.#worker.ref();
    else this.#worker.unref();
  }

  #call(msg: ToWorker, id: number, transfer: ArrayBuffer[] = []): Promise<FromWorker> {
    if (this.#dead) return Promise.reject(this.#dead);
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#refresh();
      this.#worker.postMessage(msg, transfer);
    });
  }

  async load(opts: { providers: readonly string[]; intraOpNumThreads: number; bytes?: Uint8Array }): Promise<void> {
    const reply = await this.#call({ type: 'load', modelPath: this.modelPath, ...opts }, 0);
    if (reply.type === 'load-error') {
      await this.close();
      throw reply.failures.length > 0 ? new ProviderLoadError(this.modelPath, reply.failures) : new Error(reply.message);
    }
    if (reply.type !== 'loaded') throw new Error(`unexpected reply ${reply.type}`);
    Object.assign(this, loadedDescription(reply));
  }

  async #runFloat(feeds: Feeds, reduce: { kind: 'argmax'; watch: number } | undefined, opts: RunOptions = {}): Promise<FromWorker> {
    const id = this.#nextId++;
    const reply = await this.#call({ type: 'run', id, feeds, reduce, allOutputs: opts.allOutputs === true, outputs: opts.outputs }, id, Object.values(feeds).map((t) => t.data.buffer as ArrayBuffer));
    if (reply.type === 'error') throw new Error(`inference failed (${this.modelPath}): ${reply.message}`);
    return reply;
  }

  /** `timeoutMs` is not honoured: a worker thread cannot be stopped inside ORT (see ort-process.ts). */
  async run(feeds: Feeds, opts: RunOptions = {}): Promise<Outputs> {
    const reply = await this.#runFloat(feeds, undefined, opts);
    if (reply.type === 'outputs') return reply.outputs;
    if (reply.type !== 'output') throw new Error(`unexpected reply ${reply.type}`);
    return { [this.outputNames[0]!]: reply.output };
  }

  /** Inputs and outputs in their own element types (kernelgate worker); input buffers are transferred. */
  async runRaw(feeds: Record<string, RawTensor>, opts: { outputs: readonly string[] }): Promise<Record<string, RawTensor>> {
    const id = this.#nextId++;
    const reply = await this.#call({ type: 'run-raw', id, feeds, outputs: opts.outputs }, id, buffersOf(Object.values(feeds)));
    if (reply.type === 'error') throw new Error(`inference failed (${this.modelPath}): ${reply.message}`);
    if (reply.type !== 'raw-outputs') throw new Error(`unexpected reply ${reply.type}`);
    return reply.outputs;
  }

  async runArgmax(feeds: Feeds, watchClass: number): Promise<ArgmaxSteps> {
    const reply = await this.#runFloat(feeds, { kind: 'argmax', watch: watchClass });
    if (reply.type !== 'argmax') throw new Error(`unexpected reply ${reply.type}`);
    return reply.output;
  }

  async close(): Promise<void> {
    this.#dead ??= new Error('session closed');
    this.#onDead();
    await this.#worker.terminate();
  }
}

/**
 * Start a worker and load the model in it, trying providers in order (see providers.ts). Not cached:
 * RunnerPool shares them. `onDead` runs once when the worker is gone (crashed, exited, closed). With
 * `bytes`, the session is made from them (an edited model) and `modelPath` only names it.
 */
export async function startWorkerRunner(modelPath: string, opts: SessionOptions & { bytes?: Uint8Array }, onDead: () => void = () => undefined): Promise<ArgmaxRunner & ModelDescription & RawRunner> {
  const s = new WorkerRunner(modelPath, onDead);
  await s.load({ providers: opts.providers, intraOpNumThreads: opts.intraOpNumThreads ?? defaultIntraOpThreads(), bytes: opts.bytes });
  reportProvider(opts.logger, opts.providers, s.provider, s.skipped);
  return s;
}
