import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseModelConfig, type ModelConfig } from './model-config.js';

export interface StoredModel {
  config: ModelConfig;
  /** Path of the ONNX file; named by its content hash so a re-upload never reuses a loaded session. */
  path: string;
  sha256: string;
  bytes: number;
  createdAt: string;
}

const NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;

/**
 * Custom models on disk: `<name>.json` (config, hash, size) beside
 * `<name>.<sha256>.onnx`. Replicas that share the folder share the models;
 * every read goes to disk, so an upload on one replica is seen by all.
 */
export class ModelStore {
  constructor(readonly dir: string) {}

  private metaPath(name: string): string {
    return join(this.dir, `${name}.json`);
  }

  get(name: string): StoredModel | undefined {
    if (!NAME.test(name)) return undefined;
    try {
      const meta = JSON.parse(readFileSync(this.metaPath(name), 'utf8')) as Omit<StoredModel, 'path' | 'config'> & { config: unknown; file: string };
      return { config: parseModelConfig(meta.config), path: join(this.dir, meta.file), sha256: meta.sha256, bytes: meta.bytes, createdAt: meta.createdAt };
    } catch {
      return undefined;
    }
  }

  list(): StoredModel[] {
    let names: string[];
    try {
      names = readdirSync(this.dir).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5));
    } catch {
      return [];
    }
    return names.sort().flatMap((n) => this.get(n) ?? []);
  }

  /** Writes the model file, then its metadata (atomically, by rename): readers never see half a model. */
  save(config: ModelConfig, onnx: Buffer): StoredModel {
    mkdirSync(this.dir, { recursive: true });
    const sha256 = createHash('sha256').update(onnx).digest('hex');
    const file = `${config.name}.${sha256.slice(0, 16)}.onnx`;
    writeFileSync(join(this.dir, file), onnx);
    const previous = this.get(config.name);
    const meta = { config, file, sha256, bytes: onnx.length, createdAt: new Date().toISOString() };
    const tmp = `${this.metaPath(config.name)}.tmp-${process.pid}`;
    writeFileSync(tmp, JSON.stringify(meta, null, 2));
    renameSync(tmp, this.metaPath(config.name));
    if (previous && previous.path !== join(this.dir, file)) rmSync(previous.path, { force: true });
    return { config, path: join(this.dir, file), sha256, bytes: onnx.length, createdAt: meta.createdAt };
  }

  remove(name: string): StoredModel | undefined {
    const model = this.get(name);
    if (!model) return undefined;
    rmSync(this.metaPath(name), { force: true });
    rmSync(model.path, { force: true });
    return model;
  }
}
