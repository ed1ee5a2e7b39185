import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import { MemoryRateLimitStore } from '../ratelimit/memory-store.js';
import type { RateLimitStore } from '../ratelimit/types.js';

/** Builds the rate-limit store that config.toml names. */
export async function createRateLimitStore(cfg: Config['ratelimit'], _log: Logger): Promise<RateLimitStore> {
  return new MemoryRateLimitStore();
}
