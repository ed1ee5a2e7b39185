/**
 * What every kernel of an uploaded model shares, whatever its task (classify, detect): one bounded, fair
 * queue and one ORT session in a child process, its lifecycle, and how its failures reach the client.
 * A task only says how an image becomes the input tensor and how the output becomes predictions.
 *
 * Images are checked (header: format, size, pixels) before queueing but decoded inside the queue, as the OCR
 * kernel does: at most `concurrency` decoded images exist at once, however many clients send 40 MP PNGs.
 *
 * The session is never released under a running job: replacing or removing the model retires the kernel,
 * which closes its session only when the last request that entered it has finished (reference count). A
 * run past its deadline or over the memory cap kills the session's process (see ModelFailure); the next
 * job starts a fresh one.
 */
import { DEFAULT_DECODE_LIMITS, inspectImage, type DecodeLimits, type ImageInfo } from '../image.js';
import type { InferOptions, InferenceResult, Kernel } from '../kernel.js';
import type { InferenceLogger } from '../providers.js';
import type { WorkQueue } from '../queue.js';
import { firstOutput, ModelFailure, onlyInput, type ModelRunner, type TensorData } from '../runners/runner.js';
import { ApiError, unavailable } from '../../problems/api-error.js';
import type { ModelConfig } from '../store/model-config.js';
import { InFlight } from '../in-flight.js';

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

export abstract class CustomModelKernel<Prepared, Result extends InferenceResult> implements Kernel<Result> {
  abstract readonly task: ModelConfig['task'];
  readonly config: ModelConfig;
  protected readonly parts: CustomKernelParts;
  #session: Promise<ModelRunner> | undefined;
  #loaded: ModelRunner | undefined;
  #markClosed!: () => void;
  readonly #closedP = new Promise<void>((resolve) => (this.#markClosed = resolve));
  readonly #inflight = new InFlight();
  #closed = false;

  protected constructor(parts: CustomKernelParts) {
    this.config = parts.config;
    this.parts = parts;
  }

  /** Decoded image → the model's input tensor, plus what interpret() needs to map the output back. */
  /** `inspected`: the image's header, read before queueing (decodeImage need not read it again). */
  protected abstract prepare(image: Buffer, inspected: ImageInfo): Promise<{ input: TensorData; prepared: Prepared }>;
  /** The model's first output → the task's predictions. */
  protected abstract interpret(output: TensorData, prepared: Prepared, opts: InferOptions): Result['predictions'];
  /** Throws a plain Error saying why, when a blank run's output does not fit the declared labels. */
  protected abstract checkOutput(output: TensorData): void;

  /** Loads the first session, so that a model that cannot load fails at creation. */
  protected async start(): Promise<this> {
    await this.#current();
    return this;
  }

  get provider(): string {
    return this.#loaded?.provider ?? '';
  }

  get queueStats() {
    return this.parts.queue.stats;
  }

  /** Requests that entered this kernel and have not finished (their job included). */
  get inflight(): number {
    return this.#inflight.count;
  }

  #current(): Promise<ModelRunner> {
    if (this.#session && !this.#loaded?.dead) return this.#session;
    if (this.#closed) return Promise.reject(new Error('the model was replaced or removed'));
    this.#loaded = undefined;
    const entry = this.parts.start();
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

  async infer(image: Buffer, opts: InferOptions = {}): Promise<Result> {
    const started = performance.now();
    const deadline = started + this.parts.timeoutMs;
    const name = this.config.name;
    return this.#inflight.around(async (track) => {
      // Header checks before queueing: most bad input is refused at once without taking a slot.
      const inspected = await inspectImage(image, { ...DEFAULT_DECODE_LIMITS, ...this.parts.limits });
      // The session is in use until the job really ends, even when its caller was answered earlier.
      const { output, prepared } = await this.parts.queue.run(
        (signal) =>
          track(
            (async () => {
              const { input, prepared } = await this.prepare(image, inspected);
              if (signal.aborted) throw new ApiError(504, 'gateway-timeout', `${name} request timed out`);
              const session = await this.#current().catch((err: unknown) => {
                throw unavailable(`model ${name} could not be started: ${firstLine(err)}`, 5);
              });
              const outputs = await session.run(onlyInput(session, input), { timeoutMs: Math.max(1, deadline - performance.now()) }).catch((err: unknown) => {
                throw this.#failure(err);
              });
              return { output: firstOutput(session, outputs), prepared };
            })(),
          ),
        { signal: opts.signal, owner: opts.owner, timeoutMs: this.parts.timeoutMs },
      );
      const predictions = this.interpret(output, prepared, opts);
      return { predictions, duration_ms: Math.round((performance.now() - started) * 10) / 10, provider: this.provider } as Result;
    });
  }

  /** A model failure as the client's answer: the backend failed (503) or overstayed its deadline (504). */
  #failure(err: unknown): ApiError {
    if (err instanceof ApiError) return err;
    const name = this.config.name;
    if (err instanceof ModelFailure) {
      this.parts.logger?.warn({ model: name, reason: err.kind, detail: err.message }, 'inference: model process stopped; the next request starts a fresh one');
      if (err.kind === 'timeout') return new ApiError(504, 'gateway-timeout', `model ${name} did not finish within ${this.parts.timeoutMs} ms and was stopped`);
      return unavailable(`model ${name} failed (${err.message}); retry later`, 5);
    }
    return unavailable(`model ${name} failed: ${firstLine(err)}`, 5);
  }

  /** Stop taking part: the session is released when the last request in flight has finished. */
  retire(): Promise<void> {
    void this.#inflight.drained().then(() => this.close());
    return this.#closedP;
  }

  /**
   * A run on a blank input: proves the model takes the declared input and that its output fits the labels,
   * within the deadline and the memory cap. A failure is a plain Error whose message says why.
   */
  async selfTest(): Promise<void> {
    const { width: w, height: h } = this.config.input;
    const session = await this.#current();
    const output = firstOutput(session, await session.run(onlyInput(session, { data: new Float32Array(3 * w * h), dims: [1, 3, h, w] }), { timeoutMs: this.parts.timeoutMs }));
    this.checkOutput(output);
  }

  /** Release the session now (shutdown, or after a self-test). */
  async close(): Promise<void> {
    this.#closed = true;
    const session = this.#session;
    this.#session = undefined;
    this.#loaded = undefined;
    this.parts.queue.drain(`model ${this.config.name} was replaced or removed; retry`);
    if (session) await session.then((s) => s.close(), () => undefined);
    this.#markClosed();
  }
}

const firstLine = (err: unknown) => String(err instanceof Error ? err.message : err).split('\n')[0]!.slice(0, 300);
