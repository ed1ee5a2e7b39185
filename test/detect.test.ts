/**
 * Detect models (issue 11 item 2): the two YOLO layouts decoded, class-wise NMS, thresholds, letterbox
 * geometry (grey 114, centred) and boxes mapped back to the original, EXIF-rotated image. Real ONNX graphs
 * built here with known outputs run through a real gateway; the pure decoder is pinned on the same numbers.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { decodeDetections, iou } from '../src/inference/detect/decode.js';
import { letterbox, letterboxGeometry, unletterbox } from '../src/inference/detect/letterbox.js';
import { ADMIN, ALICE, startGateway, type TestGateway } from './helpers/gateway.js';
import { constantDetector, yolov5Values, yolov8Values } from './helpers/onnx.js';
import { assertProblem } from './helpers/problems.js';
import { A0, A2, A4, LABELS, ROWS, ROWS_V5 } from './helpers/detect-fixtures.js';

describe('detect decoding (pure)', () => {
  const v8 = yolov8Values(ROWS);
  const v5 = yolov5Values(ROWS_V5);
  const classes = (ds: ReturnType<typeof decodeDetections>) => ds.map((d) => [d.classIndex, Math.round(d.confidence * 100) / 100, d.x1, d.y1, d.x2, d.y2]);

  it('decodes both layouts to the same boxes, class-wise NMS at 0.45, min_confidence 0.40', () => {
    const expected = [
      [0, 0.9, 16, 24, 48, 40],
      [1, 0.7, 17, 24, 49, 40],
      [0, 0.6, 29, 24, 61, 40],
    ];
    assert.deepEqual(classes(decodeDetections(Float32Array.from(v8.values), v8.dims, 'yolov8', 2, 0.4, 0.45)), expected);
    assert.deepEqual(classes(decodeDetections(Float32Array.from(v5.values), v5.dims, 'yolov5', 2, 0.4, 0.45)), expected);
  });

  it('a lower threshold lets a3 in; a lower IoU threshold drops a4', () => {
    assert.deepEqual(decodeDetections(Float32Array.from(v8.values), v8.dims, 'yolov8', 2, 0.3, 0.45).map((d) => d.x1), [16, 17, 29, 6]);
    assert.deepEqual(decodeDetections(Float32Array.from(v5.values), v5.dims, 'yolov5', 2, 0.3, 0.45).map((d) => d.x1), [16, 17, 29, 6]);
    assert.deepEqual(decodeDetections(Float32Array.from(v8.values), v8.dims, 'yolov8', 2, 0.4, 0.4).map((d) => d.x1), [16, 17]);
    assert.ok(Math.abs(iou({ x1: 16, y1: 24, x2: 48, y2: 40, confidence: 1, classIndex: 0 }, { x1: 29, y1: 24, x2: 61, y2: 40, confidence: 1, classIndex: 0 }) - 19 / 45) < 1e-12);
  });

  it('refuses an output whose shape does not fit the labels, and skips NaN and negative boxes', () => {
    assert.throws(() => decodeDetections(Float32Array.from(v8.values), v8.dims, 'yolov8', 3, 0.4, 0.45), /shape \[1, 6, 5\], not \[1, 4\+C, N\] = \[1, 7, N\] for 3 labels/);
    assert.throws(() => decodeDetections(Float32Array.from(v8.values), v8.dims, 'yolov5', 2, 0.4, 0.45), /format yolov5/);
    const bad = yolov8Values([
      [NaN, 1, 1, 1, 0.9, 0],
      [1, 1, -2, 1, 0.9, 0],
      [1, 1, 1, 1, NaN, 0.95],
    ]);
    assert.deepEqual(classes(decodeDetections(Float32Array.from(bad.values), bad.dims, 'yolov8', 2, 0.4, 0.45)), [[1, 0.95, 0.5, 0.5, 1.5, 1.5]]);
  });

  it('letterboxes with grey 114, centred, and maps boxes back through the same geometry', async () => {
    const red = await sharp({ create: { width: 200, height: 100, channels: 3, background: { r: 255, g: 0, b: 0 } } }).raw().toBuffer();
    const { pixels, box } = await letterbox({ data: red, width: 200, height: 100, format: 'png' }, 64, 64);
    assert.deepEqual(box, { scale: 0.32, left: 0, top: 16, width: 200, height: 100 });
    const at = (x: number, y: number) => [...pixels.subarray((y * 64 + x) * 3, (y * 64 + x) * 3 + 3)];
    for (const y of [0, 15, 48, 63]) assert.deepEqual(at(31, y), [114, 114, 114], `row ${y} is padding`);
    for (const y of [16, 32, 47]) assert.deepEqual(at(0, y), [255, 0, 0], `row ${y} is the image`);
    assert.deepEqual(unletterbox(box, 16, 24, 48, 40), { x_min: 50, y_min: 25, x_max: 150, y_max: 75 });
    assert.deepEqual(unletterbox(box, -10, 0, 80, 70), { x_min: 0, y_min: 0, x_max: 200, y_max: 100 }, 'clamped to the image');
    const tall = letterboxGeometry(100, 200, 64, 64);
    assert.deepEqual([tall.scale, tall.left, tall.top, tall.innerW, tall.innerH], [0.32, 16, 0, 32, 64]);
  });
});

describe('detect models through the gateway', () => {
  let gw: TestGateway;
  let png: Buffer;
  let rotatedJpeg: Buffer;
  const v8 = yolov8Values(ROWS);
  const v5 = yolov5Values(ROWS_V5);
  const config = (name: string, format: string, extra: object = {}) => ({ name, task: 'detect', format, input: { width: 64, height: 64 }, labels: LABELS, ...extra });
  const upload = (cfg: object, onnx: Buffer) => gw.signed({ method: 'POST', target: '/models', as: ADMIN, body: JSON.stringify({ ...cfg, model: onnx.toString('base64') }) });
  const infer = async (session: string, image: Buffer, type: string) => {
    const res = await gw.signed({ method: 'POST', target: `/session/${session}/infer`, as: ALICE, body: image, contentType: type });
    assert.equal(res.status, 200, res.text);
    return res.json;
  };

  before(async () => {
    gw = await startGateway();
    png = await sharp({ create: { width: 200, height: 100, channels: 3, background: { r: 20, g: 120, b: 200 } } }).png().toBuffer();
    // Stored 200x100, shown 100x200 (EXIF orientation 6: turn 90 degrees clockwise).
    rotatedJpeg = await sharp({ create: { width: 200, height: 100, channels: 3, background: { r: 200, g: 20, b: 20 } } }).jpeg().withMetadata({ orientation: 6 }).toBuffer();
  });
  after(() => gw.stop());

  it('refuses at upload a model whose output does not fit the labels or the declared layout', async () => {
    const v8model = constantDetector(64, 64, v8.dims, v8.values);
    const three = await upload({ ...config('wrong', 'yolov8'), labels: ['a', 'b', 'c'] }, v8model);
    assertProblem(three, 400, 'invalid-api-params');
    assert.match(three.json.detail, /output has shape \[1, 6, 5\], not \[1, 4\+C, N\] = \[1, 7, N\] for 3 labels/);
    assertProblem(await upload(config('wrong', 'yolov5'), v8model), 400, 'invalid-api-params');
    assertProblem(await upload({ name: 'wrong', task: 'detect', input: { width: 64, height: 64 }, labels: LABELS }, v8model), 400, 'invalid-api-params');
    assertProblem(await upload({ ...config('wrong', 'yolov8'), top_k: 2 }, v8model), 400, 'invalid-api-params');
    const list = await gw.signed({ method: 'GET', target: '/models', as: ADMIN });
    assert.deepEqual(list.json.models.map((m: { name: string }) => m.name), ['ocr'], 'nothing was kept');
  });

  it('runs yolov8 and yolov5 layouts in sessions: exact boxes on the original, EXIF-rotated image', async () => {
    assert.equal((await upload(config('yolo8', 'yolov8'), constantDetector(64, 64, v8.dims, v8.values))).status, 201);
    assert.equal((await upload(config('yolo5', 'yolov5'), constantDetector(64, 64, v5.dims, v5.values))).status, 201);
    assert.equal((await upload(config('strict', 'yolov8', { iou_threshold: 0.4 }), constantDetector(64, 64, v8.dims, v8.values))).status, 201);
    for (const [session, model] of [['s8', 'yolo8'], ['s5', 'yolo5'], ['strict', 'strict']]) {
      assert.equal((await gw.signed({ method: 'POST', target: '/session', as: ALICE, body: JSON.stringify({ name: session, image: model }) })).status, 201);
    }
    const r8 = await infer('s8', png, 'image/png');
    assert.deepEqual(r8.predictions, [A0, A2, A4]);
    assert.equal(r8.provider, 'cpu');
    assert.deepEqual((await infer('s5', png, 'image/png')).predictions, [A0, A2, A4]);
    assert.deepEqual((await infer('strict', png, 'image/png')).predictions, [A0, A2], 'iou_threshold 0.4 drops a4');
    // Shown 100x200: scale 0.32, 16 px of grey left and right.
    assert.deepEqual((await infer('s8', rotatedJpeg, 'image/jpeg')).predictions[0], { label: 'cat', confidence: 0.9, x_min: 0, y_min: 75, x_max: 100, y_max: 125 });
    const models = (await gw.signed({ method: 'GET', target: '/models', as: ALICE })).json.models;
    assert.equal(models.find((m: { name: string }) => m.name === 'yolo8').task, 'detect');
  });
});
