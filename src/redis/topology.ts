/**
 * What a [store] section says about where Redis is: the mode, the seed nodes and
 * what redis_url contributes to every mode (credentials, database, TLS). Parsed
 * once, checked at config load (so a bad combination stops the start with the
 * key's name) and again by the client factory for callers that build configs in code.
 */
import type { Config } from '../config/config.js';

export interface RedisNode {
  host: string;
  port: number;
}

/** The parts of redis_url that apply to Sentinel and Cluster too (its host and port are the single node). */
export interface RedisCredentials {
  username?: string;
  password?: string;
  db: number;
  tls: boolean;
}

export type StoreTopology =
  | { mode: 'single'; url: string }
  | { mode: 'sentinel'; nodes: RedisNode[]; name: string; credentials: RedisCredentials }
  | { mode: 'cluster'; nodes: RedisNode[]; credentials: RedisCredentials };

/** "host:port" or "[v6]:port"; the same pattern the config schema enforces on store.redis_nodes. */
export const REDIS_NODE_PATTERN = '^(\\[[0-9A-Fa-f:.]{2,45}\\]|[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?):[0-9]{1,5}$';
const NODE = new RegExp(REDIS_NODE_PATTERN);

export function parseRedisNode(text: string): RedisNode {
  if (!NODE.test(text)) throw new Error(`store.redis_nodes: "${text.slice(0, 80)}" is not "host:port"`);
  const at = text.lastIndexOf(':');
  const port = Number(text.slice(at + 1));
  if (port < 1 || port > 65535) throw new Error(`store.redis_nodes: port ${port} of "${text}" is not 1-65535`);
  const host = text.slice(0, at);
  return { host: host.startsWith('[') ? host.slice(1, -1) : host, port };
}

/** Never echoes the URL: it may carry a password. */
export function parseRedisCredentials(url: string): RedisCredentials {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error('store.redis_url is not a URL (redis://[user:password@]host:port[/db] or rediss://...)');
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new Error('store.redis_url must start with redis:// or rediss://');
  const path = u.pathname.replace(/^\//, '');
  if (!/^\d{0,2}$/.test(path)) throw new Error('store.redis_url: the path must be a database number 0-99 (e.g. redis://host:6379/0)');
  const decode = (s: string) => {
    try {
      return decodeURIComponent(s);
    } catch {
      throw new Error('store.redis_url: the user or password is not valid percent-encoding');
    }
  };
  return {
    ...(u.username ? { username: decode(u.username) } : {}),
    ...(u.password ? { password: decode(u.password) } : {}),
    db: path === '' ? 0 : Number(path),
    tls: u.protocol === 'rediss:',
  };
}

/** Throws an Error naming the [store] key at fault. */
export function storeTopology(store: Config['store']): StoreTopology {
  if (store.redis_mode === 'single') return { mode: 'single', url: store.redis_url };
  if (store.redis_nodes.length === 0) {
    throw new Error(`store.redis_nodes: redis_mode "${store.redis_mode}" needs at least one seed node "host:port"`);
  }
  const nodes = store.redis_nodes.map(parseRedisNode);
  const credentials = parseRedisCredentials(store.redis_url);
  if (store.redis_mode === 'sentinel') return { mode: 'sentinel', nodes, name: store.redis_sentinel_name, credentials };
  if (credentials.db !== 0) {
    throw new Error(`store.redis_url: Redis Cluster has only database 0, but redis_url selects database ${credentials.db}`);
  }
  return { mode: 'cluster', nodes, credentials };
}
