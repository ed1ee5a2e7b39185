/**
 * The runner source for `[inference] backend = "kserve"`: every model, built-in or uploaded, runs on the
 * Open Inference Protocol servers of `kserve_urls` under its remote name (names.ts). One BackendSet is
 * shared by every runner, so load balancing, ejection and metrics see all of the gateway's traffic.
 */
import { resolve } from 'node:path';
import type { Registry } from 'prom-client';
import type { InferenceLogger, SessionOptions } from '../../providers.js';
import type { CustomModelRef, RunnerSource } from '../pool.js';
import type { ArgmaxRunner, ModelRunner } from '../runner.js';
import { BackendSet, type BackendSetOptions } from './backends.js';
import { customRemoteName, fileRemoteName } from './names.js';
import { KServeRunner, type TensorEncoding } from './runner.js';

export interface KServeRunnersOptions extends Omit<BackendSetOptions, 'logger' | 'metrics'> {
  tensors: TensorEncoding;
  /** Remote names of the built-in model files (tasks.ts `files`), by absolute path. */
  builtinNames: ReadonlyMap<string, string>;
  logger?: InferenceLogger;
  metrics?: Registry;
}

export class KServeRunners implements RunnerSource {
  readonly backends: BackendSet;
  readonly #opts: KServeRunnersOptions;
  readonly #shared = new Map<string, Promise<KServeRunner>>();

  constructor(opts: KServeRunnersOptions) {
    this.#opts = opts;
    this.backends = new BackendSet(opts);
  }

  /** The remote name of a built-in model file. */
  nameOf(modelPath: string): string {
    return this.#opts.builtinNames.get(resolve(modelPath)) ?? fileRemoteName(modelPath);
  }

  #load(model: string): Promise<KServeRunner> {
    return KServeRunner.load(model, { backends: this.backends, tensors: this.#opts.tensors, logger: this.#opts.logger });
  }

  shared(modelPath: string, _opts: SessionOptions): Promise<ArgmaxRunner> {
    const model = this.nameOf(modelPath);
    let entry = this.#shared.get(model);
    if (!entry) {
      entry = this.#load(model);
      this.#shared.set(model, entry);
      // A load that failed (no backend up yet) is tried again by the next request.
      entry.catch(() => this.#shared.get(model) === entry && this.#shared.delete(model));
    }
    return entry;
  }

  custom(model: CustomModelRef): Promise<ModelRunner> {
    return this.#load(customRemoteName(model.domain, model.name));
  }

  async close(): Promise<void> {
    this.backends.close();
    this.#shared.clear();
  }
}
