import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface GatewayMetrics {
  registry: Registry;
  /** Counts one finished request; label children are cached, so this is a map lookup. */
  record(method: string, route: string, status: number, seconds: number): void;
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
  const counters = new Map<string, { inc(): void }>();
  const histograms = new Map<string, { observe(v: number): void }>();
  return {
    registry,
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
