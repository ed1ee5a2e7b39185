import { defaultIntraOpThreads, type SessionOptions } from '../providers.js';
import { startIsolatedRunner, type IsolatedRunnerOptions } from './ort-process.js';
import type { ArgmaxRunner, ModelRunner } from './runner.js';
import { startWorkerRunner } from './ort-worker.js';

/** An uploaded model as a runner source sees it. */
export interface CustomModelRef {
  domain: string;
  name: string;
  /** Its ONNX file in models_dir. */
  path: string;
}

/**
 * Where kernels get their runners: the registry holds one source, chosen from `[inference] backend`:
 * RunnerPool (local ONNX Runtime) or KServeRunners (Open Inference Protocol servers). Kernels only ever
 * see the ModelRunner interface, so every kernel runs unchanged on either.
 */
export interface RunnerSource {
  /** A built-in model's runner, by its file; shared by every kernel that asks for the same one. */
  shared(modelPath: string, opts: SessionOptions): Promise<ArgmaxRunner>;
  /** A fresh runner for an uploaded model, owned (and closed) by the caller. */
  custom(model: CustomModelRef, opts: IsolatedRunnerOptions): Promise<ModelRunner>;
  close(): Promise<void>;
}

/**
 * Worker runners shared by model file, provider list and thread count: every kernel using a built-in
 * model shares one loaded session. Owned by the KernelRegistry (or a test or bench that loads kernels
 * itself) and closed with it, so no worker outlives its owner. Uploaded models each get their own
 * killable child process (ort-process.ts).
 */
export class RunnerPool implements RunnerSource {
  readonly #runners = new Map<string, Promise<ArgmaxRunner>>();
  #closed = false;

  /**
   * The shared runner, started on first use. Concurrent first callers share one load; a failed load or a
   * dead worker is forgotten so that a later call starts afresh.
   */
  shared(modelPath: string, opts: SessionOptions): Promise<ArgmaxRunner> {
    if (this.#closed) return Promise.reject(new Error('the model runners were closed'));
    const intraOpNumThreads = opts.intraOpNumThreads ?? defaultIntraOpThreads();
    const key = `${modelPath}\u0000${opts.providers.join(',')}\u0000${intraOpNumThreads}\u0000${opts.replica ?? 0}`;
    let entry = this.#runners.get(key);
    if (!entry) {
      const forget = () => {
        if (this.#runners.get(key) === entry) this.#runners.delete(key);
      };
      entry = startWorkerRunner(modelPath, { ...opts, intraOpNumThreads }, forget);
      entry.catch(forget);
      this.#runners.set(key, entry);
    }
    return entry;
  }

  custom(model: CustomModelRef, opts: IsolatedRunnerOptions): Promise<ModelRunner> {
    return startIsolatedRunner(model.path, opts);
  }

  /** Stop every worker; runs still pending reject. */
  async close(): Promise<void> {
    this.#closed = true;
    const all = [...this.#runners.values()];
    this.#runners.clear();
    await Promise.allSettled(all.map((r) => r.then((s) => s.close())));
  }
}
