/**
 * The models `kernelgate worker` serves, by their Open Inference Protocol names (names.ts): the built-in
 * model files of every task (tasks.ts `files`) in shared worker-thread sessions, and every domain's uploads
 * in models_dir, each in its own killable child process (they are not trusted), reloaded when the upload
 * changes. Each model has its own bounded queue, fair between clients.
 */
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import { defaultIntraOpThreads } from '../inference/providers.js';
import { appendArgmaxOutputs } from '../inference/onnx-augment.js';
import { WorkQueue } from '../inference/queue.js';
import { startIsolatedRunner } from '../inference/runners/ort-process.js';
import { startWorkerRunner } from '../inference/runners/ort-worker.js';
import { customRemoteName, parseCustomRemoteName } from '../inference/runners/kserve/names.js';
import type { MetadataTensor, ModelMetadata } from '../inference/runners/kserve/protocol.js';
import type { ModelDescription, ModelRunner, RawRunner } from '../inference/runners/runner.js';
import { ModelStore } from '../inference/store/model-store.js';
import { BUILTIN_MODELS } from '../inference/tasks.js';
import { datatypeOf } from './tensors.js';

export type DescribedRunner = ModelRunner & ModelDescription & RawRunner;

const dims = (shape: readonly (number | string)[]) => shape.map((d) => (typeof d === 'number' && d >= 0 ? d : -1));

/** Protocol metadata of a loaded model. */
export function describe(name: string, r: DescribedRunner): ModelMetadata {
  const tensors = (names: readonly string[], shapes: readonly (readonly (number | string)[])[], types: readonly string[]): MetadataTensor[] =>
    names.map((n, i) => ({ name: n, datatype: datatypeOf(types[i]), shape: dims(shapes[i] ?? []) }));
  return {
    name,
    versions: ['1'],
    platform: 'onnxruntime_onnx',
    inputs: tensors(r.inputNames, r.inputShapes, r.inputTypes),
    outputs: tensors(r.outputNames, r.outputShapes, r.outputTypes),
  };
}

/** The file as served: with the reduced outputs appended when the model has a watched class. */
export function modelBytes(model: ServedModel): Uint8Array {
  const file = readFileSync(model.path);
  return model.argmaxWatch !== undefined ? appendArgmaxOutputs(file, model.argmaxWatch) : file;
}

export interface ServedModel {
  name: string;
  path: string;
  builtin: boolean;
  /** The watched class when the model is served with its reduced outputs appended (tasks.ts argmaxWatch). */
  argmaxWatch?: number;
  /** Changes when an upload is replaced: a new runner is loaded for it. */
  version: string;
}

interface Live {
  version: string;
  runner: Promise<DescribedRunner>;
  loaded?: DescribedRunner;
}

export class WorkerModels {
  readonly store: ModelStore;
  readonly #cfg: Config['inference'];
  readonly #log: Logger;
  readonly #builtin: Map<string, string>;
  readonly #argmaxWatch: Map<string, number>;
  readonly #live = new Map<string, Live>();
  readonly #queues = new Map<string, WorkQueue>();
  #closed = false;

  constructor(cfg: Config['inference'], log: Logger) {
    this.#cfg = cfg;
    this.#log = log;
    this.store = new ModelStore(cfg.models_dir);
    this.#builtin = new Map(BUILTIN_MODELS.flatMap((m) => Object.entries(m.files())));
    this.#argmaxWatch = new Map(BUILTIN_MODELS.flatMap((m) => Object.entries(m.argmaxWatch?.() ?? {})));
  }

  #builtinModel(name: string, path: string): ServedModel {
    const watch = this.#argmaxWatch.get(name);
    return { name, path, builtin: true, version: path, ...(watch !== undefined ? { argmaxWatch: watch } : {}) };
  }

  /** Every model served now: built-ins, then each domain's uploads. */
  list(): ServedModel[] {
    const builtins = [...this.#builtin].map(([name, path]) => this.#builtinModel(name, path));
    const custom = this.store.list(undefined).map((m) => ({ name: customRemoteName(m.domain, m.config.name), path: m.path, builtin: false, version: m.sha256 }));
    return [...builtins, ...custom];
  }

  find(name: string): ServedModel | undefined {
    const path = this.#builtin.get(name);
    if (path) return this.#builtinModel(name, path);
    const ref = parseCustomRemoteName(name);
    const m = ref && this.store.get(ref.domain, ref.name);
    // The name must be exactly the canonical one (one spelling per model).
    if (!m || customRemoteName(m.domain, m.config.name) !== name) return undefined;
    return { name, path: m.path, builtin: false, version: m.sha256 };
  }

  #sessionOptions() {
    return { providers: this.#cfg.providers, intraOpNumThreads: this.#cfg.threads > 0 ? this.#cfg.threads : defaultIntraOpThreads(), logger: this.#log };
  }

  /** The model's runner, loaded on first use; a dead one (killed custom process) or a replaced upload is loaded afresh. */
  runner(model: ServedModel): Promise<DescribedRunner> {
    if (this.#closed) return Promise.reject(new Error('the worker is shutting down'));
    const live = this.#live.get(model.name);
    if (live && live.version === model.version && !live.loaded?.dead) return live.runner;
    if (live?.loaded) void live.loaded.close();
    const runner: Promise<DescribedRunner> = model.builtin
      ? startWorkerRunner(model.path, { ...this.#sessionOptions(), ...(model.argmaxWatch !== undefined ? { bytes: modelBytes(model) } : {}) })
      : startIsolatedRunner(model.path, {
          ...this.#sessionOptions(),
          loadTimeoutMs: Math.max(this.#cfg.timeout_ms, 60_000),
          runTimeoutMs: this.#cfg.timeout_ms,
          maxMemoryBytes: this.#cfg.model_memory_mb * 1024 * 1024,
          memoryKey: 'inference.model_memory_mb',
        });
    const entry: Live = { version: model.version, runner };
    runner.then(
      (r) => {
        entry.loaded = r;
        this.#log.info({ model: model.name, provider: r.provider }, 'worker: model loaded');
      },
      (err: unknown) => {
        if (this.#live.get(model.name) === entry) this.#live.delete(model.name);
        this.#log.warn({ model: model.name, err }, 'worker: model failed to load');
      },
    );
    this.#live.set(model.name, entry);
    return runner;
  }

  queue(name: string): WorkQueue {
    let q = this.#queues.get(name);
    if (!q) {
      const c = this.#cfg;
      q = new WorkQueue({ concurrency: c.concurrency, maxQueued: c.max_queue, maxQueuedPerOwner: c.max_queue_per_owner, timeoutMs: c.timeout_ms, name });
      this.#queues.set(name, q);
    }
    return q;
  }

  queues(): Array<{ model: string; running: number; queued: number; completed: number; rejected: number; timedOut: number }> {
    return [...this.#queues].map(([model, q]) => ({ model, ...q.stats }));
  }

  /** Whether every built-in model is loaded (what `GET /v2/health/ready` reports). */
  builtinsReady(): boolean {
    return [...this.#builtin.keys()].every((n) => this.#live.get(n)?.loaded && !this.#live.get(n)!.loaded!.dead);
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const q of this.#queues.values()) q.drain('the worker is shutting down');
    const all = [...this.#live.values()];
    this.#live.clear();
    await Promise.allSettled(all.map((l) => l.runner.then((r) => r.close())));
  }
}
