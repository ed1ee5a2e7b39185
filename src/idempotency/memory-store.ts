/**
 * Idempotency records in process memory: for the single-process default. With
 * several replicas use the Redis store, or a retry landing on another replica
 * runs the request again.
 */
import { LRUCache } from 'lru-cache';
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
  // Least recently written first (reads use peek(), which does not promote). Under
  // pressure an in-progress claim may be evicted too: memory stays bounded at the
  // price of possibly running one request twice.
  private readonly entries: LRUCache<string, Entry>;
  private totalBytes = 0;

  constructor(opts: MemoryIdempotencyStoreOptions = {}) {
    this.leaseSeconds = opts.leaseSeconds ?? DEFAULT_LEASE_SECONDS;
    this.maxBodyBytes = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
    this.maxEntries = opts.maxEntries ?? 10_000;
    this.maxTotalBytes = opts.maxTotalBytes ?? 64 * 1024 * 1024;
    this.now = opts.now ?? Date.now;
    checkTtl('leaseSeconds', this.leaseSeconds);
    this.entries = new LRUCache<string, Entry>({
      max: this.maxEntries,
      // The byte bound stays ours: lru-cache's maxSize cannot count an in-progress claim as 0 bytes.
      dispose: (entry) => {
        this.totalBytes -= entry.bytes;
      },
    });
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
    const entry = this.entries.peek(id);
    if (entry && !entry.done) this.entries.delete(id);
  }

  async close(): Promise<void> {
    this.entries.clear();
    this.totalBytes = 0;
  }

  private live(id: string): Entry | undefined {
    const entry = this.entries.peek(id);
    if (entry && entry.expiresAt <= this.now()) {
      this.entries.delete(id);
      return undefined;
    }
    return entry;
  }

  private put(id: string, entry: Entry): void {
    // Delete first so the old record's bytes are returned before the new ones count.
    this.entries.delete(id);
    this.entries.set(id, entry);
    this.totalBytes += entry.bytes;
    this.sweep();
  }

  /** Drops expired records from the old end, then the oldest until within the byte bound. */
  private sweep(): void {
    const now = this.now();
    const drop: string[] = [];
    let bytes = this.totalBytes;
    for (const id of this.entries.rkeys()) {
      const entry = this.entries.peek(id)!;
      if (bytes <= this.maxTotalBytes && entry.expiresAt > now) break;
      bytes -= entry.bytes;
      drop.push(id);
    }
    for (const id of drop) this.entries.delete(id);
  }
}

function copy(r: StoredResponse): StoredResponse {
  return { ...r, headers: { ...r.headers } };
}
