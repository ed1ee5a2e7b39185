/**
 * Idempotency records in process memory: for the single-process default. With
 * several replicas use the Redis store, or a retry landing on another replica
 * runs the request again.
 */
import {
  DEFAULT_LEASE_SECONDS,
  DEFAULT_MAX_BODY_BYTES,
  boundResponse,
  checkClaim,
  checkIds,
  checkTtl,
  idempotencyId,
} from './shared.js';
import type { Begin, IdempotencyLimits, IdempotencyStore, StoredResponse } from './types.js';

export interface MemoryIdempotencyStoreOptions extends IdempotencyLimits {
  /** Most records kept (default 10,000); past it the least recently used goes. */
  maxEntries?: number;
  /** Most response bytes kept in all (default 64 MiB); past it the least recently used go. */
  maxTotalBytes?: number;
  /** Clock in ms since the epoch; tests inject a fake one. */
  now?: () => number;
}

interface Entry {
  fingerprint: string;
  done: boolean;
  response?: StoredResponse;
  expiresAt: number;
  bytes: number;
}

export class MemoryIdempotencyStore implements IdempotencyStore {
  private readonly leaseSeconds: number;
  private readonly maxBodyBytes: number;
  private readonly maxEntries: number;
  private readonly maxTotalBytes: number;
  private readonly now: () => number;
  // Insertion-ordered; re-inserted on write, so the first entry is the least recently written.
  // Under pressure an in-progress claim may be evicted too: memory stays bounded at the
  // price of possibly running one request twice.
  private readonly entries = new Map<string, Entry>();
  private totalBytes = 0;

  constructor(opts: MemoryIdempotencyStoreOptions = {}) {
    this.leaseSeconds = opts.leaseSeconds ?? DEFAULT_LEASE_SECONDS;
    this.maxBodyBytes = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
    this.maxEntries = opts.maxEntries ?? 10_000;
    this.maxTotalBytes = opts.maxTotalBytes ?? 64 * 1024 * 1024;
    this.now = opts.now ?? Date.now;
    checkTtl('leaseSeconds', this.leaseSeconds);
  }

  get size(): number {
    return this.entries.size;
  }

  // Each method is synchronous between lookup and write, which makes it atomic
  // against concurrent calls in this process.
  async begin(scope: string, token: string, fingerprint: string, ttlSeconds: number): Promise<Begin> {
    checkClaim(scope, token, fingerprint, ttlSeconds);
    const id = idempotencyId(scope, token);
    const entry = this.live(id);
    if (!entry) {
      const leaseMs = Math.min(this.leaseSeconds, ttlSeconds) * 1000;
      this.put(id, { fingerprint, done: false, expiresAt: this.now() + leaseMs, bytes: 0 });
      return { state: 'started' };
    }
    if (entry.fingerprint !== fingerprint) return { state: 'mismatch' };
    if (!entry.done || !entry.response) return { state: 'in-progress' };
    return { state: 'replay', response: copy(entry.response) };
  }

  async complete(
    scope: string,
    token: string,
    fingerprint: string,
    response: StoredResponse,
    ttlSeconds: number,
  ): Promise<void> {
    checkClaim(scope, token, fingerprint, ttlSeconds);
    const id = idempotencyId(scope, token);
    const entry = this.live(id);
    // Our lease ran out and another request took the token: its claim wins.
    if (entry && entry.fingerprint !== fingerprint) return;
    const kept = boundResponse(response, this.maxBodyBytes);
    const bytes = kept.body.length + JSON.stringify(kept.headers).length;
    this.put(id, { fingerprint, done: true, response: kept, expiresAt: this.now() + ttlSeconds * 1000, bytes });
  }

  async abort(scope: string, token: string): Promise<void> {
    checkIds(scope, token);
    const id = idempotencyId(scope, token);
    const entry = this.entries.get(id);
    if (entry && !entry.done) this.remove(id);
  }

  async close(): Promise<void> {
    this.entries.clear();
    this.totalBytes = 0;
  }

  private live(id: string): Entry | undefined {
    const entry = this.entries.get(id);
    if (entry && entry.expiresAt <= this.now()) {
      this.remove(id);
      return undefined;
    }
    return entry;
  }

  private put(id: string, entry: Entry): void {
    this.remove(id);
    this.entries.set(id, entry);
    this.totalBytes += entry.bytes;
    this.sweep();
  }

  private remove(id: string): void {
    const old = this.entries.get(id);
    if (!old) return;
    this.totalBytes -= old.bytes;
    this.entries.delete(id);
  }

  /** Drops expired records from the old end, then the oldest until within bounds. */
  private sweep(): void {
    const now = this.now();
    for (const [id, entry] of this.entries) {
      const over = this.entries.size > this.maxEntries || this.totalBytes > this.maxTotalBytes;
      if (!over && entry.expiresAt > now) break;
      this.remove(id);
    }
  }
}

function copy(r: StoredResponse): StoredResponse {
  return { ...r, headers: { ...r.headers } };
}
