import sharp from 'sharp';
import { decodeImage, DEFAULT_DECODE_LIMITS, inspectImage, type DecodeLimits } from '../image.js';
import type { InferOptions, Kernel } from '../kernel.js';
import type { InferenceLogger } from '../providers.js';
import type { WorkQueue } from '../queue.js';
import { firstOutput, ModelFailure, onlyInput, type ModelRunner } from '../runners/runner.js';
import { ApiError, unavailable } from '../../problems/api-error.js';
import type { ModelConfig } from '../store/model-config.js';

export interface ClassifyResult {
  predictions: Array<{ label: string; confidence: number }>;
  duration_ms: number;
  provider: string;
}

/** Image -> `[1, 3, H, W]` float32, resized to the model's input and normalized as configured. */
export async function toInputTensor(image: Buffer, config: ModelConfig, limits: Partial<DecodeLimits>): Promise<{ data: Float32Array; dims: number[] }> {
  const rgb = await decodeImage(image, limits);
  const { width: w, height: h, color } = config.input;
  const pixels = await sharp(rgb.data, { raw: { width: rgb.width, height: rgb.height, channels: 3 } })
    .resize(w, h, { fit: 'fill' })
    .raw()
    .toBuffer();
  const plane = w * h;
  const data = new Float32Array(3 * plane);
  const { mean, std } = config.normalize;
  for (let c = 0; c < 3; c++) {
    const source = color === 'BGR' ? 2 - c : c;
    const m = mean[c];
    const s = std[c];
    for (let i = 0; i < plane; i++) data[c * plane + i] = (pixels[i * 3 + source] / 255 - m) / s;
  }
  return { data, dims: [1, 3, h, w] };
}

/** Softmax unless the output already is a probability distribution. */
export function toProbabilities(scores: Float32Array): Float32Array {
  let sum = 0;
  let inRange = true;
  for (const v of scores) {
    sum += v;
    if (v < 0 || v > 1) inRange = false;
  }
  if (inRange && Math.abs(sum - 1) < 1e-3) return scores;
  const max = Math.max(...scores);
  const exp = scores.map((v) => Math.exp(v - max));
  const total = exp.reduce((a, b) => a + b, 0);
  return exp.map((v) => v / total);
}

/** What the registry gives a kernel of an uploaded model (every custom task gets the same). */
export interface CustomKernelParts {
  config: ModelConfig;
  queue: WorkQueue;
  limits: Partial<DecodeLimits>;
  /** Starts a fresh runner (an isolated child process); called again after the previous one was killed. */
  start: () => Promise<ModelRunner>;
  /** Deadline of one request (queue wait + decode + run), ms; also the self-test's. */
  timeoutMs: number;
  logger?: InferenceLogger;
}

/**
 * A custom classification model: one bounded, fair queue and one ORT session in a child process.
 *
 * Images are checked (header: format, size, pixels) before queueing but decoded inside the queue, as the OCR
 * kernel does: at most `concurrency` decoded images exist at once, however many clients send 40 MP PNGs.
 *
 * The session is never released under a running job: replacing or removing the model retires the kernel,
 * which closes its session only when the last request that entered it has finished (reference count). A
 * run past its deadline or over the memory cap kills the session's process (see ModelFailure); the next
 * job starts a fresh one.
 */
export class ClassifyKernel implements Kernel<ClassifyResult> {
  readonly task = 'classify';
  readonly config: ModelConfig;
  readonly #p: CustomKernelParts;
  #session: Promise<ModelRunner> | undefined;
  #loaded: ModelRunner | undefined;
  #markClosed!: () => void;
  readonly #closedP = new Promise<void>((resolve) => (this.#markClosed = resolve));
  #inflight = 0;
  #retired = false;
  #closed = false;

  private constructor(parts: CustomKernelParts) {
    this.config = parts.config;
    this.#p = parts;
  }

  /** A kernel with its first session loaded (so a model that cannot load fails here). */
  static async create(parts: CustomKernelParts): Promise<ClassifyKernel> {
    const k = new ClassifyKernel(parts);
    await k.#current();
    return k;
  }

  get provider(): string {
    return this.#loaded?.provider ?? '';
  }

  get queueStats() {
    return this.#p.queue.stats;
  }

  /** Requests that entered this kernel and have not finished (their job included). */
  get inflight(): number {
    return this.#inflight;
  }

  #current(): Promise<ModelRunner> {
    if (this.#session && !this.#loaded?.dead) return this.#session;
    if (this.#closed) return Promise.reject(new Error('the model was replaced or removed'));
    this.#loaded = undefined;
    const entry = this.#p.start();
    this.#session = entry;
    entry.then(
      (s) => {
        if (this.#session === entry) this.#loaded = s;
        else void s.close(); // retired or replaced while loading
      },
      () => {
        if (this.#session === entry) this.#session = undefined;
      },
    );
    return entry;
  }

  infer(image: Buffer, opts: InferOptions = {}): Promise<ClassifyResult> {
    return this.classify(image, opts);
  }

  async classify(image: Buffer, opts: InferOptions = {}): Promise<ClassifyResult> {
    const started = performance.now();
    const deadline = started + this.#p.timeoutMs;
    this.#inflight++;
    let jobEnded: Promise<unknown> | undefined;
    try {
      // Header checks before queueing: most bad input is refused at once without taking a slot.
      await inspectImage(image, { ...DEFAULT_DECODE_LIMITS, ...this.#p.limits });
      const output = await this.#p.queue.run(
        (signal) => {
          const job = (async () => {
            const input = await toInputTensor(image, this.config, this.#p.limits);
            if (signal.aborted) throw new ApiError(504, 'gateway-timeout', `${this.config.name} request timed out`);
            const session = await this.#current().catch((err: unknown) => {
              throw unavailable(`model ${this.config.name} could not be started: ${firstLine(err)}`, 5);
            });
            const outputs = await session.run(onlyInput(session, input), { timeoutMs: Math.max(1, deadline - performance.now()) }).catch((err: unknown) => {
              throw this.#failure(err);
            });
            return firstOutput(session, outputs);
          })();
          jobEnded = job.catch(() => undefined);
          return job;
        },
        { signal: opts.signal, owner: opts.owner, timeoutMs: this.#p.timeoutMs },
      );
      return { predictions: topK(output.data, this.config), duration_ms: Math.round((performance.now() - started) * 10) / 10, provider: this.provider };
    } finally {
      // The session is in use until the job really ends, even when its caller was answered earlier.
      if (jobEnded) void jobEnded.then(() => this.#release());
      else this.#release();
    }
  }

  /** A model failure as the client's answer: the backend failed (503) or overstayed its deadline (504). */
  #failure(err: unknown): ApiError {
    if (err instanceof ApiError) return err;
    const name = this.config.name;
    if (err instanceof ModelFailure) {
      this.#p.logger?.warn({ model: name, reason: err.kind, detail: err.message }, 'inference: model process stopped; the next request starts a fresh one');
      if (err.kind === 'timeout') return new ApiError(504, 'gateway-timeout', `model ${name} did not finish within ${this.#p.timeoutMs} ms and was stopped`);
      return unavailable(`model ${name} failed (${err.message}); retry later`, 5);
    }
    return unavailable(`model ${name} failed: ${firstLine(err)}`, 5);
  }

  #release(): void {
    this.#inflight--;
    if (this.#retired && this.#inflight === 0) void this.close();
  }

  /** Stop taking part: the session is released when the last request in flight has finished. */
  retire(): Promise<void> {
    this.#retired = true;
    if (this.#inflight === 0) void this.close();
    return this.#closedP;
  }

  /**
   * A run on a blank input: proves the model takes the declared input and has one score per label, within
   * the deadline and the memory cap. A failure is a plain Error whose message says why.
   */
  async selfTest(): Promise<void> {
    const { width: w, height: h } = this.config.input;
    const session = await this.#current();
    const output = firstOutput(session, await session.run(onlyInput(session, { data: new Float32Array(3 * w * h), dims: [1, 3, h, w] }), { timeoutMs: this.#p.timeoutMs }));
    const classes = output.data.length;
    if (classes !== this.config.labels.length) {
      throw new Error(`the model outputs ${classes} scores for ${this.config.labels.length} labels`);
    }
  }

  /** Release the session now (shutdown, or after a self-test). */
  async close(): Promise<void> {
    this.#retired = true;
    this.#closed = true;
    const session = this.#session;
    this.#session = undefined;
    this.#loaded = undefined;
    this.#p.queue.drain(`model ${this.config.name} was replaced or removed; retry`);
    if (session) await session.then((s) => s.close(), () => undefined);
    this.#markClosed();
  }
}

const firstLine = (err: unknown) => String(err instanceof Error ? err.message : err).split('\n')[0]!.slice(0, 300);

function topK(scores: Float32Array, config: ModelConfig): ClassifyResult['predictions'] {
  const probs = toProbabilities(scores.subarray(0, config.labels.length));
  return [...probs]
    .map((p, i) => ({ label: config.labels[i], confidence: Math.round(p * 10000) / 10000 }))
    .sort((a, b) => b.confidence - a.confidence)
    .slice(0, config.top_k);
}
