/**
 * A bounded work queue for one model.
 *
 * Inference is CPU-bound: letting every request run at once only makes all of them slow and lets memory
 * grow without bound. So at most `concurrency` jobs run, at most `maxQueued` wait, and anything beyond
 * that is refused at once with 503 + Retry-After (the client may retry; the server stays responsive).
 *
 * Every job has a deadline counted from submission. A job still waiting at its deadline is dropped from
 * the queue and never runs. A job already running cannot be interrupted (ORT offers no cancellation of a
 * started run), so its caller gets the timeout error now, its result is thrown away, and its slot stays
 * taken until it really finishes: freeing the slot early would let more work pile onto a busy CPU.
 * The job's AbortSignal fires at the deadline so that multi-stage jobs can stop between stages.
 *
 * Pure TypeScript (timers and promises only) so it can be unit-tested without a model.
 */
import { ApiError, unavailable } from '../problems/api-error.js';

export interface WorkQueueOptions {
  /** Jobs running at once. */
  concurrency: number;
  /** Jobs waiting beyond the running ones; more are refused with 503. */
  maxQueued: number;
  /** Deadline per job from submission, in ms; 0 or Infinity disables it. */
  timeoutMs: number;
  /** Name used in error details. */
  name?: string;
}

export type Job<T> = (signal: AbortSignal) => Promise<T>;

export interface QueueStats {
  running: number;
  queued: number;
  completed: number;
  rejected: number;
  timedOut: number;
  /** Exponential moving average of job run time, ms (0 until a job finishes). */
  avgRunMs: number;
}

interface Waiting {
  start: () => void;
  fail: (err: ApiError) => void;
}

export class WorkQueue {
  readonly #opts: Required<WorkQueueOptions>;
  readonly #waiting: Waiting[] = [];
  #running = 0;
  #completed = 0;
  #rejected = 0;
  #timedOut = 0;
  #avgRunMs = 0;

  constructor(opts: WorkQueueOptions) {
    if (!(opts.concurrency >= 1)) throw new RangeError('concurrency must be >= 1');
    if (!(opts.maxQueued >= 0)) throw new RangeError('maxQueued must be >= 0');
    this.#opts = { name: 'model', ...opts, concurrency: Math.floor(opts.concurrency), maxQueued: Math.floor(opts.maxQueued) };
  }

  get stats(): QueueStats {
    return {
      running: this.#running,
      queued: this.#waiting.length,
      completed: this.#completed,
      rejected: this.#rejected,
      timedOut: this.#timedOut,
      avgRunMs: this.#avgRunMs,
    };
  }

  /** Whole seconds a refused client should wait: the time to drain what is ahead of it, at least 1. */
  retryAfterSeconds(): number {
    const perJob = this.#avgRunMs > 0 ? this.#avgRunMs : 1000;
    const ahead = this.#waiting.length + this.#running;
    return Math.max(1, Math.ceil((ahead * perJob) / this.#opts.concurrency / 1000));
  }

  /**
   * Run `job` when a slot is free. Rejects with 503 service-unavailable (Retry-After) when the queue is
   * full or the job waited past its deadline, and with 504 gateway-timeout when it ran past it.
   */
  run<T>(job: Job<T>, opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<T> {
    const name = this.#opts.name;
    if (this.#running >= this.#opts.concurrency && this.#waiting.length >= this.#opts.maxQueued) {
      this.#rejected++;
      return Promise.reject(unavailable(`${name} is busy (${this.#waiting.length} requests queued); retry later`, this.retryAfterSeconds()));
    }
    const timeoutMs = opts.timeoutMs ?? this.#opts.timeoutMs;
    const controller = new AbortController();

    return new Promise<T>((resolve, reject) => {
      let settled = false;
      let entry: Waiting | undefined;
      let timer: NodeJS.Timeout | undefined;
      const settle = (fn: () => void) => {
        if (settled) return;
        settled = true;
        if (timer) clearTimeout(timer);
        fn();
      };

      const start = () => {
        this.#running++;
        const began = performance.now();
        let p: Promise<T>;
        try {
          p = Promise.resolve(job(controller.signal));
        } catch (err) {
          p = Promise.reject(err);
        }
        p.then(
          (value) => settle(() => resolve(value)),
          (err) => settle(() => reject(err)),
        ).finally(() => {
          // The slot is released only when the work is really over, even if its caller gave up.
          this.#running--;
          this.#completed++;
          const ms = performance.now() - began;
          this.#avgRunMs = this.#avgRunMs === 0 ? ms : this.#avgRunMs * 0.8 + ms * 0.2;
          this.#next();
        });
      };

      if (timeoutMs > 0 && Number.isFinite(timeoutMs)) {
        timer = setTimeout(() => {
          this.#timedOut++;
          controller.abort();
          const idx = entry ? this.#waiting.indexOf(entry) : -1;
          if (idx >= 0) {
            // Never started: drop it, nobody will read its result.
            this.#waiting.splice(idx, 1);
            settle(() => reject(unavailable(`${name} queue wait exceeded ${timeoutMs} ms; retry later`, this.retryAfterSeconds())));
          } else {
            settle(() => reject(new ApiError(504, 'gateway-timeout', `${name} did not finish within ${timeoutMs} ms`)));
          }
        }, timeoutMs);
        timer.unref?.();
      }

      // The caller gave up (its client went away): a waiting job leaves the queue, a
      // running one is told through its signal and stops at its next checkpoint.
      const onCallerAbort = () => {
        controller.abort();
        const idx = entry ? this.#waiting.indexOf(entry) : -1;
        if (idx >= 0) this.#waiting.splice(idx, 1);
        settle(() => reject(new ApiError(408, 'generic-bad-request', 'The client closed the request before it was answered.')));
      };
      if (opts.signal?.aborted) return onCallerAbort();
      opts.signal?.addEventListener('abort', onCallerAbort, { once: true });

      if (this.#running < this.#opts.concurrency) {
        start();
      } else {
        entry = { start, fail: (err) => settle(() => reject(err)) };
        this.#waiting.push(entry);
      }
    });
  }

  /** Refuse everything still waiting (shutdown); running jobs finish on their own. */
  drain(detail = 'shutting down'): void {
    for (const w of this.#waiting.splice(0)) w.fail(unavailable(detail, 1));
  }

  #next(): void {
    while (this.#running < this.#opts.concurrency && this.#waiting.length > 0) {
      this.#waiting.shift()!.start();
    }
  }
}
