import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
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
    const dir = this.domainDir(domain);
    mkdirSync(dir, { recursive: true });
    const sha256 = createHash('sha256').update(onnx).digest('hex');
    const file = `${config.name}.${sha256.slice(0, 16)}.onnx`;
    const fileTmp = join(dir, `.${file}.tmp-${process.pid}`);
    writeFileSync(fileTmp, onnx);
    renameSync(fileTmp, join(dir, file));
    const previous = this.get(domain, config.name);
    const meta = { config, file, sha256, bytes: onnx.length, createdAt: new Date().toISOString() };
    const tmp = `${this.metaPath(domain, config.name)}.tmp-${process.pid}`;
    writeFileSync(tmp, JSON.stringify(meta, null, 2));
    renameSync(tmp, this.metaPath(domain, config.name));
    if (previous && previous.path !== join(dir, file)) rmSync(previous.path, { force: true });
    return { domain, config, path: join(dir, file), sha256, bytes: onnx.length, createdAt: meta.createdAt };
  }

  remove(domain: string, name: string): StoredModel | undefined {
    const model = this.get(domain, name);
    if (!model) return undefined;
    rmSync(this.metaPath(domain, name), { force: true });
    rmSync(model.path, { force: true });
    return model;
  }
}
