import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';
import { parse as parseToml } from 'smol-toml';
import type { HashAlgorithm } from '../signing/algorithms.js';
import { API_VERSIONS, configSchema } from './schema.js';

export interface Config {
  server: {
    host: string;
    port: number;
    body_limit_bytes: number;
    header_limit_bytes: number;
    request_timeout_ms: number;
    /** Open client connections at most; more are dropped at accept. */
    max_connections: number;
    trusted_proxies: string[];
    /** Addresses or CIDR ranges allowed to read GET /metrics. */
    metrics_allow: string[];
  };
  auth: {
    skew_seconds: number;
    algorithms: HashAlgorithm[];
    body_hash: 'strict' | 'backendai';
    api_versions: string[];
    problem_base_uri: string;
  };
  keypairs: { dir: string };
  /** Where rate limits, sessions and idempotency records live. */
  store: {
    kind: 'memory' | 'redis';
    redis_url: string;
    redis_mode: 'single' | 'sentinel' | 'cluster';
    /** Sentinel or cluster seed nodes "host:port". */
    redis_nodes: string[];
    redis_sentinel_name: string;
  };
  ratelimit: {
    /** Deprecated: read config.store.kind (this is copied there when [store] does not set it). */
    store: 'memory' | 'redis';
    /** Deprecated: read config.store.redis_url. */
    redis_url: string;
    window_seconds: number;
    default_limit: number;
    anonymous_limit: number;
    redis_timeout_ms: number;
    on_redis_failure: 'memory' | 'deny';
  };
  idempotency: { ttl_seconds: number };
  sessions: { idle_timeout_seconds: number; default_max_sessions: number };
  inference: {
    providers: Array<'cuda' | 'cpu'>;
    max_image_bytes: number;
    max_image_pixels: number;
    concurrency: number;
    max_queue: number;
    /** Waiting jobs one tenant may hold per model; 0: half of max_queue. */
    max_queue_per_owner: number;
    /** Memory cap of one custom model's process, MB; 0: none. */
    model_memory_mb: number;
    timeout_ms: number;
    threads: number;
    /** Uploaded custom models (relative paths resolve against the config file). */
    models_dir: string;
  };
  log: {
    level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
    /** One line per request (at info); off saves ~10 % of throughput on the auth hot path. */
    access: boolean;
  };
}

export function defaultConfig(): Config {
  return {
    server: {
      host: '127.0.0.1',
      port: 8080,
      body_limit_bytes: 10 * 1024 * 1024,
      header_limit_bytes: 16 * 1024,
      request_timeout_ms: 30_000,
      max_connections: 1024,
      trusted_proxies: [],
      metrics_allow: ['127.0.0.1/32', '::1/128'],
    },
    auth: {
      skew_seconds: 900,
      algorithms: ['sha256', 'sha384', 'sha512'],
      body_hash: 'strict',
      api_versions: [...API_VERSIONS],
      problem_base_uri: 'https://api.backend.ai/probs/',
    },
    keypairs: { dir: 'keypairs' },
    store: {
      kind: 'memory',
      redis_url: 'redis://127.0.0.1:6379',
      redis_mode: 'single',
      redis_nodes: [],
      redis_sentinel_name: 'mymaster',
    },
    ratelimit: {
      store: 'memory',
      redis_url: 'redis://127.0.0.1:6379',
      window_seconds: 900,
      default_limit: 10_000,
      anonymous_limit: 2_000,
      redis_timeout_ms: 50,
      on_redis_failure: 'memory',
    },
    idempotency: { ttl_seconds: 86_400 },
    sessions: { idle_timeout_seconds: 3_600, default_max_sessions: 8 },
    inference: {
      providers: ['cuda', 'cpu'],
      max_image_bytes: 8 * 1024 * 1024,
      max_image_pixels: 40_000_000,
      concurrency: 1,
      max_queue: 16,
      max_queue_per_owner: 0,
      model_memory_mb: 2048,
      timeout_ms: 30_000,
      threads: 0,
      models_dir: 'models',
    },
    log: { level: 'info', access: true },
  };
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

const ajv = new Ajv({ allErrors: true, strict: true });
const validate = ajv.compile(configSchema);

function describe(error: ErrorObject): string {
  const where = error.instancePath.replace(/^\//, '').replace(/\//g, '.') || '(top level)';
  if (error.keyword === 'additionalProperties') {
    const key = (error.params as { additionalProperty: string }).additionalProperty;
    return `unknown key "${where === '(top level)' ? key : `${where}.${key}`}"`;
  }
  if (error.keyword === 'enum') {
    const allowed = (error.params as { allowedValues: unknown[] }).allowedValues;
    return `"${where}" must be one of ${allowed.map((v) => JSON.stringify(v)).join(', ')}`;
  }
  return `"${where}" ${error.message ?? 'is invalid'}`;
}

/** Validates parsed TOML and merges it over the defaults. Throws ConfigError naming the key. */
export function configFromObject(raw: unknown, source = 'config'): Config {
  if (!validate(raw)) {
    const problems = (validate.errors ?? []).map(describe);
    throw new ConfigError(`${source}: ${[...new Set(problems)].join('; ')}`);
  }
  const merged = defaultConfig();
  for (const [name, values] of Object.entries(raw as Record<string, Record<string, unknown>>)) {
    Object.assign((merged as unknown as Record<string, object>)[name], values);
  }
  // Temporary (helper C's schema replaces this): the old [ratelimit] keys still choose the store.
  const given = raw as { store?: Record<string, unknown>; ratelimit?: Record<string, unknown> };
  if (given.ratelimit?.store !== undefined && given.store?.kind === undefined) merged.store.kind = merged.ratelimit.store;
  if (given.ratelimit?.redis_url !== undefined && given.store?.redis_url === undefined) merged.store.redis_url = merged.ratelimit.redis_url;
  return merged;
}

/** Reads and validates a config file; relative paths in it resolve against its folder. */
export function loadConfigFile(path: string): Config {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read ${path}: ${(error as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = parseToml(text);
  } catch (error) {
    throw new ConfigError(`${path}: not valid TOML: ${(error as Error).message.split('\n')[0]}`);
  }
  const config = configFromObject(raw, path);
  config.keypairs.dir = resolve(dirname(resolve(path)), config.keypairs.dir);
  config.inference.models_dir = resolve(dirname(resolve(path)), config.inference.models_dir);
  return config;
}
