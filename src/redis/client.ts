/**
 * ioredis clients tuned to fail fast: the gateway would rather answer from a
 * fallback (or with a clean 503) within tens of milliseconds than hold a request
 * while Redis is slow or gone. Every Redis-backed store gets its client here.
 */
import { Redis, type RedisOptions } from 'ioredis';
import type { Config } from '../config/config.js';
import { defineCommands } from './commands.js';

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

/** Where the stores' Redis is: config.toml's [store] section. */
export type StoreConfig = Config['store'];

/**
 * The client for a [store] section. Only a single node today; Sentinel and
 * Cluster (redis_nodes, redis_sentinel_name) plug in here, so the stores never
 * learn which topology they talk to.
 */
export function createRedis(store: StoreConfig, opts: FailFastRedisOptions = {}): Redis {
  if (store.redis_mode !== 'single') throw new Error(`redis_mode "${store.redis_mode}" is not supported yet; use "single"`);
  return createFailFastRedis(store.redis_url, opts);
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

export interface RedisStoreOptions extends FailFastRedisOptions {
  /** Connection URL; may carry a password, which is never logged or reported. */
  url?: string;
  /**
   * An existing client to use instead of `url` (e.g. one from createRedis). Its
   * fail-fast settings are the caller's business (see createFailFastRedis).
   */
  client?: Redis;
  /** Whether close() closes `client` (default false: a shared client outlives the store). */
  ownsClient?: boolean;
  /** Prepended to every key, so several gateways can share a Redis. */
  keyPrefix?: string;
}

/**
 * What every Redis-backed store shares: its client (with kernelgate's Lua
 * commands registered), its key prefix, waiting for the connection and closing it.
 */
export class RedisBacked {
  readonly keyPrefix: string;
  protected readonly client: Redis;
  private readonly ownsClient: boolean;

  constructor(opts: RedisStoreOptions, store: string, defaultPrefix: string, defaultCommandTimeoutMs?: number) {
    if (opts.client) {
      this.client = opts.client;
      this.ownsClient = opts.ownsClient ?? false;
    } else if (opts.url) {
      this.client = createFailFastRedis(opts.url, { commandTimeoutMs: defaultCommandTimeoutMs, ...dropUndefined(opts) });
      this.ownsClient = true;
    } else {
      throw new TypeError(`${store} needs a url or a client`);
    }
    defineCommands(this.client);
    this.keyPrefix = opts.keyPrefix ?? defaultPrefix;
  }

  /** Waits until connected. Commands issued before that fail at once (no offline queue). */
  ready(timeoutMs = 5000): Promise<void> {
    return waitForReady(this.client, timeoutMs);
  }

  async close(): Promise<void> {
    if (!this.ownsClient) return;
    try {
      await this.client.quit();
    } catch {
      this.client.disconnect(); // quit fails when not connected; just drop the socket
    }
  }
}

function dropUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
