/**
 * An ioredis client tuned to fail fast: the gateway would rather answer from a
 * fallback (or with a clean 503) within tens of milliseconds than hold a request
 * while Redis is slow or gone. Shared by the rate-limit and idempotency stores.
 */
import { Redis, type RedisOptions } from 'ioredis';

export interface FailFastRedisOptions {
  /** Per-command deadline (default 50 ms). A Redis on the same network answers in well under 1 ms. */
  commandTimeoutMs?: number;
  /** Deadline for establishing a connection (default 1000 ms). */
  connectTimeoutMs?: number;
  /** Reconnect attempts a queued command survives before it is failed (default 1). */
  maxRetriesPerRequest?: number;
  /** Longest pause between reconnect attempts (default 1000 ms), so recovery is noticed within about a second. */
  maxReconnectDelayMs?: number;
  /** Further ioredis options; the fail-fast ones above win. */
  extra?: RedisOptions;
}

export function createFailFastRedis(url: string, opts: FailFastRedisOptions = {}): Redis {
  const maxDelay = opts.maxReconnectDelayMs ?? 1000;
  const client = new Redis(url, {
    ...opts.extra,
    // Concurrent requests' commands go out in one write per tick: fewer syscalls under load.
    enableAutoPipelining: true,
    commandTimeout: opts.commandTimeoutMs ?? 50,
    connectTimeout: opts.connectTimeoutMs ?? 1000,
    maxRetriesPerRequest: opts.maxRetriesPerRequest ?? 1,
    // With the queue on, commands issued while disconnected would wait for the
    // reconnect; with it off they reject at once and the caller can fall back.
    enableOfflineQueue: false,
    retryStrategy: (times: number) => Math.min(times * 100, maxDelay),
  });
  // Without a listener ioredis prints every connection error to the console. The
  // stores report failures through their callers (health(), the failover log).
  client.on('error', () => {});
  return client;
}

/** Resolves when the client is connected, or rejects after `timeoutMs`. */
export function waitForReady(client: Redis, timeoutMs = 5000): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off('ready', onReady);
      reject(new Error(`Redis not ready after ${timeoutMs} ms (status ${client.status})`));
    }, timeoutMs);
    const onReady = () => {
      clearTimeout(timer);
      resolve();
    };
    client.once('ready', onReady);
  });
}

/**
 * An error's message, safe to log or show in /health: ioredis messages carry at
 * most host:port, but strip anything URL-shaped with credentials just in case.
 */
export function describeRedisError(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return msg.replace(/rediss?:\/\/[^\s@/]*@/gi, 'redis://***@').slice(0, 200);
}

/** A store's client: the caller's (left open on close) or a new fail-fast one of its own. */
export function clientFrom(
  opts: FailFastRedisOptions & { url?: string; client?: Redis },
  store: string,
): { client: Redis; ownsClient: boolean } {
  if (opts.client) return { client: opts.client, ownsClient: false };
  if (opts.url) return { client: createFailFastRedis(opts.url, opts), ownsClient: true };
  throw new TypeError(`${store} needs a url or a client`);
}

/**
 * Fails fast for a moment after a Redis command timed out, so that while Redis
 * hangs each request waits for one timeout at most once per cool-off instead of
 * every request waiting its full command timeout. After the cool-off one request
 * probes (half-open); the others still fail at once until it has an answer.
 */
export class CircuitBreaker {
  private openUntil = 0;
  /** Set after a timeout; cleared by the first command that does not time out. */
  private tripped = false;
  private probing = false;
  constructor(private readonly coolOffMs = 1000) {}

  async run<T>(op: () => Promise<T>): Promise<T> {
    if (Date.now() < this.openUntil || this.probing) throw new Error('circuit open: Redis timed out moments ago');
    const probe = this.tripped;
    if (probe) this.probing = true;
    try {
      const value = await op();
      this.tripped = false;
      return value;
    } catch (error) {
      if (/timed out/i.test((error as Error)?.message ?? '')) {
        this.tripped = true;
        this.openUntil = Date.now() + this.coolOffMs;
      } else {
        this.tripped = false;
      }
      throw error;
    } finally {
      if (probe) this.probing = false;
    }
  }
}
