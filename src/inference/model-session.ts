/**
 * One ONNX Runtime session per model per process, hosted in its own worker thread.
 *
 * Why a worker: onnxruntime-node runs inference synchronously on the calling thread (see
 * session-worker.ts), so a session on the main thread would block the event loop for every run.
 * Why one per model: sessions are large (weights, arenas, thread pools); every kernel and compute session
 * using the model shares the cached one, and the per-model work queue decides how many runs reach it.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { defaultIntraOpThreads, ProviderLoadError, reportProvider, type ProviderFailure, type SessionOptions } from './providers.js';
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
  /**
   * Run with one float32 input (the model's first); resolves with the first output. `timeoutMs` is only
   * honoured by isolated sessions (startIsolatedSession), which are killed when a run overstays it.
   */
  run(input: TensorData, opts?: { timeoutMs?: number }): Promise<TensorData>;
  /** Same, but the first output `[N, T, C]` comes back reduced to its per-step arg-max (see ArgmaxSteps). */
  runArgmax(input: TensorData, watchClass: number): Promise<ArgmaxSteps>;
  /** Stop the worker; pending runs reject. */
  close(): Promise<void>;
  /** True once the worker is gone (crashed, killed, closed): start a new session. */
  readonly dead: boolean;
}

/** Why an isolated model session was killed: it overstayed its deadline, outgrew its memory cap, or died. */
export class ModelFailure extends Error {
  constructor(
    readonly kind: 'timeout' | 'memory' | 'crashed',
    message: string,
  ) {
    super(message);
    this.name = 'ModelFailure';
  }
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
    this.#dead ??= new Error('session closed');
    this.#onDead();
    await this.#worker.terminate();
  }
}

export interface IsolatedSessionOptions extends SessionOptions {
  /** Deadline for loading the model, ms. */
  loadTimeoutMs: number;
  /** Deadline for a run that does not give its own, ms. */
  runTimeoutMs: number;
  /** The process is killed when its resident memory exceeds this many bytes (Linux; 0: no cap). */
  maxMemoryBytes: number;
  /** Names the limit in errors, e.g. "inference.model_memory_mb". */
  memoryKey?: string;
}

/** Child processes of live isolated sessions, killed with the gateway whatever way it exits. */
const children = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

function forkWorker(): ChildProcess {
  const here = import.meta.url;
  const stdio: ['ignore', 'pipe', 'pipe', 'ipc'] = ['ignore', 'pipe', 'pipe', 'ipc'];
  if (here.endsWith('.ts')) {
    const tsx = import.meta.resolve('tsx');
    return fork(fileURLToPath(new URL('./session-worker.ts', here)), [], { execArgv: ['--import', tsx], serialization: 'advanced', stdio });
  }
  return fork(fileURLToPath(new URL('./session-worker.js', here)), [], { execArgv: [], serialization: 'advanced', stdio });
}

function residentBytes(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/**
 * One ONNX Runtime session in its own child process, for models nobody vetted (admin uploads).
 *
 * A worker thread cannot be stopped while ORT runs native code (terminate() waits for JavaScript to run
 * again, and ORT's Loop never returns to it), and a crash or an allocation of many GiB inside it takes the
 * gateway down with it. A child process can always be killed. Every call has a deadline and a memory cap;
 * past either, the process is killed and every call pending in it rejects with a ModelFailure. That harms
 * nobody who could still have been served: the process runs one call at a time, so every other pending
 * call was queued behind the stuck one. The model is loaded from bytes, so ONNX external-data references
 * resolve nowhere.
 */
class ProcessModelSession implements ModelSession {
  readonly modelPath: string;
  provider = '';
  skipped: ProviderFailure[] = [];
  inputNames: string[] = [];
  outputNames: string[] = [];
  outputShapes: (number | string)[][] = [];
  readonly #child: ChildProcess;
  readonly #opts: IsolatedSessionOptions;
  readonly #pending = new Map<number, Pending & { timer: NodeJS.Timeout }>();
  #nextId = 1;
  #dead: Error | undefined;
  #watch: NodeJS.Timeout | undefined;

  get dead(): boolean {
    return this.#dead !== undefined;
  }

  constructor(modelPath: string, opts: IsolatedSessionOptions) {
    this.modelPath = modelPath;
    this.#opts = opts;
    this.#child = forkWorker();
    children.add(this.#child);
    this.#child.unref();
    (this.#child as unknown as { channel?: { unref(): void } }).channel?.unref();
    for (const stream of [this.#child.stdout!, this.#child.stderr!]) {
      (stream as unknown as { unref?: () => void }).unref?.();
      // Anything the native runtime prints becomes a JSON log line, never raw text on our stderr.
      createInterface({ input: stream }).on('line', (line) => {
        if (line.trim()) opts.logger?.warn({ model: modelPath, output: line.slice(0, 500) }, 'inference: model process output');
      });
    }
    this.#child.on('message', (msg: FromWorker) => {
      const id = msg.type === 'loaded' || msg.type === 'load-error' ? 0 : msg.id;
      const p = this.#pending.get(id);
      if (!p) return;
      this.#pending.delete(id);
      clearTimeout(p.timer);
      this.#refresh();
      p.resolve(msg);
    });
    this.#child.on('error', (err) => this.#kill(new ModelFailure('crashed', `model process failed: ${err.message}`)));
    this.#child.on('exit', (code, signal) => this.#kill(new ModelFailure('crashed', `model process exited (${signal ?? code})`)));
  }

  /** Keep the gateway alive and the memory watch on only while a call is in flight. */
  #refresh(): void {
    const busy = this.#pending.size > 0 && !this.#dead;
    if (busy) this.#child.ref();
    else this.#child.unref();
    if (busy && !this.#watch && this.#opts.maxMemoryBytes > 0 && process.platform === 'linux') {
      this.#watch = setInterval(() => {
        const rss = this.#child.pid ? residentBytes(this.#child.pid) : 0;
        if (rss > this.#opts.maxMemoryBytes) {
          const mb = Math.round(this.#opts.maxMemoryBytes / 1048576);
          this.#kill(new ModelFailure('memory', `the model used more than ${mb} MB of memory${this.#opts.memoryKey ? ` (${this.#opts.memoryKey})` : ''}`));
        }
      }, 25);
    } else if (!busy && this.#watch) {
      clearInterval(this.#watch);
      this.#watch = undefined;
    }
  }

  #kill(err: Error): void {
    if (this.#dead) return;
    this.#dead = err;
    children.delete(this.#child);
    this.#child.kill('SIGKILL');
    for (const p of this.#pending.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.#pending.clear();
    this.#refresh();
  }

  #call(msg: ToWorker, id: number, timeoutMs: number, what: string): Promise<FromWorker> {
    if (this.#dead) return Promise.reject(this.#dead);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.#kill(new ModelFailure('timeout', `${what} did not finish within ${timeoutMs} ms`)), timeoutMs);
      this.#pending.set(id, { resolve, reject, timer });
      this.#refresh();
      this.#child.send(msg);
    });
  }

  async load(): Promise<void> {
    const msg: ToWorker = { type: 'load', modelPath: this.modelPath, providers: this.#opts.providers, intraOpNumThreads: this.#opts.intraOpNumThreads ?? defaultIntraOpThreads(), fromBytes: true };
    const reply = await this.#call(msg, 0, this.#opts.loadTimeoutMs, 'loading the model');
    if (reply.type === 'load-error') {
      await this.close();
      throw reply.failures.length > 0 ? new ProviderLoadError('the model', reply.failures) : new Error(reply.message);
    }
    if (reply.type !== 'loaded') throw new Error(`unexpected reply ${reply.type}`);
    Object.assign(this, { provider: reply.provider, skipped: reply.skipped, inputNames: reply.inputNames, outputNames: reply.outputNames, outputShapes: reply.outputShapes });
  }

  async run(input: TensorData, opts: { timeoutMs?: number } = {}): Promise<TensorData> {
    const id = this.#nextId++;
    const timeoutMs = opts.timeoutMs ?? this.#opts.runTimeoutMs;
    const reply = await this.#call({ type: 'run', id, feeds: { [this.inputNames[0]!]: input } }, id, timeoutMs, 'the model run');
    if (reply.type === 'error') throw new Error(`inference failed: ${reply.message}`);
    if (reply.type !== 'output') throw new Error(`unexpected reply ${reply.type}`);
    return reply.output;
  }

  runArgmax(): Promise<ArgmaxSteps> {
    return Promise.reject(new Error('runArgmax is not offered by isolated sessions'));
  }

  async close(): Promise<void> {
    this.#kill(new ModelFailure('crashed', 'session closed'));
  }
}

/**
 * Start a child process and load the model in it (see ProcessModelSession). Not cached: the caller owns
 * it and closes it. A load that overstays `loadTimeoutMs` or the memory cap rejects with a ModelFailure.
 */
export async function startIsolatedSession(modelPath: string, opts: IsolatedSessionOptions): Promise<ModelSession> {
  const s = new ProcessModelSession(modelPath, opts);
  try {
    await s.load();
  } catch (err) {
    await s.close();
    throw err;
  }
  reportProvider(opts.logger, opts.providers, s.provider, s.skipped);
  return s;
}

async function boot(modelPath: string, opts: SessionOptions, onDead: () => void): Promise<ModelSession> {
  const s = new WorkerModelSession(modelPath, onDead);
  await s.load({ providers: opts.providers, intraOpNumThreads: opts.intraOpNumThreads ?? defaultIntraOpThreads() });
  reportProvider(opts.logger, opts.providers, s.provider, s.skipped);
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
