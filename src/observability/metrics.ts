import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Read at scrape time: per-model queue state and whether the shared store is reachable. */
export interface LiveState {
  queues(): Array<{ model: string; running: number; queued: number; completed: number; rejected: number; timedOut: number }>;
  degraded(): Record<string, boolean>;
}

export interface GatewayMetrics {
  registry: Registry;
  /** Adds gauges read from the gateway's live state on every scrape. */
  observe(state: LiveState): void;
  /** Counts one finished request; label children are cached, so this is a map lookup. */
  record(method: string, route: string, status: number, seconds: number): void;
  /** Counts one request authenticated by a scheme other than HMAC, by scheme and credential id (API key id, token subject). */
  recordCredential(scheme: string, credentialId: string): void;
}

/** One registry per gateway instance, so tests can build several in a process. */
export function createMetrics(): GatewayMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const requests = new Counter({
      name: 'kernelgate_http_requests_total',
      help: 'HTTP requests by route template and status.',
      labelNames: ['method', 'route', 'status'],
      registers: [registry],
    });
  const duration = new Histogram({
      name: 'kernelgate_http_request_duration_seconds',
      help: 'Time from the first byte of the request to the response.',
      labelNames: ['route'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
      registers: [registry],
    });
  const credentials = new Counter({
      name: 'kernelgate_credential_requests_total',
      help: 'Requests authenticated by a scheme other than HMAC, by scheme and credential id (API key id, token subject; never the credential).',
      labelNames: ['scheme', 'credential'],
      registers: [registry],
    });
  const counters = new Map<string, { inc(): void }>();
  const histograms = new Map<string, { observe(v: number): void }>();
  return {
    registry,
    observe(state) {
      const queueGauge = (name: string, help: string, pick: (q: ReturnType<LiveState['queues']>[number]) => number) =>
        new Gauge({
          name,
          help,
          labelNames: ['model'],
          registers: [registry],
          collect() {
            this.reset();
            for (const q of state.queues()) this.set({ model: q.model }, pick(q));
          },
        });
      queueGauge('kernelgate_inference_running', 'Inference jobs running now, per model.', (q) => q.running);
      queueGauge('kernelgate_inference_queued', 'Inference jobs waiting for a slot, per model.', (q) => q.queued);
      queueGauge('kernelgate_inference_completed', 'Inference jobs finished since start, per model.', (q) => q.completed);
      queueGauge('kernelgate_inference_rejected', 'Inference jobs refused because the queue was full, per model.', (q) => q.rejected);
      queueGauge('kernelgate_inference_timed_out', 'Inference jobs past their deadline, per model.', (q) => q.timedOut);
      new Gauge({
        name: 'kernelgate_degraded',
        help: '1 while a part of the gateway runs degraded (e.g. Redis unreachable), per part.',
        labelNames: ['part'],
        registers: [registry],
        collect() {
          this.reset();
          for (const [part, down] of Object.entries(state.degraded())) this.set({ part }, down ? 1 : 0);
        },
      });
    },
    recordCredential(scheme, credentialId) {
      const key = `\u0000${scheme} ${credentialId}`;
      let counter = counters.get(key);
      if (counter === undefined) counters.set(key, (counter = credentials.labels(scheme, credentialId)));
      counter.inc();
    },
    record(method, route, status, seconds) {
      const key = `${method} ${route} ${status}`;
      let counter = counters.get(key);
      if (counter === undefined) counters.set(key, (counter = requests.labels(method, route, String(status))));
      counter.inc();
      let histogram = histograms.get(route);
      if (histogram === undefined) histograms.set(route, (histogram = duration.labels(route)));
      histogram.observe(seconds);
    },
  };
}
