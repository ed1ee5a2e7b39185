/**
 * OCR accuracy regression: the fixed subset of bench/ocr-accuracy.ts's corpus (one page per class, rendered
 * and degraded deterministically at test time) must stay under per-class character error rate bounds, so
 * no speed change can lose accuracy silently. Bounds: 2 % on clean pages (the goal), 3 % on the
 * degraded photographed page; before the accuracy work these pages read at 0-82 % (upside-down 33 %,
 * curled book page 27 %).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ocrCorpus, score } from '../bench/ocr-corpus.js';
import { OcrKernel } from '../src/inference/ocr/index.js';
import { RunnerPool } from '../src/inference/runners/pool.js';

const runners = new RunnerPool();
let kernel: OcrKernel;
before(async () => {
  kernel = await OcrKernel.load({ providers: ['cpu'], queue: { timeoutMs: 120_000 } }, runners);
});
after(() => runners.close());

const subset = ocrCorpus().filter((s) => s.inTest);

describe('OCR accuracy on the fixed corpus subset', () => {
  test('the subset covers every class', () => {
    assert.deepEqual([...new Set(subset.map((s) => s.cls))].sort(), ['columns', 'dense', 'mixed', 'photo', 'small', 'upside-down', 'wide']);
  });

  for (const spec of subset) {
    const bound = spec.degraded ? 0.03 : 0.02;
    test(`${spec.cls}: ${spec.id} reads with CER ≤ ${bound * 100} % and every line found`, async () => {
      const page = await spec.build();
      const result = await kernel.recognize(page.image, { timeoutMs: 120_000 });
      const s = score(page.lines, result.predictions.map((p) => p.text));
      const detail = `${spec.id}: CER ${(s.cer * 100).toFixed(2)} %, ${s.found}/${s.lines} lines`;
      assert.ok(s.cer <= bound, detail);
      assert.ok(s.recall >= (spec.degraded ? 0.85 : 0.95), detail);
    });
  }

  test('the scorer counts what it should', () => {
    const exp = ['Invoice 2026 total', 'Paid by card'];
    assert.equal(score(exp, exp).cer, 0);
    // A lost space is one error; a missing line costs all its characters; a spurious line adds its own.
    assert.equal(score(exp, ['Invoice 2026total', 'Paid by card']).errors, 1);
    assert.equal(score(exp, ['Paid by card']).errors, exp[0]!.length);
    assert.equal(score(exp, [...exp, 'xyz']).errors, 3);
    // Reading order and merged rows are not errors (columns may be read either way).
    assert.equal(score(exp, ['Paid by card Invoice 2026 total']).errors, 0);
    assert.equal(score(exp, ['Invoice 2026total']).recall, 0.5);
  });
});

