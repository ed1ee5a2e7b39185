/** Idempotent retries: the store interface and its memory and Redis implementations. */
export type { Begin, IdempotencyLimits, IdempotencyStore, StoredResponse } from './types.js';
export { MemoryIdempotencyStore, type MemoryIdempotencyStoreOptions } from './memory-store.js';
export { RedisIdempotencyStore, type RedisIdempotencyStoreOptions } from './redis-store.js';
export { requestFingerprint, idempotencyId, DEFAULT_LEASE_SECONDS, DEFAULT_MAX_BODY_BYTES } from './shared.js';
