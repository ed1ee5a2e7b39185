/**
 * Spooled uploads write up to `server.upload_limit_bytes` to disk before their signature can be checked (it
 * covers those bytes), so without a bound a client holding no valid key at all could fill the disk with
 * concurrent uploads. Slots bound it: at most `max` uploads spool at once, one client address at most half of
 * them (at least one), and an upload starts only when the spool folder's file system has room for it (twice
 * its size: the body, then the model part the form parser writes out) beyond what the running ones may still
 * write. Refusals come before a byte of the body is read: 503 + Retry-After, and the connection closes
 * (http/linger.ts), so the unread body is never drained.
 */
import { statfsSync } from 'node:fs';
import { unavailable } from '../problems/api-error.js';
import { AddressQuota } from './address-quota.js';

export interface UploadSlotOptions {
  max: number;
  /** Largest upload (`server.upload_limit_bytes`): the size assumed when no Content-Length is announced. */
  limit: number;
  /** The spool folder. */
  dir: string;
  /** Free bytes for an unprivileged writer on the folder's file system. */
  freeBytes?: (dir: string) => number;
}

const freeOnDisk = (dir: string): number => {
  const s = statfsSync(dir);
  return s.bavail * s.bsize;
};

export class UploadSlots {
  readonly #opts: Required<UploadSlotOptions>;
  readonly #slots: AddressQuota;
  /** Bytes the running uploads may still write (twice each one's size). */
  #reserved = 0;

  constructor(opts: UploadSlotOptions) {
    this.#opts = { freeBytes: freeOnDisk, ...opts };
    this.#slots = new AddressQuota(opts.max, Math.max(1, Math.floor(opts.max / 2)));
  }

  get active(): number {
    return this.#slots.held;
  }

  /** Takes a slot for an upload of `declared` bytes (undefined: unknown, chunked) from `address`; returns its release. */
  acquire(address: string, declared: number | undefined): () => void {
    const { max, limit, dir, freeBytes } = this.#opts;
    const slot = this.#slots.take(address, 1);
    if (slot === 'address') throw unavailable('Your earlier uploads are still in progress; retry when they have finished.', 5);
    if (slot === 'total') throw unavailable(`${max} uploads are already in progress; retry later.`, 5);
    const need = 2 * Math.min(declared ?? limit, limit);
    let free: number;
    try {
      free = freeBytes(dir);
    } catch {
      free = 0;
    }
    if (free < this.#reserved + need) {
      slot();
      throw unavailable('The gateway has no disk room for this upload now; retry later.', 30);
    }
    this.#reserved += need;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#reserved -= need;
      slot();
    };
  }
}
