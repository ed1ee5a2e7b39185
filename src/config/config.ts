import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { ajv, describeProblem, type ValidationProblem } from '../validation/ajv.js';
import { storeTopology } from '../redis/topology.js';
import { ConfigSchema, type Config } from './schema.js';

export type { Config } from './schema.js';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** A loaded config and what its reader should be told once (deprecated keys). */
export interface LoadedConfig {
  config: Config;
  warnings: string[];
}

export interface ConfigOptions {
  /** Names the config in error messages (its file path). */
  source?: string;
  /** keypairs.dir and inference.models_dir resolve against this folder; unchanged without it. */
  baseDir?: string;
  /** Last changes before the config is frozen: command-line overrides. */
  adjust?: (config: Config) => void;
}

const validate = ajv.compile<Config>(ConfigSchema);

/** A fresh, unfrozen config of the schema's defaults, for tests and benches to adjust. */
export function defaultConfig(): Config {
  const config = {};
  if (!validate(config)) throw new Error('the config schema refuses its own defaults');
  return config;
}

function describe({ path, message, unknownKey, allowed }: ValidationProblem): string {
  if (unknownKey !== undefined) return `unknown key "${path ? `${path}.${unknownKey}` : unknownKey}"`;
  const where = path || '(top level)';
  if (allowed !== undefined) return `"${where}" must be one of ${allowed.map((v) => JSON.stringify(v)).join(', ')}`;
  return `"${where}" ${message}`;
}

/**
 * A copy of parsed TOML/JSON that Ajv may fill with defaults without touching the caller's value.
 * Object.fromEntries keeps a `__proto__` key an own key, so validation still refuses it.
 */
function plainCopy(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(plainCopy);
  if (value !== null && typeof value === 'object' && !(value instanceof Date)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plainCopy(v)]));
  }
  return value;
}

function given(raw: unknown, section: string, key: string): boolean {
  if (raw === null || typeof raw !== 'object' || !Object.hasOwn(raw, section)) return false;
  const values = (raw as Record<string, unknown>)[section];
  return values !== null && typeof values === 'object' && Object.hasOwn(values, key);
}

/** `[store]` replaces `[ratelimit] store` / `redis_url`: the old keys still work, and mirror the new ones. */
const DEPRECATED = [
  ['store', 'kind'],
  ['redis_url', 'redis_url'],
] as const;

function applyDeprecatedKeys(raw: unknown, config: Config, source: string, warnings: string[]): void {
  const used: Array<[string, string]> = [];
  for (const [old, current] of DEPRECATED) {
    if (!given(raw, 'ratelimit', old)) continue;
    used.push([`ratelimit.${old}`, `store.${current}`]);
    const value = config.ratelimit[old];
    if (!given(raw, 'store', current)) {
      (config.store as Record<string, unknown>)[current] = value;
    } else if (config.store[current] !== value) {
      throw new ConfigError(
        `${source}: "ratelimit.${old}" (${JSON.stringify(value)}) and "store.${current}" (${JSON.stringify(config.store[current])}) disagree; ` +
          `ratelimit.${old} is deprecated: keep store.${current} only`,
      );
    }
  }
  config.ratelimit.store = config.store.kind;
  config.ratelimit.redis_url = config.store.redis_url;
  if (used.length > 0) {
    const olds = used.map(([o]) => o).join(' and ');
    const news = used.map(([, n]) => n).join(' and ');
    warnings.push(`${source}: ${olds} ${used.length === 1 ? 'is' : 'are'} deprecated: use ${news} ([store] section)`);
  }
}

/** The [store] keys that only make sense together (mode, nodes, redis_url's database), checked when Redis is used. */
function checkRedisTopology(config: Config, source: string): void {
  if (config.store.kind !== 'redis') return;
  try {
    storeTopology(config.store);
  } catch (error) {
    throw new ConfigError(`${source}: ${(error as Error).message}`);
  }
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

/** Validates parsed TOML, fills in the defaults and freezes the result. Throws ConfigError naming the key. */
export function buildConfig(raw: unknown, options: ConfigOptions = {}): LoadedConfig {
  const source = options.source ?? 'config';
  const config = plainCopy(raw);
  if (!validate(config)) {
    const problems = (validate.errors ?? []).map((error) => describe(describeProblem(error)));
    throw new ConfigError(`${source}: ${[...new Set(problems)].join('; ')}`);
  }
  const warnings: string[] = [];
  applyDeprecatedKeys(raw, config, source, warnings);
  checkRedisTopology(config, source);
  if (config.inference.backend === 'kserve' && config.inference.kserve_urls.length === 0) {
    throw new ConfigError(`${source}: "inference.backend" is "kserve" but "inference.kserve_urls" is empty`);
  }
  if (options.baseDir !== undefined) {
    config.keypairs.dir = resolve(options.baseDir, config.keypairs.dir);
    config.inference.models_dir = resolve(options.baseDir, config.inference.models_dir);
  }
  options.adjust?.(config);
  return { config: deepFreeze(config), warnings };
}

/** Reads and validates a config file; relative paths in it resolve against its folder. */
export function readConfigFile(path: string, options: Pick<ConfigOptions, 'adjust'> = {}): LoadedConfig {
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
  return buildConfig(raw, { ...options, source: path, baseDir: dirname(resolve(path)) });
}

/** buildConfig without its warnings: for callers that have no one to tell. */
export function configFromObject(raw: unknown, source = 'config'): Config {
  return buildConfig(raw, { source }).config;
}

/** readConfigFile without its warnings: for callers that have no one to tell (kernelgate keypair). */
export function loadConfigFile(path: string): Config {
  return readConfigFile(path).config;
}
