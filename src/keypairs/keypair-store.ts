import { existsSync, readdirSync, readFileSync, statSync, watch, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { ACCESS_KEY_FORMAT, parseKeypair, type ApiKeyEntry, type Keypair } from './keypair.js';
import { hasPublishedSecret } from './published.js';

interface Entry {
  keypair: Keypair;
  /** mtime and size of the file this came from: a file that did not change is not read again. */
  version: string;
}

/**
 * The keypairs in `keypairs/<ACCESS_KEY>.toml`, kept in memory and refreshed
 * without a restart: inotify for prompt changes (milliseconds), a slow rescan
 * as a safety net for file systems where watching is unreliable. Lookups never
 * touch the disk: a miss that went to disk would take measurably longer than a
 * hit and tell an attacker which access keys exist.
 *
 * A broken file is reported once per change of the file (mtime + size), not on
 * every rescan; a missing folder once until it appears.
 */
/** How long a changed file must stay quiet before it is read (a save is over within this on any disk). */
const SETTLE_MS = 30;

export class KeypairStore {
  private readonly entries = new Map<string, Entry>();
  /** subject -> keypair (null: claimed twice); rebuilt lazily after any file change. */
  private subjects: Map<string, Keypair | null> | undefined;
  /** SHA-256 hex of an API key -> its keypair and entry; rebuilt after any file change, never read from disk. */
  private apiKeyIndex: Map<string, { keypair: Keypair; key: ApiKeyEntry }> | undefined;
  /** Files that were refused, by access key: the version that was reported. */
  private readonly refused = new Map<string, string>();
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private missingReported = false;
  /**
   * Set while the gateway listens on a non-loopback address: keypairs whose
   * secret is published (examples/keypairs/, documentation examples) are then
   * refused when they appear, as the gateway refused to start with one.
   */
  refusePublished = false;

  private started = false;
  private readonly settling = new Map<string, NodeJS.Timeout>();

  constructor(
    readonly dir: string,
    private readonly log?: Logger,
  ) {}

  start(rescanMs = 2000): void {
    this.started = true;
    this.rescan();
    this.watchFolder();
    this.timer = setInterval(() => this.rescan(), rescanMs);
    this.timer.unref();
  }

  private watchFolder(): void {
    if (this.watcher || !existsSync(this.dir)) return;
    try {
      this.watcher = watch(this.dir, (_event, filename) => {
        if (typeof filename !== 'string' || !filename.endsWith('.toml')) return;
        // At once (an atomic write such as `keypair create` counts within milliseconds), and again once the
        // file has settled, which alone may warn: an in-place save is half-written between its events.
        const key = filename.slice(0, -5);
        this.refresh(key, { tentative: true });
        this.refreshSoon(key);
      });
      this.watcher.on('error', () => {
        // The folder went away (or the watch broke): rescans carry on, and watch again once it is back.
        this.watcher?.close();
        this.watcher = undefined;
      });
    } catch (error) {
      this.log?.warn({ dir: this.dir, reason: (error as Error).message }, 'cannot watch keypair folder; relying on rescans every 2 s');
    }
  }

  /**
   * Editors and scripts that write in place raise several events per save (truncate, then writes): a file
   * read between them is half-written and would be warned about as broken. The settled read judges it.
   */
  private refreshSoon(accessKey: string): void {
    const pending = this.settling.get(accessKey);
    if (pending) clearTimeout(pending);
    const timer = setTimeout(() => {
      this.settling.delete(accessKey);
      if (this.started) this.refresh(accessKey);
    }, SETTLE_MS);
    timer.unref();
    this.settling.set(accessKey, timer);
  }

  stop(): void {
    this.started = false;
    for (const timer of this.settling.values()) clearTimeout(timer);
    this.settling.clear();
    this.watcher?.close();
    this.watcher = undefined;
    if (this.timer) clearInterval(this.timer);
  }

  get size(): number {
    return this.entries.size;
  }

  /** The keypair for an access key, active or not; undefined when there is none. */
  get(accessKey: string): Keypair | undefined {
    return this.entries.get(accessKey)?.keypair;
  }

  /** The keypair and `[[api_keys]]` entry whose hash is `sha256Hex` (expired entries included: the caller checks). */
  byApiKeyHash(sha256Hex: string): { keypair: Keypair; key: ApiKeyEntry } | undefined {
    if (this.apiKeyIndex === undefined) {
      const index = new Map<string, { keypair: Keypair; key: ApiKeyEntry }>();
      for (const { keypair } of this.entries.values()) {
        for (const key of keypair.apiKeys ?? []) index.set(key.sha256, { keypair, key });
      }
      this.apiKeyIndex = index;
    }
    return this.apiKeyIndex.get(sha256Hex);
  }

  /** The keypair whose oidc_subjects holds this subject; a subject claimed by two keypairs maps to neither. */
  bySubject(subject: string): Keypair | undefined {
    if (this.subjects === undefined) {
      const index = new Map<string, Keypair | null>();
      for (const { keypair } of this.entries.values()) {
        for (const s of keypair.oidcSubjects ?? []) {
          const prior = index.get(s);
          if (prior === undefined) index.set(s, keypair);
          else if (prior !== null) {
            index.set(s, null);
            this.log?.error({ accessKeys: [prior.accessKey, keypair.accessKey] }, 'an OIDC subject is claimed by two keypairs; it maps to neither');
          }
        }
      }
      this.subjects = index;
    }
    return this.subjects.get(subject) ?? undefined;
  }

  /** Every change to the entries goes through these two, so the derived indexes are rebuilt on next use. */
  private setEntry(accessKey: string, entry: Entry): void {
    this.entries.set(accessKey, entry);
    this.subjects = undefined;
    this.apiKeyIndex = undefined;
  }

  private dropEntry(accessKey: string): void {
    if (!this.entries.delete(accessKey)) return;
    this.subjects = undefined;
    this.apiKeyIndex = undefined;
  }

  all(): Keypair[] {
    return [...this.entries.values()].map((e) => e.keypair);
  }

  /** The file of an access key. Only called with names that passed ACCESS_KEY_FORMAT, so they are safe to join into a path. */
  fileOf(accessKey: string): string {
    return join(this.dir, `${accessKey}.toml`);
  }

  rescan(): void {
    let names: string[];
    try {
      names = readdirSync(this.dir).filter((n) => n.endsWith('.toml'));
      this.missingReported = false;
      // A folder that appeared after start() is watched from now on; a bare rescan() (tests, tools) never
      // leaves a watcher behind that would keep the process alive.
      if (this.started) this.watchFolder();
    } catch (error) {
      names = [];
      if (!this.missingReported) {
        this.missingReported = true;
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') {
          this.log?.warn({ dir: this.dir }, `folder ${this.dir.replace(/\/?$/, '/')} does not exist; create one with kernelgate keypair create`);
        } else {
          this.log?.warn({ dir: this.dir, reason: (error as Error).message }, `cannot read keypair folder ${this.dir}`);
        }
      }
    }
    const seen = new Set<string>();
    for (const name of names) {
      const key = name.slice(0, -5);
      seen.add(key);
      this.refresh(key);
    }
    for (const key of this.entries.keys()) if (!seen.has(key)) this.dropEntry(key);
    for (const key of this.refused.keys()) if (!seen.has(key)) this.refused.delete(key);
  }

  /** `tentative`: a file that does not parse is left for the settled read to judge (no warning, no change). */
  private refresh(accessKey: string, opts: { tentative?: boolean } = {}): void {
    if (!ACCESS_KEY_FORMAT.test(accessKey)) return;
    const file = this.fileOf(accessKey);
    let version: string;
    try {
      const stat = statSync(file);
      version = `${stat.mtimeMs}:${stat.size}:${stat.ino}`;
    } catch {
      this.dropEntry(accessKey);
      this.refused.delete(accessKey);
      return;
    }
    if (this.entries.get(accessKey)?.version === version || this.refused.get(accessKey) === version) return;
    try {
      const keypair = parseKeypair(readFileSync(file, 'utf8'));
      if (keypair.accessKey !== accessKey) throw new Error('access_key does not match the file name');
      if (this.refusePublished && hasPublishedSecret(keypair)) {
        this.dropEntry(accessKey);
        this.refused.set(accessKey, version);
        this.log?.error({ file }, 'refusing keypair file: its secret is published in the kernelgate repository and this gateway listens on a non-loopback address');
        return;
      }
      this.setEntry(accessKey, { keypair, version });
      this.refused.delete(accessKey);
    } catch (error) {
      if (opts.tentative) return;
      this.dropEntry(accessKey);
      this.refused.set(accessKey, version);
      this.log?.warn({ file, reason: (error as Error).message }, 'ignoring invalid keypair file');
    }
  }
}
