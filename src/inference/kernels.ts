import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import { ClassifyKernel, type ClassifyResult } from '../models/classify.js';
import type { ModelConfig } from '../models/model-config.js';
import { ModelStore, type StoredModel } from '../models/model-store.js';
import { ApiError } from '../problems/api-error.js';
import { startModelSession } from './model-session.js';
import { WorkQueue } from './queue.js';
import { OcrKernel } from './ocr/kernel.js';
import type { OcrResult } from './ocr/index.js';

export interface ModelInfo {
  name: string;
  task: 'ocr' | 'classify' | 'detect';
  builtin: boolean;
  loaded: boolean;
  provider: string | null;
  input?: { width: number; height: number };
  labels?: number;
  sha256?: string;
  bytes?: number;
  created_at?: string;
}

/** A re-upload that changes only the config (labels, normalization) is a new model too. */
const versionOf = (m: StoredModel) => `${m.sha256}:${JSON.stringify(m.config)}`;

/**
 * The models compute sessions can run. Each is loaded on first use and
 * shared by every session of it in this process (one ORT session per model).
 */
export class KernelRegistry {
  private ocr: Promise<OcrKernel> | undefined;
  private ocrKernel: OcrKernel | undefined;
  /** Loaded custom models by name, tagged with the version (file hash and config) they were loaded from. */
  private readonly custom = new Map<string, { version: string; kernel: Promise<ClassifyKernel>; loaded?: ClassifyKernel }>();
  readonly store: ModelStore;

  constructor(
    private readonly cfg: Config['inference'],
    private readonly log: Logger,
  ) {
    this.store = new ModelStore(cfg.models_dir);
  }

  has(name: string): boolean {
    return name === 'ocr' || this.store.get(name) !== undefined;
  }

  list(): ModelInfo[] {
    const ocr: ModelInfo = { name: 'ocr', task: 'ocr', builtin: true, loaded: this.ocrKernel !== undefined, provider: this.ocrKernel?.provider ?? null };
    return [
      ocr,
      ...this.store.list().map((m) => {
        const live = this.custom.get(m.config.name);
        const loaded = live?.version === versionOf(m) ? live.loaded : undefined;
        return {
          name: m.config.name,
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

  private sessionOptions() {
    return { providers: this.cfg.providers, intraOpNumThreads: this.cfg.threads > 0 ? this.cfg.threads : undefined, logger: this.log };
  }

  private newKernel(config: ModelConfig, path: string): Promise<ClassifyKernel> {
    const queue = new WorkQueue({ concurrency: this.cfg.concurrency, maxQueued: this.cfg.max_queue, timeoutMs: this.cfg.timeout_ms, name: config.name });
    const limits = { maxBytes: this.cfg.max_image_bytes, maxPixels: this.cfg.max_image_pixels };
    return startModelSession(path, this.sessionOptions()).then((session) => new ClassifyKernel(config, session, queue, limits));
  }

  /** The loaded kernel of a stored model; reloaded when the file or its config changed (a re-upload, or another replica's). */
  private customKernel(model: StoredModel): Promise<ClassifyKernel> {
    const live = this.custom.get(model.config.name);
    const version = versionOf(model);
    if (live?.version === version) return live.kernel;
    if (live) void live.kernel.then((k) => k.close(), () => undefined);
    const entry: { version: string; kernel: Promise<ClassifyKernel>; loaded?: ClassifyKernel } = { version, kernel: this.newKernel(model.config, model.path) };
    entry.kernel.then(
      (k) => (entry.loaded = k),
      () => this.custom.get(model.config.name) === entry && this.custom.delete(model.config.name),
    );
    this.custom.set(model.config.name, entry);
    return entry.kernel;
  }

  /**
   * Checks an uploaded model by loading it and running it once on a blank input
   * of the declared size, then stores it. A file ONNX Runtime cannot load, or
   * one whose output does not match the labels, is a 400, and nothing is kept.
   */
  async install(config: ModelConfig, onnx: Buffer): Promise<{ model: StoredModel; replaced: boolean }> {
    mkdirSync(this.store.dir, { recursive: true });
    const probe = join(this.store.dir, `.upload-${randomBytes(6).toString('hex')}.onnx`);
    writeFileSync(probe, onnx);
    let kernel: ClassifyKernel | undefined;
    try {
      kernel = await this.newKernel(config, probe);
      await kernel.selfTest();
    } catch (error) {
      throw new ApiError(400, 'invalid-api-params', `Not a usable ${config.task} model: ${String((error as Error).message).split('\n')[0].slice(0, 300)}`);
    } finally {
      await kernel?.close();
      rmSync(probe, { force: true });
    }
    const replaced = this.store.get(config.name) !== undefined;
    const model = this.store.save(config, onnx);
    this.log.info({ model: config.name, sha256: model.sha256, bytes: model.bytes, replaced }, 'model installed');
    return { model, replaced };
  }

  async remove(name: string): Promise<boolean> {
    const removed = this.store.remove(name);
    const live = this.custom.get(name);
    this.custom.delete(name);
    if (live) await live.kernel.then((k) => k.close(), () => undefined);
    return removed !== undefined;
  }

  private loadOcr(): Promise<OcrKernel> {
    this.ocr ??= OcrKernel.load({
      providers: this.cfg.providers,
      intraOpNumThreads: this.cfg.threads > 0 ? this.cfg.threads : undefined,
      limits: { maxBytes: this.cfg.max_image_bytes, maxPixels: this.cfg.max_image_pixels },
      queue: { concurrency: this.cfg.concurrency, maxQueued: this.cfg.max_queue, timeoutMs: this.cfg.timeout_ms },
      logger: this.log,
    }).then(
      (kernel) => {
        this.ocrKernel = kernel;
        this.log.info({ model: 'ocr', provider: kernel.provider }, 'model loaded');
        return kernel;
      },
      (error: unknown) => {
        this.ocr = undefined;
        throw error;
      },
    );
    return this.ocr;
  }

  async infer(name: string, image: Buffer, signal?: AbortSignal): Promise<OcrResult | ClassifyResult> {
    if (name === 'ocr') return (await this.loadOcr()).recognize(image, { signal });
    const model = this.store.get(name);
    if (!model) throw new ApiError(404, 'model-not-found', `The session's model ${JSON.stringify(name)} was removed.`);
    return (await this.customKernel(model)).classify(image, signal);
  }

  /** Queue state of every loaded model, for metrics. */
  queues(): Array<{ model: string; running: number; queued: number; completed: number; rejected: number; timedOut: number }> {
    const out = [];
    if (this.ocrKernel) out.push({ model: 'ocr', ...this.ocrKernel.queueStats });
    for (const [model, entry] of this.custom) if (entry.loaded) out.push({ model, ...entry.loaded.queueStats });
    return out;
  }

  health(): Record<string, unknown> {
    return {
      inference: {
        status: 'ok',
        configured_providers: this.cfg.providers,
        models: Object.fromEntries(
          this.list().map((m) => [
            m.name,
            { loaded: m.loaded, provider: m.provider, queue: m.name === 'ocr' ? this.ocrKernel?.queueStats : this.custom.get(m.name)?.loaded?.queueStats },
          ]),
        ),
      },
    };
  }
}
