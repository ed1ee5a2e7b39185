/**
 * The tasks the gateway knows: built-in models (every domain sees them) and the tasks an uploaded model
 * may declare. Adding a task (detect, face) is its folder beside ocr/ and classify/ plus one line here;
 * the registry has no per-name or per-task code.
 */
import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import { ClassifyKernel, type CustomKernelParts } from './classify/kernel.js';
import { DetectKernel } from './detect/kernel.js';
import { FaceKernel } from './face/kernel.js';
import { faceModels } from './face/models.js';
import type { Kernel, Task } from './kernel.js';
import { OcrKernel } from './ocr/kernel.js';
import { DEFAULT_CTC_OPTIONS } from './ocr/ctc.js';
import { loadDictionarySync, ocrModelPaths } from './ocr/models.js';
import type { RunnerSource } from './runners/pool.js';
import type { ModelConfig } from './store/model-config.js';

export interface BuiltinContext {
  cfg: Config['inference'];
  log: Logger;
  /** Where runners come from (local ONNX Runtime or remote servers), owned (and closed) by the registry. */
  runners: RunnerSource;
}

export interface BuiltinModel {
  name: string;
  task: Task;
  /**
   * The model files the kernel loads through `runners.shared`, by their name on Open Inference Protocol
   * servers (`kernelgate worker` serves them, `--export-repository` writes them, the remote runner asks
   * for them by these names).
   */
  files(): Record<string, string>;
  /**
   * Files (by the names of `files`) whose `[N, T, C]` output the kernel reduces to per-step arg-max with
   * runArgmax, and the class it watches: served remotely with the reduced outputs appended
   * (onnx-augment.ts), so that only `[N, T]` tensors cross the network.
   */
  argmaxWatch?(): Record<string, number>;
  load(ctx: BuiltinContext): Promise<Kernel>;
}

/** A kernel of an uploaded model: it can also prove, once at upload, that the model fits its task. */
export interface CustomKernel extends Kernel {
  /** A run on a blank input; a failure is a plain Error whose message says why. */
  selfTest(): Promise<void>;
}

export const BUILTIN_MODELS: readonly BuiltinModel[] = [
  {
    name: 'ocr',
    task: 'ocr',
    files: () => {
      const p = ocrModelPaths();
      return { 'ocr-det': p.detection, 'ocr-cls': p.classifier, 'ocr-rec': p.recognition };
    },
    // The space class, as the kernel watches it (ocr/kernel.ts: DEFAULT_CTC_OPTIONS).
    argmaxWatch: () => ({ 'ocr-rec': DEFAULT_CTC_OPTIONS(loadDictionarySync(ocrModelPaths().dictionary)).spaceIndex }),
    load: ({ cfg, log, runners }) =>
      OcrKernel.load(
        {
          providers: cfg.providers,
          intraOpNumThreads: cfg.threads > 0 ? cfg.threads : undefined,
          limits: { maxBytes: cfg.max_image_bytes, maxPixels: cfg.max_image_pixels },
          queue: { concurrency: cfg.concurrency, maxQueued: cfg.max_queue, maxQueuedPerOwner: cfg.max_queue_per_owner, timeoutMs: cfg.timeout_ms },
          logger: log,
        },
        runners,
      ),
  },
  {
    name: 'face',
    task: 'face',
    files: () => {
      const m = faceModels();
      return { 'face-front': m.front.file, 'face-back': m.back.file };
    },
    load: ({ cfg, log, runners }) =>
      FaceKernel.load(
        {
          providers: cfg.providers,
          intraOpNumThreads: cfg.threads > 0 ? cfg.threads : undefined,
          limits: { maxBytes: cfg.max_image_bytes, maxPixels: cfg.max_image_pixels },
          queue: { concurrency: cfg.concurrency, maxQueued: cfg.max_queue, maxQueuedPerOwner: cfg.max_queue_per_owner, timeoutMs: cfg.timeout_ms },
          tiles: cfg.face_tiles,
          logger: log,
        },
        runners,
      ),
  },
];

/** By the `task` of an uploaded model's config. */
export const CUSTOM_TASKS: Record<ModelConfig['task'], (parts: CustomKernelParts) => Promise<CustomKernel>> = {
  classify: (parts) => ClassifyKernel.create(parts),
  detect: (parts) => DetectKernel.create(parts),
};
