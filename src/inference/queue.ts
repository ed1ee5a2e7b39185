/**
 * A bounded work queue for one model.
 *
 * Inference is CPU-bound: letting every request run at once only makes all of them slow and lets memory
 * grow without bound. So at most `concurrency` jobs run, at most `maxQueued` wait, and anything beyond
 * that is refused at once with 503 + Retry-After (the client may retry; the server stays responsive).
 *
 * Fairness: waiting jobs are kept per owner (the tenant, i.e. the session's owner access key) and started
 * round-robin between owners, so one tenant flooding a model delays every other tenant by at most one job
 * per turn. An owner may hold at most `maxQueuedPerOwner` waiting jobs (503 + Retry-After beyond that), and
 * when the whole queue is full a newcomer with fewer waiting jobs than the busiest owner takes the place
 * of that owner's newest job (which gets the 503 instead): a noisy tenant can never lock a quiet one out.
 *
 * A job whose wait cannot end within its deadline (estimated from the jobs that would run before it and
 * the recent run time) is refused at once with 503 + Retry-After instead of waiting for the timeout.
 *
 * Every job has a deadline counted from submission. A job still waiting at its deadline is dropped from
 * the queue and never runs. A job already running cannot be interrupted (ORT offers no cancellation of a
 * started run), so its caller gets the timeout error now, its result is thrown away, and its slot stays
 * taken until it really finishes: freeing the slot early would let more work pile onto a busy CPU.
 * The job's AbortSignal fires at the deadline so that multi-stage jobs can stop between stages.
 *
 * Long jobs take turns: a multi-stage job (an OCR page of many lines is dozens of model runs) calls the
 * `turn` it is given between stages. When another owner has a job waiting, the long job gives its slot
 * back and waits at the head of its own owner's line, which goes to the back of the round-robin, so a
 * tenant's one-line image waits for one stage of someone's 70-line page, not the whole page. With nobody
 * else waiting, `turn` costs nothing. The job keeps its deadline (counted from submission) while it waits.
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
  /** Waiting jobs one owner may hold; default half of maxQueued (at least 1). */
  maxQueuedPerOwner?: number;
}

export interface RunOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
  /** The tenant the job is for (fair queueing); jobs without one share the owner "", which has no per-owner cap. */
  owner?: string;
}

/**
 * `turn`: call between stages; resolves when the job may go on (at once unless another owner waits).
 * It rejects, like the job's caller, when the job is dropped while it waits (deadline, caller gone, drain).
 */
export type Job<T> = (signal: AbortSignal, turn: () => Promise<void>) => Promise<T>;

/**
 * What a multi-stage job does between stages: stop with 504 once its deadline has passed (its caller has been
 * answered), else take its `turn`, and check the deadline again after waiting for it. `what` names the job in
 * the error, e.g. "ocr".
 */
export async function nextStage(signal: AbortSignal, turn: () => Promise<void>, what: string): Promise<void> {
  if (signal.aborted) throw new ApiError(504, 'gateway-timeout', `${what} request timed out`);
  await turn();
  if (signal.aborted) throw new ApiError(504, 'gateway-timeout', `${what} request timed out`);
}

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
  owner: string;
  start: () => void;
  fail: (err: ApiError) => void;
  /** A started job waiting for its next turn: never pushed out for a newcomer. */
  resuming?: boolean;
}

export class WorkQueue {
  readonly #opts: Required<WorkQueueOptions>;
  /** Waiting jobs per owner, in arrival order; Map order is the round-robin order. */
  readonly #waiting = new Map<string, Waiting[]>();
  #queued = 0;
  #running = 0;
  #completed = 0;
  #rejected = 0;
  #timedOut = 0;
  #avgRunMs = 0;

  constructor(opts: WorkQueueOptions) {
    if (!(opts.concurrency >= 1)) throw new RangeError('concurrency must be >= 1');
    if (!(opts.maxQueued >= 0)) throw new RangeError('maxQueued must be >= 0');
    const maxQueued = Math.floor(opts.maxQueued);
    const perOwner = opts.maxQueuedPerOwner && opts.maxQueuedPerOwner > 0 ? Math.floor(opts.maxQueuedPerOwner) : Math.max(1, Math.ceil(maxQueued / 2));
    this.#opts = { name: 'model', ...opts, concurrency: Math.floor(opts.concurrency), maxQueued, maxQueuedPerOwner: Math.min(perOwner, Math.max(maxQueued, 1)) };
  }

  get stats(): QueueStats {
    return {
      running: this.#running,
      queued: this.#queued,
      completed: this.#completed,
      rejected: this.#rejected,
      timedOut: this.#timedOut,
      avgRunMs: this.#avgRunMs,
    };
  }

  /** Whole seconds a refused client should wait: the time to drain what is ahead of it, at least 1. */
  retryAfterSeconds(ahead = this.#queued + this.#running): number {
    const perJob = this.#avgRunMs > 0 ? this.#avgRunMs : 1000;
    return Math.max(1, Math.ceil((ahead * perJob) / this.#opts.concurrency / 1000));
  }

  /** Jobs that would start before a new job of `owner` under round-robin (running ones included). */
  #ahead(owner: string): number {
    const mine = this.#waiting.get(owner)?.length ?? 0;
    let ahead = this.#running + mine;
    for (const [o, list] of this.#waiting) if (o !== owner) ahead += Math.min(list.length, mine + 1);
    return ahead;
  }

  #remove(entry: Waiting): boolean {
    const list = this.#waiting.get(entry.owner);
    const idx = list ? list.indexOf(entry) : -1;
    if (idx < 0) return false;
    list!.splice(idx, 1);
    if (list!.length === 0) this.#waiting.delete(entry.owner);
    this.#queued--;
    return true;
  }

  /**
   * Room for one more waiting job of `owner`, or the 503 to answer. When the queue is full, the busiest
   * owner's newest job is pushed out if that owner has more waiting than `owner` would.
   */
  #admit(owner: string): ApiError | undefined {
    const name = this.#opts.name;
    const mine = this.#waiting.get(owner)?.length ?? 0;
    // Jobs that name no owner (library use, tests) are only bound by maxQueued.
    if (owner !== '' && mine >= this.#opts.maxQueuedPerOwner) {
      return unavailable(`${name} is busy: you already have ${mine} requests queued (the per-tenant limit); retry later`, this.retryAfterSeconds(this.#ahead(owner)));
    }
    if (this.#queued < this.#opts.maxQueued) return undefined;
    let busiest: Waiting[] | undefined;
    for (const list of this.#waiting.values()) if (!busiest || list.length > busiest.length) busiest = list;
    if (busiest && busiest.length > mine + 1 && !busiest[busiest.length - 1]!.resuming) {
      const victim = busiest[busiest.length - 1]!;
      this.#remove(victim);
      this.#rejected++;
      victim.fail(unavailable(`${name} is busy: other tenants are waiting too; retry later`, this.retryAfterSeconds(busiest.length + this.#running)));
      return undefined;
    }
    return unavailable(`${name} is busy (${this.#queued} requests queued); retry later`, this.retryAfterSeconds());
  }

  /**
   * Run `job` when a slot is free. Rejects with 503 service-unavailable (Retry-After) when the queue is
   * full or the job waited past its deadline, and with 504 gateway-timeout when it ran past it.
   */
  run<T>(job: Job<T>, opts: RunOptions = {}): Promise<T> {
    const name = this.#opts.name;
    const owner = opts.owner ?? '';
    const timeoutMs = opts.timeoutMs ?? this.#opts.timeoutMs;
    if (this.#running >= this.#opts.concurrency) {
      const refused = this.#admit(owner);
      if (refused) {
        this.#rejected++;
        return Promise.reject(refused);
      }
      // Fail fast: a job that would still be waiting (or running) at its deadline is refused now.
      const ahead = this.#ahead(owner);
      const estimateMs = this.#avgRunMs * (Math.ceil((ahead + 1) / this.#opts.concurrency));
      if (this.#avgRunMs > 0 && timeoutMs > 0 && Number.isFinite(timeoutMs) && estimateMs > timeoutMs) {
        this.#rejected++;
        return Promise.reject(
          unavailable(`${name} is busy: ${ahead} requests ahead would take about ${Math.round(estimateMs)} ms, longer than the ${timeoutMs} ms deadline; retry later`, this.retryAfterSeconds(ahead)),
        );
      }
    }
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

      // Whether the job holds a slot now: not while it waits for its next turn.
      let holding = false;
      let resumeEntry: Waiting | undefined;
      /** Time spent waiting for turns: not the job's run time (the deadline estimate learns from that). */
      let waitedMs = 0;
      const turn = (): Promise<void> => {
        if (settled || !this.#othersWaiting(owner)) return Promise.resolve();
        const gaveUp = performance.now();
        return new Promise<void>((resume, stop) => {
          holding = false;
          this.#running--;
          resumeEntry = {
            owner,
            resuming: true,
            start: () => {
              resumeEntry = undefined;
              holding = true;
              this.#running++;
              waitedMs += performance.now() - gaveUp;
              resume();
            },
            fail: (err) => {
              resumeEntry = undefined;
              stop(err);
              settle(() => reject(err));
            },
          };
          // At the head of its owner's line (before that owner's jobs not yet started); the owner goes to the back.
          const list = this.#waiting.get(owner) ?? [];
          this.#waiting.delete(owner);
          this.#waiting.set(owner, [resumeEntry, ...list]);
          this.#queued++;
          this.#next();
        });
      };
      /** A job dropped while it waited for a turn: its `turn` rejects with the same error as its caller. */
      const dropResume = (err: ApiError): boolean => {
        if (!resumeEntry || !this.#remove(resumeEntry)) return false;
        resumeEntry.fail(err);
        return true;
      };

      const start = () => {
        this.#running++;
        holding = true;
        const began = performance.now();
        let p: Promise<T>;
        try {
          p = Promise.resolve(job(controller.signal, turn));
        } catch (err) {
          p = Promise.reject(err);
        }
        // The slot is released only when the work is really over, even if its caller gave up; the
        // bookkeeping comes first so that a caller resuming on the result sees up-to-date stats.
        const done = () => {
          if (holding) this.#running--;
          holding = false;
          this.#completed++;
          const ms = performance.now() - began - waitedMs;
          this.#avgRunMs = this.#avgRunMs === 0 ? ms : this.#avgRunMs * 0.8 + ms * 0.2;
        };
        p.then(
          (value) => {
            done();
            settle(() => resolve(value));
            this.#next();
          },
          (err) => {
            done();
            settle(() => reject(err));
            this.#next();
          },
        );
      };

      if (timeoutMs > 0 && Number.isFinite(timeoutMs)) {
        timer = setTimeout(() => {
          this.#timedOut++;
          controller.abort();
          if (entry && this.#remove(entry)) {
            // Never started: drop it, nobody will read its result.
            settle(() => reject(unavailable(`${name} queue wait exceeded ${timeoutMs} ms; retry later`, this.retryAfterSeconds())));
          } else if (!dropResume(new ApiError(504, 'gateway-timeout', `${name} did not finish within ${timeoutMs} ms`))) {
            settle(() => reject(new ApiError(504, 'gateway-timeout', `${name} did not finish within ${timeoutMs} ms`)));
          }
        }, timeoutMs);
        timer.unref?.();
      }

      // The caller gave up (its client went away): a waiting job leaves the queue, a
      // running one is told through its signal and stops at its next checkpoint.
      const onCallerAbort = () => {
        controller.abort();
        if (entry) this.#remove(entry);
        const gone = new ApiError(408, 'generic-bad-request', 'The client closed the request before it was answered.');
        dropResume(gone);
        settle(() => reject(gone));
      };
      if (opts.signal?.aborted) return onCallerAbort();
      opts.signal?.addEventListener('abort', onCallerAbort, { once: true });

      if (this.#running < this.#opts.concurrency) {
        start();
      } else {
        entry = { owner, start, fail: (err) => settle(() => reject(err)) };
        const list = this.#waiting.get(owner);
        if (list) list.push(entry);
        else this.#waiting.set(owner, [entry]);
        this.#queued++;
      }
    });
  }

  /** Whether an owner other than `owner` has a job waiting (a long job of `owner` should let it go first). */
  #othersWaiting(owner: string): boolean {
    for (const o of this.#waiting.keys()) if (o !== owner) return true;
    return false;
  }

  /** Refuse everything still waiting (shutdown); running jobs finish on their own. */
  drain(detail = 'shutting down'): void {
    const all = [...this.#waiting.values()].flat();
    this.#waiting.clear();
    this.#queued = 0;
    for (const w of all) w.fail(unavailable(detail, 1));
  }

  /** Start waiting jobs round-robin: the first owner in line runs one job and goes to the back. */
  #next(): void {
    while (this.#running < this.#opts.concurrency && this.#queued > 0) {
      const [owner, list] = this.#waiting.entries().next().value as [string, Waiting[]];
      const entry = list.shift()!;
      this.#waiting.delete(owner);
      if (list.length > 0) this.#waiting.set(owner, list);
      this.#queued--;
      entry.start();
    }
  }
}
