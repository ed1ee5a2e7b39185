/**
 * The kernel registry in-process: built-in models are registered entries (no name special cases), and the
 * registry owns what it loads: close() stops its model workers, and a second registry in the same process
 * loads its own.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import { configFromObject } from '../src/config/config.js';
import { KernelRegistry } from '../src/inference/registry.js';
import { renderText } from './helpers/render-text.js';

describe('KernelRegistry owns its kernels and runners', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kg-registry-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const cfg = configFromObject({ inference: { models_dir: dir, providers: ['cpu'] } }).inference;
  const log = pino({ level: 'silent' });

  it('lists the built-in ocr and face models for every domain, loads it on first use, and releases it on close()', async () => {
    const registry = new KernelRegistry(cfg, log);
    assert.equal(registry.has('any-domain', 'ocr'), true);
    assert.equal(registry.has('any-domain', 'nothing'), false);
    assert.equal(registry.has('any-domain', 'face'), true);
    assert.deepEqual(registry.list('any-domain'), [
      { name: 'ocr', task: 'ocr', builtin: true, loaded: false, provider: null },
      { name: 'face', task: 'face', builtin: true, loaded: false, provider: null },
    ]);
    const png = await renderText(['Registry test'], { size: 24 });
    const result = (await registry.infer('any-domain', 'ocr', png)) as { predictions: Array<{ text: string }>; provider: string };
    assert.deepEqual(result.predictions.map((p) => p.text), ['Registry test']);
    assert.deepEqual(registry.list()[0], { name: 'ocr', task: 'ocr', builtin: true, loaded: true, provider: 'cpu' });
    assert.deepEqual(registry.queues().map((q) => q.model), ['ocr']);

    await registry.close();
    // Its workers are gone: the kernel it holds can no longer run.
    await assert.rejects(registry.infer('any-domain', 'ocr', png));

    // A new registry (a new gateway in the same process) loads its own and is not affected.
    const next = new KernelRegistry(cfg, log);
    try {
      const again = (await next.infer('any-domain', 'ocr', png)) as { predictions: Array<{ text: string }> };
      assert.deepEqual(again.predictions.map((p) => p.text), ['Registry test']);
    } finally {
      await next.close();
    }
  });
});
