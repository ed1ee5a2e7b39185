/**
 * ioredis clients tuned to fail fast: the gateway would rather answer from a
 * fallback (or with a clean 503) within tens of milliseconds than hold a request
 * while Redis is slow or gone. Every Redis-backed store gets its client here.
 */
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { Config } from '../config/config.js';
import { defineCommands } from './commands.js';
import { storeTopology, type RedisCredentials, type RedisNode } from './topology.js';

/** A single node, a Sentinel-managed master or a Cluster: the stores use the commands all three share. */
export type RedisClient = Redis | Cluster;

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
 * The client for a [store] section, so the stores never learn which topology
 * they talk to. Every mode keeps the same deadline per command (commandTimeoutMs):
 * what does not answer within it fails, and the caller falls back (rate limits)
 * or answers 503 (sessions, idempotency) exactly as with one node.
 *
 * - single: fail fast while disconnected (no offline queue): there is no other
 *   node to wait for.
 * - sentinel: asks the sentinels for the master on every (re)connect and
 *   reconnects on READONLY (a demoted master); commands issued during the
 *   switch queue, each still bounded by its deadline.
 * - cluster: follows MOVED/ASK, retries CLUSTERDOWN/TRYAGAIN and lost
 *   connections after refreshing the slot map, all inside the one deadline.
 *   No auto-pipelining there: ioredis retries a pipeline as a whole and a
 *   command's deadline inside one was seen to stretch to 2+ s in a failover.
 */
export function createRedis(store: StoreConfig, opts: FailFastRedisOptions = {}): RedisClient {
  const topology = storeTopology(store);
  switch (topology.mode) {
    case 'single':
      return createFailFastRedis(topology.url, opts);
    case 'sentinel':
      return createSentinelRedis(topology.nodes, topology.name, topology.credentials, opts);
    case 'cluster':
      return createClusterRedis(topology.nodes, topology.credentials, opts);
  }
}

function failFastOptions(opts: FailFastRedisOptions): RedisOptions {
  const maxDelay = opts.maxReconnectDelayMs ?? 1000;
  return {
    ...opts.extra,
    // Concurrent requests' commands go out in one write per tick: fewer syscalls under load.
    enableAutoPipelining: true,
    commandTimeout: opts.commandTimeoutMs ?? 50,
    connectTimeout: opts.connectTimeoutMs ?? 1000,
    maxRetriesPerRequest: opts.maxRetriesPerRequest ?? 1,
    retryStrategy: (times: number) => Math.min(times * 100, maxDelay),
  };
}

function credentialOptions(c: RedisCredentials): RedisOptions {
  return {
    ...(c.username !== undefined ? { username: c.username } : {}),
    ...(c.password !== undefined ? { password: c.password } : {}),
    ...(c.tls ? { tls: {} } : {}),
  };
}

export function createFailFastRedis(url: string, opts: FailFastRedisOptions = {}): Redis {
  const client = new Redis(url, {
    ...failFastOptions(opts),
    // With the queue on, commands issued while disconnected would wait for the
    // reconnect; with it off they reject at once and the caller can fall back.
    enableOfflineQueue: false,
  });
  return quiet(client);
}

function createSentinelRedis(sentinels: RedisNode[], name: string, credentials: RedisCredentials, opts: FailFastRedisOptions): Redis {
  const maxDelay = opts.maxReconnectDelayMs ?? 1000;
  const client = new Redis({
    ...failFastOptions(opts),
    ...credentialOptions(credentials),
    db: credentials.db,
    sentinels,
    name,
    role: 'master',
    enableTLSForSentinelMode: credentials.tls,
    // Keep asking the sentinels (every ≤ maxDelay) rather than giving up on the master.
    sentinelRetryStrategy: (times: number) => Math.min(times * 100, maxDelay),
    // Not failoverDetector: ioredis 5.11's detector can close the connector while it resolves the
    // master, which ends the client for good ("Connection is closed." forever; seen in
    // test/redis-topologies.test.ts). A dead master closes the socket anyway, and a demoted live
    // one answers writes with READONLY (below).
    // Commands issued while it moves wait for the new master, each bounded by commandTimeout.
    enableOfflineQueue: true,
    // A master demoted to replica answers writes with READONLY: reconnect (asking the sentinels) and resend.
    reconnectOnError: (err: Error) => (err.message.startsWith('READONLY') ? 2 : false),
  });
  return quiet(client);
}

function createClusterRedis(seeds: RedisNode[], credentials: RedisCredentials, opts: FailFastRedisOptions): Cluster {
  const maxDelay = opts.maxReconnectDelayMs ?? 1000;
  const deadline = opts.commandTimeoutMs ?? 50;
  const { enableAutoPipelining: _perNode, ...nodeOptions } = failFastOptions(opts);
  const clusterOptions: ClusterOptions = {
    redisOptions: { ...nodeOptions, ...credentialOptions(credentials) },
    enableAutoPipelining: false, // see createRedis
    // Commands wait (bounded by the deadline below) while the slot map is refreshed or a replica takes over.
    enableOfflineQueue: true,
    clusterRetryStrategy: (times: number) => Math.min(times * 100, maxDelay),
    retryDelayOnFailover: 100,
    retryDelayOnClusterDown: 100,
    retryDelayOnTryAgain: 100,
    maxRedirections: 16,
    slotsRefreshTimeout: 1000,
  };
  const client = new Cluster(seeds, clusterOptions);
  // The per-node commandTimeout restarts with every redirection and retry, and the
  // cluster's own offline queue has none: one deadline per command, set where the
  // command enters the cluster (Command.setTimeout arms once; later calls keep it).
  const send = client.sendCommand.bind(client);
  client.sendCommand = ((command: Parameters<Cluster['sendCommand']>[0], ...rest: unknown[]) => {
    (command as unknown as { setTimeout(ms: number): void }).setTimeout(deadline);
    return (send as (...args: unknown[]) => unknown)(command, ...rest);
  }) as Cluster['sendCommand'];
  return quiet(client);
}

/**
 * Without a listener ioredis prints every connection error to the console. The
 * stores report failures through their callers (health(), the failover log).
 */
function quiet<T extends RedisClient>(client: T): T {
  client.on('error', () => {});
  return client;
}

/** Resolves when the client is connected, or rejects after `timeoutMs`. */
export function waitForReady(client: RedisClient, timeoutMs = 5000): Promise<void> {
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
  client?: RedisClient;
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
  protected readonly client: RedisClient;
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
