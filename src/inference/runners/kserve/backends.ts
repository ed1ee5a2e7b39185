/**
 * Several Open Inference Protocol backends as one: each job goes to the available backend with the fewest
 * outstanding requests; a backend whose connection fails or that overstays a deadline is ejected (a
 * circuit breaker) and comes back once its cool-off has passed and a health probe (`GET /v2/health/ready`,
 * every `healthIntervalMs`) answers 200. A job is sent to a second backend only when the first never
 * received it (TransportError 'unsent'), so it runs at most once. A backend that answers, even with an
 * error, is alive: HTTP errors are the job's, not the backend's, and never eject it.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { InferenceLogger } from '../../providers.js';
import { ApiError, unavailable } from '../../../problems/api-error.js';
import { BackendClient, TransportError, type Exchange, type SendOptions } from './client.js';

export interface BackendSetOptions {
  urls: readonly string[];
  token: string;
  /** One inference exchange, ms. */
  timeoutMs: number;
  connectTimeoutMs: number;
  healthIntervalMs: number;
  /** How long an ejected backend stays out before a health probe may bring it back, ms. */
  ejectMs: number;
  maxResponseBytes: number;
  logger?: InferenceLogger;
  /** Where the per-backend series go (the gateway's /metrics registry). */
  metrics?: Registry;
}

export class Backend {
  outstanding = 0;
  /** Answered its last health probe. */
  healthy = true;
  ejectedUntil = 0;
  constructor(readonly client: BackendClient) {}
  get label(): string {
    return this.client.label;
  }
  available(now: number): boolean {
    return this.healthy && now >= this.ejectedUntil;
  }
}

export type Request = Omit<SendOptions, 'timeoutMs' | 'connectTimeoutMs' | 'maxResponseBytes'> & { timeoutMs?: number };

interface Series {
  latency: Histogram<'backend' | 'model'>;
  errors: Counter<'backend' | 'kind'>;
  ejections: Counter<'backend'>;
  retries: Counter<'backend'>;
}

function createSeries(registry: Registry, set: BackendSet): Series {
  const registers = [registry];
  new Gauge({
    name: 'kernelgate_kserve_backend_available',
    help: '1 while an inference backend takes jobs (healthy and not ejected), per backend.',
    labelNames: ['backend'],
    registers,
    collect() {
      const now = Date.now();
      for (const b of set.backends) this.set({ backend: b.label }, b.available(now) ? 1 : 0);
    },
  });
  new Gauge({
    name: 'kernelgate_kserve_outstanding',
    help: 'Requests sent to an inference backend and not yet answered, per backend.',
    labelNames: ['backend'],
    registers,
    collect() {
      for (const b of set.backends) this.set({ backend: b.label }, b.outstanding);
    },
  });
  return {
    latency: new Histogram({
      name: 'kernelgate_kserve_request_duration_seconds',
      help: 'Inference exchanges with a backend that got an answer, by backend and model.',
      labelNames: ['backend', 'model'],
      buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 30],
      registers,
    }),
    errors: new Counter({
      name: 'kernelgate_kserve_errors_total',
      help: 'Failed exchanges with a backend, by kind: unsent, timeout, broken, too-large (transport) or http_<status>.',
      labelNames: ['backend', 'kind'],
      registers,
    }),
    ejections: new Counter({ name: 'kernelgate_kserve_ejections_total', help: 'Times a backend was taken out of rotation.', labelNames: ['backend'], registers }),
    retries: new Counter({ name: 'kernelgate_kserve_retries_total', help: 'Jobs sent to another backend because this one never received them.', labelNames: ['backend'], registers }),
  };
}

export class BackendSet {
  readonly backends: Backend[];
  readonly #opts: BackendSetOptions;
  readonly #series: Series;
  readonly #timer: NodeJS.Timeout;
  #next = 0;
  #closed = false;

  constructor(opts: BackendSetOptions) {
    if (opts.urls.length === 0) throw new Error('inference.backend = "kserve" needs at least one URL in inference.kserve_urls');
    this.#opts = opts;
    this.backends = opts.urls.map((u) => new Backend(new BackendClient(u, opts.token)));
    this.#series = createSeries(opts.metrics ?? new Registry(), this);
    this.#timer = setInterval(() => void this.probeAll(), opts.healthIntervalMs);
    this.#timer.unref();
    void this.probeAll();
  }

  /** One round of health probes; an ejected backend whose cool-off has passed comes back on a 200. */
  async probeAll(): Promise<void> {
    await Promise.all(
      this.backends.map(async (b) => {
        let ok = false;
        try {
          const res = await b.client.send({ method: 'GET', path: '/v2/health/ready', timeoutMs: Math.min(this.#opts.healthIntervalMs, 5000), connectTimeoutMs: this.#opts.connectTimeoutMs, maxResponseBytes: 65536 });
          ok = res.status === 200;
        } catch {
          ok = false;
        }
        if (this.#closed) return;
        if (ok !== b.healthy) this.#opts.logger?.warn({ backend: b.label, healthy: ok }, ok ? 'inference backend is ready again' : 'inference backend is not ready');
        b.healthy = ok;
        if (ok && b.ejectedUntil > 0 && Date.now() >= b.ejectedUntil) b.ejectedUntil = 0;
      }),
    );
  }

  /** The available backend with the fewest outstanding requests (ties rotate), not `except`. */
  pick(except?: Backend): Backend | undefined {
    const now = Date.now();
    const n = this.backends.length;
    let best: Backend | undefined;
    for (let k = 0; k < n; k++) {
      const b = this.backends[(this.#next + k) % n]!;
      if (b === except || !b.available(now)) continue;
      if (!best || b.outstanding < best.outstanding) best = b;
    }
    this.#next = (this.#next + 1) % n;
    return best;
  }

  eject(b: Backend, why: string): void {
    b.client.dropIdle();
    if (b.ejectedUntil > Date.now()) return;
    b.ejectedUntil = Date.now() + this.#opts.ejectMs;
    this.#series.ejections.labels(b.label).inc();
    this.#opts.logger?.warn({ backend: b.label, reason: why, for_ms: this.#opts.ejectMs }, 'inference backend ejected');
  }

  #noBackend(): ApiError {
    const now = Date.now();
    const soonest = Math.min(...this.backends.map((b) => (b.healthy ? Math.max(b.ejectedUntil - now, 0) : this.#opts.healthIntervalMs)));
    return unavailable('No inference backend is available; retry later.', Math.max(1, Math.ceil((soonest + this.#opts.healthIntervalMs) / 1000)));
  }

  /**
   * Sends one request to the best backend; when that one never received it, once more to another.
   * Transport failures eject the backend and become 503 (504 for a deadline); HTTP answers are returned.
   */
  async exchange(model: string, req: Request): Promise<{ backend: Backend; res: Exchange }> {
    const first = this.pick();
    if (!first) throw this.#noBackend();
    try {
      return await this.#once(first, model, req);
    } catch (error) {
      if (!(error instanceof TransportError) || error.kind !== 'unsent') throw this.#asApiError(error);
      const second = this.pick(first);
      if (!second) throw this.#asApiError(error);
      this.#series.retries.labels(first.label).inc();
      try {
        return await this.#once(second, model, req);
      } catch (again) {
        throw this.#asApiError(again);
      }
    }
  }

  async #once(b: Backend, model: string, req: Request): Promise<{ backend: Backend; res: Exchange }> {
    b.outstanding++;
    const started = performance.now();
    try {
      const res = await b.client.send({ ...req, timeoutMs: req.timeoutMs ?? this.#opts.timeoutMs, connectTimeoutMs: this.#opts.connectTimeoutMs, maxResponseBytes: this.#opts.maxResponseBytes });
      this.#series.latency.labels(b.label, model).observe((performance.now() - started) / 1000);
      if (res.status !== 200) this.#series.errors.labels(b.label, `http_${res.status}`).inc();
      return { backend: b, res };
    } catch (error) {
      const kind = error instanceof TransportError ? error.kind : 'broken';
      this.#series.errors.labels(b.label, kind).inc();
      if (kind !== 'too-large') this.eject(b, (error as Error).message);
      this.#opts.logger?.warn({ backend: b.label, model, kind, detail: (error as Error).message }, 'inference backend exchange failed');
      throw error;
    } finally {
      b.outstanding--;
    }
  }

  #asApiError(error: unknown): Error {
    if (error instanceof ApiError) return error;
    if (error instanceof TransportError) {
      if (error.kind === 'timeout') return new ApiError(504, 'gateway-timeout', 'The inference backend did not answer in time.');
      return unavailable('The inference backend failed; retry later.', 1);
    }
    return error as Error;
  }

  close(): void {
    this.#closed = true;
    clearInterval(this.#timer);
    for (const b of this.backends) b.client.close();
  }
}
