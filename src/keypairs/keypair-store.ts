import { readdirSync, readFileSync, statSync, watch, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { ACCESS_KEY_FORMAT, parseKeypair, type Keypair } from './keypair.js';

interface Entry {
  keypair: Keypair;
  mtimeMs: number;
}

/**
 * The keypairs in `keypairs/<ACCESS_KEY>.toml`, kept in memory and refreshed
 * without a restart: inotify for prompt changes (milliseconds), a slow rescan
 * as a safety net for file systems where watching is unreliable. Lookups never
 * touch the disk: a miss that went to disk would take measurably longer than a
 * hit and tell an attacker which access keys exist.
 */
export class KeypairStore {
  private readonly entries = new Map<string, Entry>();
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly dir: string,
    private readonly log?: Logger,
  ) {}

  start(rescanMs = 2000): void {
    this.rescan();
    try {
      this.watcher = watch(this.dir, (_event, filename) => {
        if (typeof filename === 'string' && filename.endsWith('.toml')) this.refresh(filename.slice(0, -5));
      });
      this.watcher.on('error', () => undefined);
    } catch {
      this.log?.warn({ dir: this.dir }, 'cannot watch keypair folder; relying on rescans');
    }
    this.timer = setInterval(() => this.rescan(), rescanMs);
    this.timer.unref();
  }

  stop(): void {
    this.watcher?.close();
    if (this.timer) clearInterval(this.timer);
  }

  get size(): number {
    return this.entries.size;
  }

  /** The keypair for an access key, active or not; undefined when there is none. */
  get(accessKey: string): Keypair | undefined {
    return this.entries.get(accessKey)?.keypair;
  }

  all(): Keypair[] {
    return [...this.entries.values()].map((e) => e.keypair);
  }

  /** Only called with names that passed ACCESS_KEY_FORMAT, so they are safe to join into a path. */
  private fileOf(accessKey: string): string {
    return join(this.dir, `${accessKey}.toml`);
  }

  rescan(): void {
    let names: string[];
    try {
      names = readdirSync(this.dir).filter((n) => n.endsWith('.toml'));
    } catch {
      names = [];
    }
    const seen = new Set<string>();
    for (const name of names) {
      const key = name.slice(0, -5);
      seen.add(key);
      this.refresh(key);
    }
    for (const key of this.entries.keys()) if (!seen.has(key)) this.entries.delete(key);
  }

  private refresh(accessKey: string): void {
    if (!ACCESS_KEY_FORMAT.test(accessKey)) return;
    const file = this.fileOf(accessKey);
    let mtimeMs: number;
    try {
      mtimeMs = statSync(file).mtimeMs;
    } catch {
      this.entries.delete(accessKey);
      return;
    }
    const current = this.entries.get(accessKey);
    if (current !== undefined && current.mtimeMs === mtimeMs) return;
    try {
      const keypair = parseKeypair(readFileSync(file, 'utf8'));
      if (keypair.accessKey !== accessKey) throw new Error('access_key does not match the file name');
      this.entries.set(accessKey, { keypair, mtimeMs });
    } catch (error) {
      this.entries.delete(accessKey);
      this.log?.warn({ file, reason: (error as Error).message }, 'ignoring invalid keypair file');
    }
  }
}
