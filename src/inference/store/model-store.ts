import { createHash, randomBytes } from 'node:crypto';
import { copyFileSync, createReadStream, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MODEL_NAME_FORMAT as NAME } from '../../validation/names.js';
import { parseModelConfig, type ModelConfig } from './model-config.js';

export interface StoredModel {
  /** The domain the model belongs to (DESIGN.md "Kernels"). */
  domain: string;
  config: ModelConfig;
  /** Path of the ONNX file; named by its content hash so a re-upload never reuses a loaded session. */
  path: string;
  sha256: string;
  bytes: number;
  createdAt: string;
}

/** The folder name of a domain: percent-encoded, dots too, so no domain can name `..` or a path. */
export function domainFolder(domain: string): string {
  return encodeURIComponent(domain).replace(/\./g, '%2E').replace(/\*/g, '%2A');
}

/** A model's file: its name and the start of its content hash. */
const modelFileName = (name: string, sha256: string) => `${name}.${sha256.slice(0, 16)}.onnx`;
/** What a config's `file` may name: a model file of this folder, never a path. */
const NAME_FILE = /^[a-z0-9][a-z0-9._-]{0,63}\.[0-9a-f]{16}\.onnx$/;
/** Inside a staging folder: `domains/<domain folder>/` as in the store, beside the restore's own files. */
const STAGED_DOMAINS = 'domains';

/** A rename that another process may have done first: false when the source is gone. */
function moveIfThere(from: string, to: string): boolean {
  try {
    renameSync(from, to);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

/** The domain whose models the files at the top of models_dir (before domains) belong to. */
export const LEGACY_DOMAIN = 'default';

/**
 * Custom models on disk, one folder per domain: `<dir>/<domain>/<name>.json`
 * (config, hash, size) beside `<name>.<sha256>.onnx`. Replicas that share the
 * folder share the models; every read goes to disk, so an upload on one
 * replica is seen by all.
 */
export class ModelStore {
  constructor(readonly dir: string) {}

  private domainDir(domain: string): string {
    return join(this.dir, domainFolder(domain));
  }

  private metaPath(domain: string, name: string): string {
    return join(this.domainDir(domain), `${name}.json`);
  }

  /**
   * Models stored before models had domains lie at the top of the folder:
   * they are moved into the `default` domain (files first, metadata last, each
   * by rename; a replica that races us finds them gone and skips them).
   */
  migrateLegacy(): string[] {
    let entries: string[];
    try {
      entries = readdirSync(this.dir).filter((f) => f.endsWith('.json') && NAME.test(f.slice(0, -5)));
    } catch {
      return [];
    }
    const moved: string[] = [];
    for (const metaFile of entries) {
      const name = metaFile.slice(0, -5);
      try {
        if (!statSync(join(this.dir, metaFile)).isFile()) continue;
        const meta = JSON.parse(readFileSync(join(this.dir, metaFile), 'utf8')) as { file?: unknown };
        const target = this.domainDir(LEGACY_DOMAIN);
        mkdirSync(target, { recursive: true });
        if (existsSync(join(target, metaFile))) continue;
        if (typeof meta.file === 'string' && !meta.file.includes('/') && existsSync(join(this.dir, meta.file))) {
          renameSync(join(this.dir, meta.file), join(target, meta.file));
        }
        renameSync(join(this.dir, metaFile), join(target, metaFile));
        moved.push(name);
      } catch {
        // Unreadable or already moved by another replica: left as it is.
      }
    }
    return moved;
  }

  get(domain: string, name: string): StoredModel | undefined {
    if (!NAME.test(name)) return undefined;
    try {
      const meta = JSON.parse(readFileSync(this.metaPath(domain, name), 'utf8')) as Omit<StoredModel, 'path' | 'config' | 'domain'> & { config: unknown; file: string };
      return { domain, config: parseModelConfig(meta.config), path: join(this.domainDir(domain), meta.file), sha256: meta.sha256, bytes: meta.bytes, createdAt: meta.createdAt };
    } catch {
      return undefined;
    }
  }

  /** Every domain that has a folder here. */
  domains(): string[] {
    try {
      return readdirSync(this.dir, { withFileTypes: true })
        .filter((e) => e.isDirectory() && !e.name.startsWith('.'))
        .flatMap((e) => {
          try {
            return [decodeURIComponent(e.name)];
          } catch {
            return [];
          }
        })
        .sort();
    } catch {
      return [];
    }
  }

  /** The models of one domain, or of every domain when `domain` is undefined. */
  list(domain?: string): StoredModel[] {
    if (domain === undefined) return this.domains().flatMap((d) => this.list(d));
    let names: string[];
    try {
      names = readdirSync(this.domainDir(domain)).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5));
    } catch {
      return [];
    }
    return names.sort().flatMap((n) => this.get(domain, n) ?? []);
  }

  /** Writes the model file, then its metadata (atomically, by rename): readers never see half a model. */
  save(domain: string, config: ModelConfig, onnx: Buffer): StoredModel {
    const sha256 = createHash('sha256').update(onnx).digest('hex');
    return this.place(domain, config, sha256, onnx.length, (tmp) => writeFileSync(tmp, onnx));
  }

  /**
   * save() for a model already in a file (a spooled upload): moved in by rename, or copied when the spool folder
   * is on another file system. The source is consumed (moved) or left to its owner. `sha256`: its hash when
   * taken as it was written (spool.ts spoolPart); else the file is read once to hash it.
   */
  async saveFile(domain: string, config: ModelConfig, source: string, sha256?: string): Promise<StoredModel> {
    const bytes = statSync(source).size;
    let digest = sha256;
    if (digest === undefined) {
      const hash = createHash('sha256');
      for await (const chunk of createReadStream(source) as AsyncIterable<Buffer>) hash.update(chunk);
      digest = hash.digest('hex');
    }
    return this.place(domain, config, digest, bytes, (tmp) => {
      try {
        renameSync(source, tmp);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EXDEV') throw error;
        copyFileSync(source, tmp);
      }
    });
  }

  private place(domain: string, config: ModelConfig, sha256: string, bytes: number, write: (tmp: string) => void): StoredModel {
    const dir = this.domainDir(domain);
    mkdirSync(dir, { recursive: true });
    const file = modelFileName(config.name, sha256);
    const fileTmp = join(dir, `.${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
    write(fileTmp);
    renameSync(fileTmp, join(dir, file));
    const previous = this.get(domain, config.name);
    const meta = { config, file, sha256, bytes, createdAt: new Date().toISOString() };
    const tmp = `${this.metaPath(domain, config.name)}.tmp-${process.pid}`;
    writeFileSync(tmp, JSON.stringify(meta, null, 2));
    renameSync(tmp, this.metaPath(domain, config.name));
    if (previous && previous.path !== join(dir, file)) rmSync(previous.path, { force: true });
    return { domain, config, path: join(dir, file), sha256, bytes, createdAt: meta.createdAt };
  }

  /**
   * A new staging folder for a restore: inside models_dir (the same file system, so committing is
   * renames), dot-named (no domain listing sees it), `.tmp` until committed.
   */
  newStaging(): string {
    const staging = join(this.dir, `.restore-${Date.now()}-${randomBytes(6).toString('hex')}.tmp`);
    mkdirSync(staging, { recursive: true, mode: 0o700 });
    return staging;
  }

  /** Lays a checked model (its ONNX file at `source`, moved) out in `staging` as save() lays models out here. */
  stage(staging: string, domain: string, config: ModelConfig, source: string, sha256: string, bytes: number): void {
    const dir = join(staging, STAGED_DOMAINS, domainFolder(domain));
    mkdirSync(dir, { recursive: true });
    const file = modelFileName(config.name, sha256);
    renameSync(source, join(dir, file));
    writeFileSync(join(dir, `${config.name}.json`), JSON.stringify({ config, file, sha256, bytes, createdAt: new Date().toISOString() }, null, 2));
  }

  /**
   * Commits a staged restore. Renaming the staging folder from `.tmp` to `.commit` is the one atomic step
   * that decides it: before it nothing in the store changed; after it the restore happens, even across a
   * crash (recoverRestores() finishes it at the next start). Then each domain's files move in: model files
   * first (new content-hash names nobody reads yet), then each config by rename, so every model switches
   * from its old version to its new one in one step and readers never see half of one.
   */
  commit(staging: string): void {
    if (!staging.endsWith('.tmp')) throw new Error('not a staging folder');
    const committed = `${staging.slice(0, -4)}.commit`;
    renameSync(staging, committed);
    this.rollForward(committed);
  }

  private rollForward(committed: string): void {
    const root = join(committed, STAGED_DOMAINS);
    let folders: string[] = [];
    try {
      folders = readdirSync(root);
    } catch {
      // nothing staged
    }
    for (const folder of folders) {
      const live = join(this.dir, folder);
      mkdirSync(live, { recursive: true });
      const files = readdirSync(join(root, folder));
      for (const f of files.filter((n) => n.endsWith('.onnx'))) moveIfThere(join(root, folder, f), join(live, f));
      for (const f of files.filter((n) => n.endsWith('.json'))) {
        let previous: string | undefined;
        try {
          previous = (JSON.parse(readFileSync(join(live, f), 'utf8')) as { file?: unknown }).file as string | undefined;
        } catch {
          previous = undefined;
        }
        const next = (JSON.parse(readFileSync(join(root, folder, f), 'utf8')) as { file: string }).file;
        // Another replica finishing the same restore may have moved it first: then it also cleans up.
        if (moveIfThere(join(root, folder, f), join(live, f)) && typeof previous === 'string' && previous !== next && NAME_FILE.test(previous)) {
          rmSync(join(live, previous), { force: true });
        }
      }
    }
    rmSync(committed, { recursive: true, force: true });
  }

  /**
   * At start: finishes restores committed before a crash, and removes staging folders a crash left
   * behind (older than an hour, so another replica's restore in progress is left alone).
   */
  recoverRestores(now = Date.now()): string[] {
    let entries: string[];
    try {
      entries = readdirSync(this.dir).filter((f) => f.startsWith('.restore-'));
    } catch {
      return [];
    }
    const finished: string[] = [];
    for (const name of entries) {
      const path = join(this.dir, name);
      try {
        if (name.endsWith('.commit')) {
          this.rollForward(path);
          finished.push(name);
        } else if (name.endsWith('.tmp') && now - statSync(path).mtimeMs > 3_600_000) {
          rmSync(path, { recursive: true, force: true });
        }
      } catch {
        // Another replica got there first.
      }
    }
    return finished;
  }

  remove(domain: string, name: string): StoredModel | undefined {
    const model = this.get(domain, name);
    if (!model) return undefined;
    rmSync(this.metaPath(domain, name), { force: true });
    rmSync(model.path, { force: true });
    return model;
  }
}
