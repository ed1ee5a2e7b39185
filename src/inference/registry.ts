import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Config } from '../config/config.js';
import { ApiError } from '../problems/api-error.js';
import type { InferenceResult, InferOptions, Kernel, Task } from './kernel.js';
import { externalDataReferences, externalDataReferencesInFile } from './onnx-inspect.js';
import { WorkQueue } from './queue.js';
import { startIsolatedRunner } from './runners/ort-process.js';
import { KServeRunners } from './runners/kserve/source.js';
import { RunnerPool, type RunnerSource } from './runners/pool.js';
import { ModelFailure } from './runners/runner.js';
import type { ModelConfig } from './store/model-config.js';
import { LEGACY_DOMAIN, ModelStore, type StoredModel } from './store/model-store.js';
import { BUILTIN_MODELS, CUSTOM_TASKS, type BuiltinModel, type CustomKernel } from './tasks.js';

export interface ModelInfo {
  name: string;
  /** The domain of a custom model; built-in models have none (every domain sees them). */
  domain?: string;
  task: Task;
  builtin: boolean;
  loaded: boolean;
  provider: string | null;
  input?: { width: number; height: number };
  labels?: number;
  sha256?: string;
  bytes?: number;
  created_at?: string;
}

/** Custom models are per domain: the same name in two domains is two models. */
function customKey(domain: string, name: string): string {
  return `${domain}/${name}`;
}

/**
 * Why ONNX Runtime refused a model, in words that name no server path or
 * internal: the full error goes to the log only.
 */
export function safeLoadReason(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  if (/^the model outputs \d+ scores for \d+ labels$/.test(message)) return message;
  if (/^the model's output has shape \[[\d, ]{0,80}\], not [^\n]{0,80} for \d+ labels \(format yolov[58]\)$/.test(message)) return message;
  if (/protobuf|parsing failed|invalid_protobuf|model_proto/i.test(message)) return 'the file is not a valid ONNX model';
  if (/opset|not implemented|no_suchfile|unsupported|could not find an implementation/i.test(message)) return 'the model uses an operator or opset this ONNX Runtime does not support';
  if (/shape|dimension|dims|invalid_argument|rank/i.test(message)) return 'the model does not accept a 1x3xHxW float input of the declared size';
  return 'the model failed to load or to run on a blank input';
}

/** A re-upload that changes only the config (labels, normalization) is a new model too. */
const versionOf = (m: StoredModel) => `${m.sha256}:${JSON.stringify(m.config)}`;

interface Builtin {
  spec: BuiltinModel;
  kernel?: Promise<Kernel>;
  loaded?: Kernel;
}

/** A loaded custom model, tagged with the version (file hash and config) it was loaded from. */
interface LiveCustom {
  version: string;
  kernel: Promise<CustomKernel>;
  loaded?: CustomKernel;
}

/**
 * The models compute sessions can run: the built-in ones (tasks.ts) and each domain's uploads. Each is
 * loaded on first use and shared by every session of it (one kernel per model). The registry owns every
 * kernel and runner it loads: close() releases them all.
 */
export class KernelRegistry {
  private readonly builtins = new Map<string, Builtin>(BUILTIN_MODELS.map((spec) => [spec.name, { spec }]));
  /** By customKey(domain, name). */
  private readonly custom = new Map<string, LiveCustom>();
  /** Where every model runs: local ONNX Runtime, or Open Inference Protocol servers (`[inference] backend`). */
  private readonly runners: RunnerSource;
  readonly store: ModelStore;

  constructor(
    private readonly cfg: Config['inference'],
    private readonly log: Logger,
    /** Where per-backend series go when models run on remote servers (the gateway's /metrics registry). */
    metrics?: Registry,
  ) {
    this.store = new ModelStore(cfg.models_dir);
    this.runners = cfg.backend === 'kserve' ? this.remoteRunners(metrics) : new RunnerPool();
    const moved = this.store.migrateLegacy();
    if (moved.length > 0) log.info({ models: moved, domain: LEGACY_DOMAIN }, 'models from before domains moved into the default domain');
    const finished = this.store.recoverRestores();
    if (finished.length > 0) log.warn({ restores: finished }, 'finished model restores that a stop interrupted after their commit');
  }

  /** Built-in models are seen by every domain; custom ones only by their own. */
  has(domain: string, name: string): boolean {
    return this.builtins.has(name) || this.store.get(domain, name) !== undefined;
  }

  /** Whether `name` is a built-in model (ocr, and face where that kernel is registered). */
  isBuiltin(name: string): boolean {
    return this.builtins.has(name);
  }

  /** The built-in models and the custom models of `domain` (of every domain when undefined). */
  list(domain?: string): ModelInfo[] {
    return [
      ...[...this.builtins.values()].map(({ spec, loaded }): ModelInfo => ({ name: spec.name, task: spec.task, builtin: true, loaded: loaded !== undefined, provider: loaded?.provider ?? null })),
      ...this.store.list(domain).map((m) => {
        const live = this.custom.get(customKey(m.domain, m.config.name));
        const loaded = live?.version === versionOf(m) ? live.loaded : undefined;
        return {
          name: m.config.name,
          domain: m.domain,
          task: m.config.task,
          builtin: false,
          loaded: loaded !== undefined,
          provider: loaded?.provider ?? null,
          input: { width: m.config.input.width, height: m.config.input.height },
          labels: m.config.labels.length,
          sha256: m.sha256,
          bytes: m.bytes,
          created_at: m.createdAt,
        };
      }),
    ];
  }

  private remoteRunners(metrics?: Registry): KServeRunners {
    const c = this.cfg;
    const builtinNames = new Map(BUILTIN_MODELS.flatMap((m) => Object.entries(m.files()).map(([name, path]) => [resolve(path), name] as const)));
    return new KServeRunners({
      urls: c.kserve_urls,
      token: c.kserve_token,
      tensors: c.kserve_tensors,
      timeoutMs: c.kserve_timeout_ms,
      connectTimeoutMs: c.kserve_connect_timeout_ms,
      healthIntervalMs: c.kserve_health_interval_ms,
      ejectMs: c.kserve_eject_ms,
      maxResponseBytes: c.kserve_max_response_bytes,
      builtinNames,
      logger: this.log,
      metrics,
    });
  }

  private sessionOptions() {
    return { providers: this.cfg.providers, intraOpNumThreads: this.cfg.threads > 0 ? this.cfg.threads : undefined, logger: this.log };
  }

  /** `probe`: an upload being checked, which always runs here (no backend has its file). */
  private newKernel(config: ModelConfig, path: string, domain: string, probe = false): Promise<CustomKernel> {
    const queue = new WorkQueue({ concurrency: this.cfg.concurrency, maxQueued: this.cfg.max_queue, maxQueuedPerOwner: this.cfg.max_queue_per_owner, timeoutMs: this.cfg.timeout_ms, name: config.name });
    const limits = { maxBytes: this.cfg.max_image_bytes, maxPixels: this.cfg.max_image_pixels };
    // Uploaded models run in child processes with a deadline and a memory cap (runners/ort-process.ts).
    const isolated = {
      ...this.sessionOptions(),
      loadTimeoutMs: Math.max(this.cfg.timeout_ms, 60_000),
      runTimeoutMs: this.cfg.timeout_ms,
      maxMemoryBytes: this.cfg.model_memory_mb * 1024 * 1024,
      memoryKey: 'inference.model_memory_mb',
    };
    const start = probe ? () => startIsolatedRunner(path, isolated) : () => this.runners.custom({ domain, name: config.name, path }, isolated);
    return CUSTOM_TASKS[config.task]({ config, queue, limits, timeoutMs: this.cfg.timeout_ms, logger: this.log, start });
  }

  /** The loaded kernel of a stored model; reloaded when the file or its config changed (a re-upload, or another replica's). */
  private customKernel(model: StoredModel): Promise<CustomKernel> {
    const key = customKey(model.domain, model.config.name);
    const live = this.custom.get(key);
    const version = versionOf(model);
    if (live?.version === version) return live.kernel;
    // The old version finishes what it has in flight, then releases its session (never mid-run).
    if (live) void live.kernel.then((k) => k.retire(), () => undefined);
    const entry: LiveCustom = { version, kernel: this.newKernel(model.config, model.path, model.domain) };
    entry.kernel.then(
      (k) => (entry.loaded = k),
      () => this.custom.get(key) === entry && this.custom.delete(key),
    );
    this.custom.set(key, entry);
    return entry.kernel;
  }

  /**
   * Checks an uploaded model, then stores it (see verify()). A file that fails is a 400, and nothing is kept.
   * `onnx`: the bytes, or a file holding them (a spooled upload: checked where it lies, then moved into the
   * store, never read into memory).
   */
  async install(domain: string, config: ModelConfig, onnx: Buffer | { path: string; sha256?: string }): Promise<{ model: StoredModel; replaced: boolean }> {
    await this.verify(domain, config, Buffer.isBuffer(onnx) ? onnx : undefined, Buffer.isBuffer(onnx) ? undefined : onnx.path);
    const replaced = this.store.get(domain, config.name) !== undefined;
    const model = Buffer.isBuffer(onnx) ? this.store.save(domain, config, onnx) : await this.store.saveFile(domain, config, onnx.path, onnx.sha256);
    this.log.info({ model: config.name, domain, sha256: model.sha256, bytes: model.bytes, replaced }, 'model installed');
    return { model, replaced };
  }

  /**
   * The checks every model passes before it is stored (uploads and restores alike): no external-data
   * references (uploads are one file, and a reference would read other files beside it), and it loads and
   * runs once on a blank input of the declared size in an isolated process, within the request deadline and
   * the memory cap. A failure is a 400. `path`: the bytes are already in a file there (a restore's staging
   * folder, a spooled upload), so no probe copy is written and they need not be in memory (`onnx` undefined).
   */
  async verify(domain: string, config: ModelConfig, onnx: Buffer | undefined, path?: string): Promise<void> {
    const refuse = (why: string) => new ApiError(400, 'invalid-api-params', `Not a usable ${config.task} model: ${why.split('\n')[0]!.slice(0, 300)}`);
    if (onnx === undefined && path === undefined) throw new Error('verify: neither bytes nor a file');
    let external: string[];
    try {
      external = onnx !== undefined ? externalDataReferences(onnx) : externalDataReferencesInFile(path!);
    } catch (error) {
      this.log.warn({ model: config.name, domain, err: error }, 'model upload refused');
      throw new ApiError(400, 'invalid-api-params', `The model could not be loaded by ONNX Runtime: the file is not a valid ONNX model.`);
    }
    if (external.length > 0) throw refuse(`it references external data files (${external.slice(0, 3).join(', ')}); upload a model with its weights inside the .onnx file`);
    let probe = path;
    if (probe === undefined) {
      mkdirSync(this.store.dir, { recursive: true });
      probe = join(this.store.dir, `.upload-${randomBytes(6).toString('hex')}.onnx`);
      writeFileSync(probe, onnx!);
    }
    let kernel: CustomKernel | undefined;
    try {
      kernel = await this.newKernel(config, probe, domain, true);
      await kernel.selfTest();
    } catch (error) {
      // ONNX Runtime's messages name server paths and internals: the log gets them, the client a safe reason.
      // Our own deadline and memory-cap failures say only what the operator configured, so they pass.
      this.log.warn({ model: config.name, domain, err: error }, 'model upload refused');
      if (error instanceof ModelFailure && error.kind !== 'crashed') throw refuse(error.message);
      throw new ApiError(400, 'invalid-api-params', `The model could not be loaded by ONNX Runtime: ${safeLoadReason(error)}.`);
    } finally {
      await kernel?.close();
      if (path === undefined) rmSync(probe, { force: true });
    }
  }

  /**
   * After the store changed under the registry (a restore): models whose file or config changed, or that
   * are gone, release their loaded versions now (requests in flight finish first) rather than at next use.
   */
  refresh(): void {
    for (const [key, live] of this.custom) {
      const slash = key.lastIndexOf('/');
      const model = this.store.get(key.slice(0, slash), key.slice(slash + 1));
      if (model !== undefined && versionOf(model) === live.version) continue;
      this.custom.delete(key);
      void live.kernel.then((k) => k.retire(), () => undefined);
    }
  }

  async remove(domain: string, name: string): Promise<boolean> {
    const removed = this.store.remove(domain, name);
    const key = customKey(domain, name);
    const live = this.custom.get(key);
    this.custom.delete(key);
    // Requests already running finish first; the session is released after the last one.
    if (live) void live.kernel.then((k) => k.retire(), () => undefined);
    return removed !== undefined;
  }

  /**
   * Shutdown: stop every custom model's process now (waiting requests get 503); built-in models finish
   * what they hold, then their workers stop.
   */
  async close(): Promise<void> {
    const custom = [...this.custom.values()];
    this.custom.clear();
    const builtins = [...this.builtins.values()].flatMap((b) => b.kernel ?? []);
    await Promise.allSettled([
      ...custom.map((e) => e.kernel.then((k) => k.close())),
      ...builtins.map((k) => k.then((kernel) => kernel.retire())),
    ]);
    await this.runners.close();
  }

  private loadBuiltin(entry: Builtin): Promise<Kernel> {
    entry.kernel ??= entry.spec.load({ cfg: this.cfg, log: this.log, runners: this.runners }).then(
      (kernel) => {
        entry.loaded = kernel;
        this.log.info({ model: entry.spec.name, provider: kernel.provider }, 'model loaded');
        return kernel;
      },
      (error: unknown) => {
        entry.kernel = undefined;
        throw error;
      },
    );
    return entry.kernel;
  }

  /**
   * Runs `name` as seen from `domain` (the session owner's): built-ins, else that domain's model.
   * `owner`: the tenant (session owner's access key) the work is queued for, fairly against others.
   * `options`: the task's own options (minConfidence for face and detect); kernels ignore what they do not use.
   */
  async infer(domain: string, name: string, image: Buffer, signal?: AbortSignal, owner?: string, options: Pick<InferOptions, 'minConfidence'> = {}): Promise<InferenceResult> {
    const builtin = this.builtins.get(name);
    if (builtin) return (await this.loadBuiltin(builtin)).infer(image, { ...options, signal, owner });
    const model = this.store.get(domain, name);
    if (!model) throw new ApiError(404, 'model-not-found', `The session's model ${JSON.stringify(name)} was removed.`);
    return (await this.customKernel(model)).infer(image, { ...options, signal, owner });
  }

  /** Queue state of every loaded model, for metrics (custom models labelled `<domain>/<name>`). */
  queues(): Array<{ model: string; running: number; queued: number; completed: number; rejected: number; timedOut: number }> {
    const out = [];
    for (const [model, entry] of this.builtins) if (entry.loaded) out.push({ model, ...entry.loaded.queueStats });
    for (const [model, entry] of this.custom) if (entry.loaded) out.push({ model, ...entry.loaded.queueStats });
    return out;
  }

  /** Detailed health (operators only): models of `domain`, or of every domain when undefined, keyed `<domain>/<name>`. */
  health(domain?: string): Record<string, unknown> {
    return {
      inference: {
        status: 'ok',
        configured_providers: this.cfg.providers,
        backend: this.cfg.backend,
        ...(this.runners instanceof KServeRunners
          ? { backends: this.runners.backends.backends.map((b) => ({ url: b.label, available: b.available(Date.now()), healthy: b.healthy, outstanding: b.outstanding })) }
          : {}),
        models: Object.fromEntries(
          this.list(domain).map((m) => [
            m.domain === undefined ? m.name : `${m.domain}/${m.name}`,
            {
              loaded: m.loaded,
              provider: m.provider,
              queue: m.domain === undefined ? this.builtins.get(m.name)?.loaded?.queueStats : this.custom.get(customKey(m.domain, m.name))?.loaded?.queueStats,
            },
          ]),
        ),
      },
    };
  }
}
