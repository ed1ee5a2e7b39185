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
import type { Kernel, Task } from './kernel.js';
import { OcrKernel } from './ocr/kernel.js';
import type { RunnerPool } from './runners/pool.js';
import type { ModelConfig } from './store/model-config.js';

export interface BuiltinContext {
  cfg: Config['inference'];
  log: Logger;
  /** Shared worker runners, owned (and closed) by the registry. */
  runners: RunnerPool;
}

export interface BuiltinModel {
  name: string;
  task: Task;
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
    load: ({ cfg, log, runners }) =>
      FaceKernel.load(
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
];

/** By the `task` of an uploaded model's config. */
export const CUSTOM_TASKS: Record<ModelConfig['task'], (parts: CustomKernelParts) => Promise<CustomKernel>> = {
  classify: (parts) => ClassifyKernel.create(parts),
  detect: (parts) => DetectKernel.create(parts),
};
