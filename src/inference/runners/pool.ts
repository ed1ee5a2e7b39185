import { defaultIntraOpThreads, type SessionOptions } from '../providers.js';
import type { ArgmaxRunner } from './runner.js';
import { startWorkerRunner } from './ort-worker.js';

/**
 * Worker runners shared by model file, provider list and thread count: every kernel using a built-in
 * model shares one loaded session. Owned by the KernelRegistry (or a test or bench that loads kernels
 * itself) and closed with it, so no worker outlives its owner.
 */
export class RunnerPool {
  readonly #runners = new Map<string, Promise<ArgmaxRunner>>();
  #closed = false;

  /**
   * The shared runner, started on first use. Concurrent first callers share one load; a failed load or a
   * dead worker is forgotten so that a later call starts afresh.
   */
  shared(modelPath: string, opts: SessionOptions): Promise<ArgmaxRunner> {
    if (this.#closed) return Promise.reject(new Error('the model runners were closed'));
    const intraOpNumThreads = opts.intraOpNumThreads ?? defaultIntraOpThreads();
    const key = `${modelPath}\u0000${opts.providers.join(',')}\u0000${intraOpNumThreads}`;
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

  /** Stop every worker; runs still pending reject. */
  async close(): Promise<void> {
    this.#closed = true;
    const all = [...this.#runners.values()];
    this.#runners.clear();
    await Promise.allSettled(all.map((r) => r.then((s) => s.close())));
  }
}
