/**
 * Issue 7 item 17: on a machine without the CUDA add-on, loading models prints nothing but JSON log lines,
 * and exactly one line says which execution provider was chosen and why. Item 19: a "too many pixels"
 * answer names both numbers and the config key.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { ALICE, startGateway, type TestGateway } from './helpers/gateway.js';
import { assertProblem } from './helpers/problems.js';
import { renderText } from './helpers/render-text.js';

describe('inference logs and limits', () => {
  let gw: TestGateway;
  before(async () => {
    // The default providers, ["cuda", "cpu"]: CUDA is tried first and skipped on this CPU-only machine.
    gw = await startGateway({ config: '[log]\nlevel = "info"\n[inference]\nmax_image_pixels = 1000000\n' });
  });
  after(() => gw.stop());

  it('loads the OCR models with JSON-only output and one line naming the provider and why', async () => {
    assert.equal((await gw.signed({ method: 'POST', target: '/session', as: ALICE, body: JSON.stringify({ name: 'r', image: 'ocr' }) })).status, 201);
    const image = await renderText(['Kernelgate'], { size: 32 });
    const res = await gw.signed({ method: 'POST', target: '/session/r/infer', as: ALICE, body: image, contentType: 'image/png', timeoutMs: 60_000 });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.provider, 'cpu');
    await new Promise((r) => setTimeout(r, 200)); // let the last lines arrive
    // output holds stdout lines and raw stderr chunks: split both into lines.
    const lines = gw.output.flatMap((chunk) => chunk.split('\n')).filter((l) => l.trim() !== '');
    const notJson = lines.filter((l) => {
      try {
        JSON.parse(l);
        return false;
      } catch {
        return true;
      }
    });
    assert.deepEqual(notJson, [], 'every line the gateway prints is JSON');
    const chosen = lines.map((l) => JSON.parse(l)).filter((o) => /execution provider/.test(String(o.msg)));
    assert.equal(chosen.length, 1, JSON.stringify(chosen));
    assert.equal(chosen[0].provider, 'cpu');
    assert.match(chosen[0].why, /cuda skipped: CUDA add-on not installed/);
  });

  it('names the image size, the limit and its config key when an image has too many pixels', async () => {
    const big = await sharp({ create: { width: 1200, height: 1000, channels: 3, background: '#ffffff' } }).png().toBuffer();
    const res = await gw.signed({ method: 'POST', target: '/session/r/infer', as: ALICE, body: big, contentType: 'image/png' });
    assertProblem(res, 413, 'request-too-large');
    assert.match(res.json.detail, /1200x1000 = 1200000 pixels/);
    assert.match(res.json.detail, /limit is 1000000 pixels/);
    assert.match(res.json.detail, /inference\.max_image_pixels/);
  });
});
