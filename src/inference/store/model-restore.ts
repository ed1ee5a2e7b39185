import { createHash } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ApiError } from '../../problems/api-error.js';
import type { ModelConfig } from './model-config.js';
import type { ExtractedModel } from './model-archive.js';
import type { ModelStore } from './model-store.js';

/** What a restore needs from the kernel registry: the upload checks, and a reload once the store changed. */
export interface RestoreDeps {
  store: ModelStore;
  verify(domain: string, config: ModelConfig, onnx: Buffer | undefined, path: string): Promise<void>;
  refresh(): void;
}

export interface RestoredModel {
  domain: string;
  name: string;
  replaced: boolean;
}

/** One restore at a time per store: two interleaved commits would each be atomic, but their checks would race. */
const running = new WeakMap<ModelStore, Promise<unknown>>();

/**
 * All or nothing: `read` puts the models' ONNX files into a staging folder under models_dir (a zip is
 * extracted there with every check of store/model-archive.ts); each model then goes into `domain` (or, when
 * undefined, the domain the backup names), two models may not meet under one name, and every one must
 * pass the upload checks (it loads and runs in an isolated process). Only then is the staging folder
 * committed (ModelStore.commit: one rename decides) and the registry told. Any failure: the staging folder
 * is removed and the store is exactly as it was.
 */
export async function restoreModels(
  deps: RestoreDeps,
  read: (extractDir: string) => Promise<ExtractedModel[]>,
  domain: string | undefined,
): Promise<RestoredModel[]> {
  const previous = running.get(deps.store) ?? Promise.resolve();
  const mine = previous.catch(() => undefined).then(() => restore(deps, read, domain));
  running.set(deps.store, mine);
  try {
    return await mine;
  } finally {
    if (running.get(deps.store) === mine) running.delete(deps.store);
  }
}

async function restore(deps: RestoreDeps, read: (extractDir: string) => Promise<ExtractedModel[]>, domain: string | undefined): Promise<RestoredModel[]> {
  const staging = deps.store.newStaging();
  try {
    const extractDir = join(staging, 'extract');
    mkdirSync(extractDir, { mode: 0o700 });
    const models = (await read(extractDir)).map((m) => ({ ...m, domain: domain ?? m.domain }));
    const names = new Set<string>();
    for (const m of models) {
      const key = `${m.domain}\0${m.config.name}`;
      if (names.has(key)) {
        throw new ApiError(400, 'invalid-api-params', `The backup was refused, and nothing was changed: two models would be restored as ${JSON.stringify(m.config.name)} in the domain ${JSON.stringify(m.domain)}.`);
      }
      names.add(key);
    }
    for (const m of models) {
      try {
        // Checked where it lies: an archive's models are never read into memory.
        await deps.verify(m.domain, m.config, undefined, m.path);
      } catch (error) {
        if (!(error instanceof ApiError) || error.status !== 400) throw error;
        throw new ApiError(400, 'invalid-api-params', `The backup was refused, and nothing was changed: model ${JSON.stringify(m.config.name)}: ${error.message}`);
      }
    }
    const restored = models.map((m) => ({ domain: m.domain, name: m.config.name, replaced: deps.store.get(m.domain, m.config.name) !== undefined }));
    for (const m of models) deps.store.stage(staging, m.domain, m.config, m.path, m.sha256, m.bytes);
    deps.store.commit(staging);
    deps.refresh();
    return restored;
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

/** The models of a JSON backup (`GET /models/backup`), written into the extract folder for restoreModels(). */
export function writeDecodedModels(extractDir: string, models: Array<{ domain: string; config: ModelConfig; onnx: Buffer }>): ExtractedModel[] {
  return models.map((m, i) => {
    const path = join(extractDir, `${i}.onnx`);
    writeFileSync(path, m.onnx, { flag: 'wx', mode: 0o600 });
    return { domain: m.domain, config: m.config, path, sha256: createHash('sha256').update(m.onnx).digest('hex'), bytes: m.onnx.length };
  });
}
