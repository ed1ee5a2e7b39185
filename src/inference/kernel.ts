/**
 * A kernel: one task (ocr, classify; detect and face next) over one model, behind its own bounded, fair
 * work queue. The registry (registry.ts) and the session routes only see this interface; how a task turns
 * an image into tensors and tensors into predictions, and which runners (runners/) it uses, is the
 * kernel's business. Adding a task is one folder beside ocr/ and classify/ and one line in tasks.ts.
 */
import type { QueueStats } from './queue.js';

export type Task = 'ocr' | 'classify' | 'detect';

/** Every task answers with predictions, the time it took and where it ran (DESIGN.md "Kernels"). */
export interface InferenceResult {
  predictions: unknown[];
  duration_ms: number;
  provider: string;
}

export interface InferOptions {
  /** Aborted when the caller no longer wants the answer (its client disconnected). */
  signal?: AbortSignal;
  /** The tenant the request is for: the queue serves tenants round-robin (see queue.ts). */
  owner?: string;
  /** Tasks that score boxes (detect, face): predictions below this confidence are left out. */
  minConfidence?: number;
}

export interface Kernel<Result extends InferenceResult = InferenceResult> {
  readonly task: Task;
  /** Where the model runs, e.g. "cpu" or "cuda" ("" until known). */
  readonly provider: string;
  readonly queueStats: QueueStats;
  /** Client faults reject with ApiError (400/413/415); overload with 503, deadlines with 504. */
  infer(image: Buffer, opts?: InferOptions): Promise<Result>;
  /**
   * Stop taking part (the model was replaced or removed, or the registry closes): what the kernel holds is
   * released once the last request that entered it has finished, never under a running job. Resolves then.
   */
  retire(): Promise<void>;
  /** Release now (shutdown, or after a self-test): requests still waiting get 503. */
  close(): Promise<void>;
}
