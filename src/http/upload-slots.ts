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
  readonly #perAddress = new Map<string, number>();
  #active = 0;
  /** Bytes the running uploads may still write (twice each one's size). */
  #reserved = 0;

  constructor(opts: UploadSlotOptions) {
    this.#opts = { freeBytes: freeOnDisk, ...opts };
  }

  get active(): number {
    return this.#active;
  }

  /** Takes a slot for an upload of `declared` bytes (undefined: unknown, chunked) from `address`; returns its release. */
  acquire(address: string, declared: number | undefined): () => void {
    const { max, limit, dir, freeBytes } = this.#opts;
    const mine = this.#perAddress.get(address) ?? 0;
    if (this.#active >= max) throw unavailable(`${max} uploads are already in progress; retry later.`, 5);
    if (mine >= Math.max(1, Math.floor(max / 2))) throw unavailable('Your earlier uploads are still in progress; retry when they have finished.', 5);
    const need = 2 * Math.min(declared ?? limit, limit);
    let free: number;
    try {
      free = freeBytes(dir);
    } catch {
      free = 0;
    }
    if (free < this.#reserved + need) throw unavailable('The gateway has no disk room for this upload now; retry later.', 30);
    this.#active++;
    this.#reserved += need;
    this.#perAddress.set(address, mine + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#active--;
      this.#reserved -= need;
      const left = (this.#perAddress.get(address) ?? 1) - 1;
      if (left > 0) this.#perAddress.set(address, left);
      else this.#perAddress.delete(address);
    };
  }
}
