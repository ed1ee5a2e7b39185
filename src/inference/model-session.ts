/**
 * One ONNX Runtime session per model per process, hosted in its own worker thread.
 *
 * Why a worker: onnxruntime-node runs inference synchronously on the calling thread (see
 * session-worker.ts), so a session on the main thread would block the event loop for every run.
 * Why one per model: sessions are large (weights, arenas, thread pools); every kernel and compute session
 * using the model shares the cached one, and the per-model work queue decides how many runs reach it.
 */
import { Worker } from 'node:worker_threads';
import { defaultIntraOpThreads, ProviderLoadError, type ProviderFailure, type SessionOptions } from './providers.js';
import type { ArgmaxSteps, FromWorker, TensorData, ToWorker } from './session-protocol.js';

export type { ArgmaxSteps, TensorData } from './session-protocol.js';

export interface ModelSession {
  readonly modelPath: string;
  /** The execution provider that loaded, e.g. "cpu" or "cuda". */
  readonly provider: string;
  readonly skipped: readonly ProviderFailure[];
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  /** Declared shape of each output (symbolic dimensions as strings). */
  readonly outputShapes: readonly (readonly (number | string)[])[];
  /** Run with one float32 input (the model's first); resolves with the first output. */
  run(input: TensorData): Promise<TensorData>;
  /** Same, but the first output `[N, T, C]` comes back reduced to its per-step arg-max (see ArgmaxSteps). */
  runArgmax(input: TensorData, watchClass: number): Promise<ArgmaxSteps>;
  /** Stop the worker; pending runs reject. */
  close(): Promise<void>;
}

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

type Pending = { resolve: (m: FromWorker) => void; reject: (e: Error) => void };

class WorkerModelSession implements ModelSession {
  readonly modelPath: string;
  provider = '';
  skipped: ProviderFailure[] = [];
  inputNames: string[] = [];
  outputNames: string[] = [];
  outputShapes: (number | string)[][] = [];
  readonly #worker: Worker;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #dead: Error | undefined;
  readonly #onDead: () => void;

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

  async load(opts: { providers: readonly string[]; intraOpNumThreads: number }): Promise<void> {
    const reply = await this.#call({ type: 'load', modelPath: this.modelPath, ...opts }, 0);
    if (reply.type === 'load-error') {
      await this.close();
      throw reply.failures.length > 0 ? new ProviderLoadError(this.modelPath, reply.failures) : new Error(reply.message);
    }
    if (reply.type !== 'loaded') throw new Error(`unexpected reply ${reply.type}`);
    Object.assign(this, { provider: reply.provider, skipped: reply.skipped, inputNames: reply.inputNames, outputNames: reply.outputNames, outputShapes: reply.outputShapes });
  }

  async #runRaw(input: TensorData, reduce: { kind: 'argmax'; watch: number } | undefined): Promise<FromWorker> {
    const id = this.#nextId++;
    const reply = await this.#call({ type: 'run', id, feeds: { [this.inputNames[0]!]: input }, reduce }, id, [input.data.buffer as ArrayBuffer]);
    if (reply.type === 'error') throw new Error(`inference failed (${this.modelPath}): ${reply.message}`);
    return reply;
  }

  async run(input: TensorData): Promise<TensorData> {
    const reply = await this.#runRaw(input, undefined);
    if (reply.type !== 'output') throw new Error(`unexpected reply ${reply.type}`);
    return reply.output;
  }

  async runArgmax(input: TensorData, watchClass: number): Promise<ArgmaxSteps> {
    const reply = await this.#runRaw(input, { kind: 'argmax', watch: watchClass });
    if (reply.type !== 'argmax') throw new Error(`unexpected reply ${reply.type}`);
    return reply.output;
  }

  async close(): Promise<void> {
    this.#onDead();
    await this.#worker.terminate();
  }
}

async function boot(modelPath: string, opts: SessionOptions, onDead: () => void): Promise<ModelSession> {
  const s = new WorkerModelSession(modelPath, onDead);
  await s.load({ providers: opts.providers, intraOpNumThreads: opts.intraOpNumThreads ?? defaultIntraOpThreads() });
  if (s.skipped.length > 0) {
    opts.logger?.warn({ model: modelPath, provider: s.provider, skipped: s.skipped }, 'inference: fell back to a later execution provider');
  }
  return s;
}

/** Start a worker and load the model in it, trying providers in order (see providers.ts). Not cached. */
export function startModelSession(modelPath: string, opts: SessionOptions): Promise<ModelSession> {
  return boot(modelPath, opts, () => undefined);
}

const cache = new Map<string, Promise<ModelSession>>();

/**
 * The process-wide session for this model, provider list and thread count, started on first use.
 * Concurrent first callers share one load; a failed load or a dead worker is forgotten so that a later
 * call starts afresh.
 */
export function getSharedSession(modelPath: string, opts: SessionOptions): Promise<ModelSession> {
  const intraOpNumThreads = opts.intraOpNumThreads ?? defaultIntraOpThreads();
  const key = `${modelPath}\u0000${opts.providers.join(',')}\u0000${intraOpNumThreads}`;
  let entry = cache.get(key);
  if (!entry) {
    const forget = () => {
      if (cache.get(key) === entry) cache.delete(key);
    };
    entry = boot(modelPath, { ...opts, intraOpNumThreads }, forget);
    entry.catch(forget);
    cache.set(key, entry);
  }
  return entry;
}
