/**
 * The DeepStack-compatible API (issue 11 items 1, 2, 4, 6) on one real gateway: detect models (constant
 * YOLO-layout ONNX graphs built by the tests, both layouts) through POST /session + infer, then the requests
 * deepstack-python 0.8 (Home Assistant) and Blue Iris emulators send, with real ONNX models (those detectors,
 * PaddleOCR's direction classifier as the scene model, the built-in OCR), real API keys in the keypair
 * files, and the signing proxy in front for clients that carry no credentials.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import sharp from 'sharp';
import { ocrModelPaths } from '../src/inference/ocr/index.js';
import { createSigningProxy } from '../src/proxy/proxy.js';
import { defaultConfig } from '../src/config/config.js';
import { createGateway } from '../src/gateway.js';
import { signRequest } from '../src/signing/sign-request.js';
import { A0, A2, A3, A4, LABELS, ROWS, ROWS_V5 } from './helpers/detect-fixtures.js';
import { deepstackPython, multipartBody, type Part } from './helpers/deepstack.js';
import { FACES, iou, photo } from './helpers/photos.js';
import { ADMIN, ALICE, BOB, OTHER_ADMIN, OTHER_DOMAIN_USER, rawRequest, startGateway, writeKeypair, writeKeypairWithApiKey, type Response, type TestGateway } from './helpers/gateway.js';
import { constantDetector, yolov5Values, yolov8Values } from './helpers/onnx.js';
import { assertProblem, PROBLEM_BASE } from './helpers/problems.js';
import { renderText } from './helpers/render-text.js';

const CLS_ONNX = readFileSync(ocrModelPaths().classifier);
const SCENE = { name: 'scenes', task: 'classify', input: { width: 192, height: 48 }, normalize: { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] }, labels: ['upright', 'upside-down'], top_k: 2 };
const v8 = yolov8Values(ROWS);
const DETECTOR = constantDetector(64, 64, v8.dims, v8.values);
const DETECT = { name: 'objects', task: 'detect', format: 'yolov8', input: { width: 64, height: 64 }, labels: LABELS };

/** Every answer of the DeepStack surface: Content-Length, never chunked. */
function assertFramed(res: Response): void {
  assert.ok(res.headers['content-length'] !== undefined, 'Content-Length is set');
  assert.equal(Number(res.headers['content-length']), res.body.length);
  assert.equal(res.headers['transfer-encoding'], undefined, 'not chunked');
}

/** A DeepStack error: the real status (never 200), a problem document with success false, error, duration 0. */
function assertDeepStackError(res: Response, status: number, slug: string, detail?: RegExp): void {
  assert.equal(res.status, status, `expected ${status}, got ${res.status}: ${res.text}`);
  assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
  assert.equal(res.json.type, `${PROBLEM_BASE}${slug}`);
  assert.equal(res.json.success, false);
  assert.equal(res.json.error, res.json.detail);
  assert.equal(res.json.duration, 0);
  if (detail) assert.match(res.json.error, detail);
  assertFramed(res);
}

function assertSuccess(res: Response): any {
  assert.equal(res.status, 200, res.text);
  assert.equal(res.json.success, true);
  assertFramed(res);
  return res.json;
}

describe('DeepStack-compatible API', () => {
  let gw: TestGateway;
  let keypairDir: string;
  let key: { alice: string; bob: string; admin: string; otherAdmin: string; carol: string };
  let street: Buffer;
  let page: Buffer;
  const post = (path: string, form: { body: Buffer; contentType: string }, headers: Record<string, string> = {}) =>
    gw.request({ method: 'POST', target: path, headers: { 'content-type': form.contentType, ...headers }, body: form.body });
  const admin = (path: string, parts: Part[], adminKey = key.admin) => post(path, multipartBody([{ name: 'admin_key', value: adminKey }, ...parts]));
  const addModel = (cfg: object, onnx: Buffer, adminKey = key.admin, name = (cfg as { name: string }).name) =>
    admin('/v1/vision/addmodel', [{ name: 'name', value: name }, { name: 'model', file: onnx, filename: 'model.onnx' }, { name: 'config', file: Buffer.from(JSON.stringify(cfg)), filename: 'config.json', type: 'application/json' }], adminKey);

  before(async () => {
    keypairDir = mkdtempSync(join(tmpdir(), 'kernelgate-vision-keys-'));
    key = {
      alice: writeKeypairWithApiKey(keypairDir, ALICE),
      bob: writeKeypairWithApiKey(keypairDir, BOB, 'read'),
      admin: writeKeypairWithApiKey(keypairDir, ADMIN),
      otherAdmin: writeKeypairWithApiKey(keypairDir, OTHER_ADMIN),
      carol: writeKeypairWithApiKey(keypairDir, OTHER_DOMAIN_USER),
    };
    gw = await startGateway({
      keypairs: [],
      keypairDir,
      config: '[auth]\nschemes = ["backendai", "apikey"]\n[vision]\ndetection_model = "objects"\nscene_model = "scenes"\n[inference]\nmax_image_bytes = 2000000\n',
    });
    png = await sharp({ create: { width: 200, height: 100, channels: 3, background: { r: 20, g: 120, b: 200 } } }).png().toBuffer();
    // Stored 200x100, shown 100x200 (EXIF orientation 6: turn 90 degrees clockwise).
    rotatedJpeg = await sharp({ create: { width: 200, height: 100, channels: 3, background: { r: 200, g: 20, b: 20 } } }).jpeg().withMetadata({ orientation: 6 }).toBuffer();
    street = await sharp({ create: { width: 200, height: 100, channels: 3, background: { r: 90, g: 90, b: 90 } } }).jpeg().toBuffer();
    page = await renderText(['Kernelgate reads text'], { size: 40, padding: 12 });
  });
  after(async () => {
    await gw.stop();
    rmSync(keypairDir, { recursive: true, force: true });
  });

  // Detect models through the Backend.AI routes (POST /models, POST /session + infer).
  let png: Buffer;
  let rotatedJpeg: Buffer;
  const v5 = yolov5Values(ROWS_V5);
  const config = (name: string, format: string, extra: object = {}) => ({ name, task: 'detect', format, input: { width: 64, height: 64 }, labels: LABELS, ...extra });
  const upload = (cfg: object, onnx: Buffer) => gw.signed({ method: 'POST', target: '/models', as: ADMIN, body: JSON.stringify({ ...cfg, model: onnx.toString('base64') }) });
  const infer = async (session: string, image: Buffer, type: string) => {
    const res = await gw.signed({ method: 'POST', target: `/session/${session}/infer`, as: ALICE, body: image, contentType: type });
    assert.equal(res.status, 200, res.text);
    return res.json;
  };

  it('detect: refuses at upload a model whose output does not fit the labels or the declared layout', async () => {
    const three = await upload({ ...config('wrong', 'yolov8'), labels: ['a', 'b', 'c'] }, DETECTOR);
    assertProblem(three, 400, 'invalid-api-params');
    assert.match(three.json.detail, /output has shape \[1, 6, 5\], not \[1, 4\+C, N\] = \[1, 7, N\] for 3 labels/);
    assertProblem(await upload(config('wrong', 'yolov5'), DETECTOR), 400, 'invalid-api-params');
    assertProblem(await upload({ name: 'wrong', task: 'detect', input: { width: 64, height: 64 }, labels: LABELS }, DETECTOR), 400, 'invalid-api-params');
    assertProblem(await upload({ ...config('wrong', 'yolov8'), top_k: 2 }, DETECTOR), 400, 'invalid-api-params');
    const list = await gw.signed({ method: 'GET', target: '/models', as: ADMIN });
    assert.deepEqual(list.json.models.map((m: { name: string }) => m.name), ['face', 'ocr'], 'nothing was kept');
  });

  it('detect: yolov8 and yolov5 layouts in sessions, exact boxes on the original, EXIF-rotated image', async () => {
    assert.equal((await upload(config('yolo8', 'yolov8'), DETECTOR)).status, 201);
    // The yolov5 one also carries its own iou_threshold: 0.40 drops a4 (IoU 0.42 with a0).
    assert.equal((await upload(config('yolo5', 'yolov5', { iou_threshold: 0.4 }), constantDetector(64, 64, v5.dims, v5.values))).status, 201);
    for (const [session, model] of [['s8', 'yolo8'], ['s5', 'yolo5']]) {
      assert.equal((await gw.signed({ method: 'POST', target: '/session', as: ALICE, body: JSON.stringify({ name: session, image: model }) })).status, 201);
    }
    const r8 = await infer('s8', png, 'image/png');
    assert.deepEqual(r8.predictions, [A0, A2, A4], 'default iou_threshold 0.45 keeps a4');
    assert.equal(r8.provider, 'cpu');
    assert.deepEqual((await infer('s5', png, 'image/png')).predictions, [A0, A2]);
    // Shown 100x200: scale 0.32, 16 px of grey left and right.
    assert.deepEqual((await infer('s8', rotatedJpeg, 'image/jpeg')).predictions[0], { label: 'cat', confidence: 0.9, x_min: 0, y_min: 75, x_max: 100, y_max: 125 });
    assert.equal((await gw.signed({ method: 'DELETE', target: '/models/yolo5', as: ADMIN })).status, 200);
    assert.equal((await gw.signed({ method: 'DELETE', target: '/session/s5', as: ALICE })).status, 200);
  });

  it('POST /models takes a multipart form (files model + config): a model too large for base64 JSON uploads', async () => {
    // 8 MB of weights: as base64 in JSON (10.7 MB) over the 10 MiB body limit; as bytes under it.
    const heavy = constantDetector(64, 64, v8.dims, v8.values, 8_000_000);
    const asJson = await upload(config('heavy', 'yolov8'), heavy);
    assertProblem(asJson, 413, 'request-too-large');
    const form = multipartBody([{ name: 'model', file: heavy, filename: 'heavy.onnx' }, { name: 'config', file: Buffer.from(JSON.stringify(config('heavy', 'yolov8'))), filename: 'heavy.json' }]);
    const res = await gw.signed({ method: 'POST', target: '/models', as: ADMIN, body: form.body, contentType: form.contentType });
    assert.equal(res.status, 201, res.text);
    assert.equal(res.json.bytes, heavy.length);
    assert.equal(res.json.task, 'detect');
    assert.equal((await gw.signed({ method: 'DELETE', target: '/models/heavy', as: ADMIN })).status, 200);
  });

  it('answers 403 "endpoint not activated" until an admin adds the configured models', async () => {
    assertDeepStackError(await post('/v1/vision/detection', deepstackPython(street, key.alice)), 403, 'generic-forbidden', /^Detection endpoint not activated: model "objects"/);
    assertDeepStackError(await post('/v1/vision/scene', deepstackPython(street, key.alice)), 403, 'generic-forbidden', /^Scene endpoint not activated/);
  });

  it('addmodel (admin_key, files model + config, field name): registered, then updated; listmodels; bad uploads refused', async () => {
    assert.equal(assertSuccess(await addModel(DETECT, DETECTOR)).message, 'model registered');
    assert.equal(assertSuccess(await addModel(DETECT, DETECTOR)).message, 'model updated');
    assert.equal(assertSuccess(await addModel(SCENE, CLS_ONNX)).message, 'model registered');
    const listed = assertSuccess(await admin('/v1/vision/listmodels', []));
    assert.deepEqual(listed.models.map((m: { name: string }) => m.name), ['objects', 'scenes', 'yolo8']);
    for (const m of listed.models) {
      assert.ok(!Number.isNaN(Date.parse(m.dateupdated)));
      assert.equal(typeof m.size, 'number');
    }
    assert.equal(listed.models[1].size, Math.round(CLS_ONNX.length / 10_000) / 100, 'size in MB');
    assert.equal(listed.models[2].name, 'yolo8', 'the models POST /models installed are the same ones');
    // The output does not fit three labels: refused by the real run, nothing kept.
    assertDeepStackError(await addModel({ ...DETECT, name: 'bad', labels: ['a', 'b', 'c'] }, DETECTOR), 400, 'invalid-api-params', /output has shape/);
    assertDeepStackError(await addModel(DETECT, DETECTOR, key.admin, 'other-name'), 400, 'invalid-api-params', /"name".*differ/);
    assertDeepStackError(await admin('/v1/vision/addmodel', [{ name: 'model', file: DETECTOR }]), 400, 'invalid-api-params', /"config"/);
    assertDeepStackError(await admin('/v1/vision/addmodel', [{ name: 'model', file: DETECTOR }, { name: 'config', file: Buffer.from('{not json') }]), 400, 'invalid-api-params');
    // A user's key as admin_key: DeepStack's words, 401.
    assertDeepStackError(await addModel(DETECT, DETECTOR, key.alice), 401, 'auth-failed', /^Incorrect admin key/);
    // A user's key as api_key on an admin route: 403.
    assertDeepStackError(await post('/v1/vision/listmodels', multipartBody([{ name: 'api_key', value: key.alice }])), 403, 'generic-forbidden');
    assert.deepEqual(assertSuccess(await admin('/v1/vision/listmodels', [])).models.map((m: { name: string }) => m.name), ['objects', 'scenes', 'yolo8']);
  });

  it('deepstack-python 0.8: detection, custom and scene with image + api_key (+ min_confidence)', async () => {
    const det = assertSuccess(await post('/v1/vision/detection', deepstackPython(street, key.alice)));
    const box = ({ label, confidence, x_min, y_min, x_max, y_max }: typeof A0) => ({ confidence, label, x_min, y_min, x_max, y_max });
    assert.deepEqual(det.predictions, [A0, A2, A4].map(box), 'default min_confidence 0.40');
    assert.equal(typeof det.duration, 'number');
    for (const p of det.predictions) for (const k of ['x_min', 'y_min', 'x_max', 'y_max']) assert.ok(Number.isInteger(p[k]));
    const low = assertSuccess(await post('/v1/vision/detection', deepstackPython(street, key.alice, { min_confidence: '0.3' })));
    assert.deepEqual(low.predictions, [A0, A2, A4, A3].map(box));
    const high = assertSuccess(await post('/v1/vision/detection', deepstackPython(street, key.alice, { min_confidence: '0.65' })));
    assert.deepEqual(high.predictions, [A0, A2].map(box));
    const custom = assertSuccess(await post('/v1/vision/custom/objects', deepstackPython(street, key.alice, { min_confidence: '0.45' })));
    assert.deepEqual(custom.predictions, [A0, A2, A4].map(box));
    // Scene: the classifier behind [vision] scene_model, on a line of text turned upside down.
    const line = await sharp(page).resize(384, 96, { fit: 'fill' }).rotate(180).png().toBuffer();
    const scene = assertSuccess(await post('/v1/vision/scene', deepstackPython(line, key.alice)));
    assert.equal(scene.label, 'upside-down');
    assert.ok(scene.confidence > 0.5 && scene.confidence <= 1);
    assert.deepEqual(Object.keys(scene).sort(), ['confidence', 'duration', 'label', 'success']);
    // A classify model through custom/: labels over the whole image.
    const classified = assertSuccess(await post('/v1/vision/custom/scenes', deepstackPython(line, key.alice, { min_confidence: '0.5' })));
    assert.deepEqual(classified.predictions.map((p: any) => [p.label, p.x_min, p.y_min, p.x_max, p.y_max]), [['upside-down', 0, 0, 384, 96]]);
  });

  it('Blue Iris through the signing proxy: custom/list, then image + min_confidence with no credentials', async () => {
    const proxy = createSigningProxy({ upstream: gw.url, accessKey: ALICE.accessKey, secretKey: ALICE.secretKey, allow: ['/v1/vision'], port: 0, host: '127.0.0.1' });
    const { port } = await proxy.listen();
    try {
      const list = await rawRequest(port, { method: 'POST', target: '/v1/vision/custom/list', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: '' });
      assert.deepEqual(assertSuccess(list).models, ['objects', 'scenes', 'yolo8']);
      const form = multipartBody([{ name: 'image', file: street, filename: 'Cam1.20261202_104500.jpg', type: 'image/jpeg' }, { name: 'min_confidence', value: '0.5' }]);
      const det = await rawRequest(port, { method: 'POST', target: '/v1/vision/custom/objects', headers: { 'content-type': form.contentType }, body: form.body });
      assert.deepEqual(assertSuccess(det).predictions.map((p: { label: string }) => p.label), ['cat', 'dog', 'cat']);
      const empty = await rawRequest(port, { method: 'POST', target: '/v1/vision/detection', headers: { 'content-type': 'multipart/form-data; boundary=x' }, body: '--x--\r\n' });
      assertDeepStackError(empty, 400, 'invalid-image', /No image/);
    } finally {
      await proxy.close();
    }
  });

  it('a Backend.AI signature works too; a read-scoped key may infer; the implicit session is listed', async () => {
    const form = multipartBody([{ name: 'image', file: street }]);
    const signed = await gw.signed({ method: 'POST', target: '/v1/vision/detection', as: ALICE, body: form.body, contentType: form.contentType });
    assert.equal(assertSuccess(signed).predictions.length, 3);
    assertSuccess(await post('/v1/vision/detection', deepstackPython(street, key.bob)));
    const sessions = await gw.signed({ method: 'GET', target: '/session', as: ALICE });
    const implicit = sessions.json.sessions.find((s: { sessionName: string }) => s.sessionName === 'vision.objects');
    assert.equal(implicit?.image, 'objects');
    assert.ok(sessions.json.sessions.some((s: { sessionName: string }) => s.sessionName === 'vision.scenes'));
  });

  it('OCR on /v1/vision/ocr and /v1/image/ocr: the first file part whatever its name, label = text', async () => {
    for (const path of ['/v1/vision/ocr', '/v1/image/ocr']) {
      const form = multipartBody([{ name: 'api_key', value: key.alice }, { name: 'upload', file: page, filename: 'page.png', type: 'image/png' }]);
      const ocr = assertSuccess(await post(path, form));
      assert.equal(ocr.predictions.length, 1);
      assert.equal(ocr.predictions[0].label, 'Kernelgate reads text');
      assert.ok(ocr.predictions[0].confidence > 0.5);
      for (const k of ['x_min', 'y_min', 'x_max', 'y_max']) assert.ok(Number.isInteger(ocr.predictions[0][k]));
      assert.ok(ocr.predictions[0].x_max > ocr.predictions[0].x_min);
    }
  });

  it('face: deepstack-python sends a photograph to the built-in face kernel (min_confidence 0.55 by default)', async () => {
    const res = await post('/v1/vision/face', deepstackPython(photo('astronaut'), key.alice));
    const body = assertSuccess(res);
    assert.equal(body.predictions.length, 1, res.text);
    const p = body.predictions[0];
    assert.deepEqual(Object.keys(p).sort(), ['confidence', 'x_max', 'x_min', 'y_max', 'y_min']);
    assert.ok(p.confidence >= 0.55);
    for (const k of ['x_min', 'y_min', 'x_max', 'y_max']) assert.ok(Number.isInteger(p[k]));
    assert.ok(iou(p, FACES.astronaut.box) > 0.5, res.text);
    // A cat is no face; a threshold above the face's confidence leaves nothing.
    assert.deepEqual(assertSuccess(await post('/v1/vision/face', deepstackPython(photo('chelsea'), key.alice))).predictions, []);
    assert.deepEqual(assertSuccess(await post('/v1/vision/face', deepstackPython(photo('astronaut'), key.alice, { min_confidence: '0.99' }))).predictions, []);
  });

  it('every error path: a real status and the DeepStack members', async () => {
    assertDeepStackError(await post('/v1/vision/detection', deepstackPython(street, 'kg_' + 'x'.repeat(32))), 401, 'auth-failed', /^Incorrect api key/);
    assertDeepStackError(await post('/v1/vision/detection', deepstackPython(street, '')), 401, 'auth-failed');
    assertDeepStackError(await post('/v1/vision/detection', multipartBody([{ name: 'api_key', value: key.alice }])), 400, 'invalid-image', /No image/);
    assertDeepStackError(await post('/v1/vision/detection', deepstackPython(Buffer.from('not an image'), key.alice)), 400, 'invalid-image');
    for (const bad of ['abc', '1.5', '-0.1', 'nan', '0x1', '1e5']) {
      assertDeepStackError(await post('/v1/vision/detection', deepstackPython(street, key.alice, { min_confidence: bad })), 400, 'invalid-api-params', /min_confidence/);
    }
    assertDeepStackError(await post('/v1/vision/custom/nosuch', deepstackPython(street, key.alice)), 404, 'model-not-found');
    assertDeepStackError(await post('/v1/vision/nosuch', deepstackPython(street, key.alice)), 404, 'url-not-found');
    assertDeepStackError(await gw.request({ method: 'GET', target: '/v1/vision/detection' }), 405, 'method-not-allowed');
    assertDeepStackError(await gw.request({ method: 'POST', target: '/v1/vision/detection', headers: { 'x-api-key': key.alice, 'content-type': 'application/json' }, body: '{}' }), 415, 'unsupported-media-type');
    const twice = multipartBody([{ name: 'api_key', value: key.alice }, { name: 'min_confidence', value: '0.5' }, { name: 'min_confidence', value: '0.1' }, { name: 'image', file: street }]);
    assertDeepStackError(await post('/v1/vision/detection', twice), 400, 'invalid-api-params', /more than once/);
    // Over [inference] max_image_bytes: refused while the form is read, before anything looks at the bytes.
    const big = Buffer.concat([street, Buffer.alloc(2_000_000)]);
    assertDeepStackError(await post('/v1/vision/detection', deepstackPython(big, key.alice)), 413, 'request-too-large');
    assertDeepStackError(await admin('/v1/vision/deletemodel', [{ name: 'name', value: 'nosuch' }]), 404, 'model-not-found');
    assertDeepStackError(await admin('/v1/vision/deletemodel', []), 400, 'invalid-api-params');
    assertDeepStackError(await post('/v1/vision/detection', { body: Buffer.from('--x\r\nbroken'), contentType: 'multipart/form-data; boundary=x' }, { 'x-api-key': key.alice }), 400, 'invalid-api-params');
  });

  it("charges each call to the key's keypair", async () => {
    const remaining = (res: Response) => Number(res.headers['x-ratelimit-remaining']);
    const before = remaining(await gw.signed({ method: 'GET', target: '/auth/test', as: ALICE }));
    const a = await post('/v1/vision/detection', deepstackPython(street, key.alice));
    const b = await post('/v1/vision/custom/list', multipartBody([{ name: 'api_key', value: key.alice }]));
    const failed = await post('/v1/vision/custom/nosuch', deepstackPython(street, key.alice));
    assert.deepEqual([remaining(a), remaining(b), remaining(failed)], [before - 1, before - 2, before - 3]);
    const after = remaining(await gw.signed({ method: 'GET', target: '/auth/test', as: ALICE }));
    assert.equal(after, before - 4, 'the same bucket as the keypair\'s signed calls');
    assert.equal(remaining(await gw.signed({ method: 'GET', target: '/auth/test', as: BOB })) > after, true, "another keypair's bucket is untouched");
  });

  it("scoping: another domain's admin neither lists, removes nor replaces this domain's models", async () => {
    const mine = assertSuccess(await admin('/v1/vision/listmodels', []));
    assert.deepEqual(assertSuccess(await admin('/v1/vision/listmodels', [], key.otherAdmin)).models, []);
    assertDeepStackError(await admin('/v1/vision/deletemodel', [{ name: 'name', value: 'objects' }], key.otherAdmin), 404, 'model-not-found');
    // The same name in its own domain is its own model: the first domain's stays as it was.
    assert.equal(assertSuccess(await addModel({ ...DETECT, labels: ['x', 'y'] }, DETECTOR, key.otherAdmin)).message, 'model registered');
    assert.deepEqual(assertSuccess(await admin('/v1/vision/listmodels', [])), { ...mine, models: mine.models });
    const theirs = assertSuccess(await post('/v1/vision/custom/objects', deepstackPython(street, key.carol)));
    assert.deepEqual(theirs.predictions.map((p: { label: string }) => p.label), ['x', 'y', 'x']);
    assert.deepEqual(assertSuccess(await post('/v1/vision/custom/list', multipartBody([{ name: 'api_key', value: key.carol }]))).models, ['objects']);
    const ours = assertSuccess(await post('/v1/vision/custom/objects', deepstackPython(street, key.alice)));
    assert.deepEqual(ours.predictions.map((p: { label: string }) => p.label), ['cat', 'dog', 'cat']);
    // deletemodel in one's own domain.
    assert.equal(assertSuccess(await admin('/v1/vision/deletemodel', [{ name: 'name', value: 'objects' }], key.otherAdmin)).message, 'Model removed');
    assertDeepStackError(await post('/v1/vision/custom/objects', deepstackPython(street, key.carol)), 404, 'model-not-found');
    assert.equal(assertSuccess(await post('/v1/vision/custom/objects', deepstackPython(street, key.alice))).predictions.length, 3);
  });
});

describe('[vision] enabled = false', () => {
  it('the whole surface answers 404 (an in-process gateway)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kernelgate-vision-off-'));
    mkdirSync(join(dir, 'keys'));
    writeKeypair(join(dir, 'keys'), ADMIN);
    const config = defaultConfig();
    Object.assign(config.server, { host: '127.0.0.1', port: 0 });
    config.keypairs.dir = join(dir, 'keys');
    config.inference.models_dir = join(dir, 'models');
    config.log.access = false;
    config.vision.enabled = false;
    const gateway = await createGateway(config, { log: pino({ level: 'silent' }) });
    try {
      const { port } = await gateway.listen();
      for (const path of ['/v1/vision/detection', '/v1/vision/custom/list', '/v1/vision/addmodel', '/v1/vision/ocr']) {
        const form = multipartBody([{ name: 'image', file: Buffer.from('x') }]);
        const signed = signRequest({ method: 'POST', target: path, host: `127.0.0.1:${port}`, accessKey: ADMIN.accessKey, secretKey: ADMIN.secretKey, body: form.body, contentType: form.contentType });
        assertDeepStackError(await rawRequest(port, { method: 'POST', target: path, headers: signed.headers, body: form.body }), 404, 'url-not-found');
      }
    } finally {
      await gateway.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
