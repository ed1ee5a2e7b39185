/**
 * The runner for uploaded models: one ONNX Runtime session in its own child process, with a deadline on
 * every call and a memory cap.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { defaultIntraOpThreads, ProviderLoadError, reportProvider, type ProviderFailure, type SessionOptions } from '../providers.js';
import { ModelFailure, type Feeds, type ModelDescription, type ModelRunner, type Outputs, type RawRunner, type RunOptions } from './runner.js';
import { loadedDescription, type FromWorker, type Pending, type RawTensor, type ToWorker } from './session-protocol.js';

export interface IsolatedRunnerOptions extends SessionOptions {
  /** Deadline for loading the model, ms. */
  loadTimeoutMs: number;
  /** Deadline for a run that does not give its own, ms. */
  runTimeoutMs: number;
  /** The process is killed when its resident memory exceeds this many bytes (Linux; 0: no cap). */
  maxMemoryBytes: number;
  /** Names the limit in errors, e.g. "inference.model_memory_mb". */
  memoryKey?: string;
}

/** Child processes of live isolated runners, killed with the gateway whatever way it exits (process-wide on purpose: the exit hook must reach every child, whichever registry started it). */
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
class ProcessRunner implements ModelRunner, ModelDescription, RawRunner {
  readonly modelPath: string;
  provider = '';
  skipped: ProviderFailure[] = [];
  inputNames: string[] = [];
  outputNames: string[] = [];
  outputShapes: (number | string)[][] = [];
  inputShapes: (number | string)[][] = [];
  inputTypes: string[] = [];
  outputTypes: string[] = [];
  readonly #child: ChildProcess;
  readonly #opts: IsolatedRunnerOptions;
  readonly #pending = new Map<number, Pending & { timer: NodeJS.Timeout }>();
  #nextId = 1;
  #dead: Error | undefined;
  #watch: NodeJS.Timeout | undefined;

  get dead(): boolean {
    return this.#dead !== undefined;
  }

  constructor(modelPath: string, opts: IsolatedRunnerOptions) {
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
    Object.assign(this, loadedDescription(reply));
  }

  async run(feeds: Feeds, opts: RunOptions = {}): Promise<Outputs> {
    const id = this.#nextId++;
    const timeoutMs = opts.timeoutMs ?? this.#opts.runTimeoutMs;
    const reply = await this.#call({ type: 'run', id, feeds, allOutputs: opts.allOutputs === true, outputs: opts.outputs }, id, timeoutMs, 'the model run');
    if (reply.type === 'outputs') return reply.outputs;
    if (reply.type === 'error') throw new Error(`inference failed: ${reply.message}`);
    if (reply.type !== 'output') throw new Error(`unexpected reply ${reply.type}`);
    return { [this.outputNames[0]!]: reply.output };
  }

  /** Inputs and outputs in their own element types (kernelgate worker), under the same deadline and memory cap. */
  async runRaw(feeds: Record<string, RawTensor>, opts: { outputs: readonly string[]; timeoutMs?: number }): Promise<Record<string, RawTensor>> {
    const id = this.#nextId++;
    const reply = await this.#call({ type: 'run-raw', id, feeds, outputs: opts.outputs }, id, opts.timeoutMs ?? this.#opts.runTimeoutMs, 'the model run');
    if (reply.type === 'error') throw new Error(`inference failed: ${reply.message}`);
    if (reply.type !== 'raw-outputs') throw new Error(`unexpected reply ${reply.type}`);
    return reply.outputs;
  }

  async close(): Promise<void> {
    this.#kill(new ModelFailure('crashed', 'session closed'));
  }
}

/**
 * Start a child process and load the model in it (see ProcessRunner). Not cached: the caller owns
 * it and closes it. A load that overstays `loadTimeoutMs` or the memory cap rejects with a ModelFailure.
 */
export async function startIsolatedRunner(modelPath: string, opts: IsolatedRunnerOptions): Promise<ModelRunner & ModelDescription & RawRunner> {
  const s = new ProcessRunner(modelPath, opts);
  try {
    await s.load();
  } catch (err) {
    await s.close();
    throw err;
  }
  reportProvider(opts.logger, opts.providers, s.provider, s.skipped);
  return s;
}
