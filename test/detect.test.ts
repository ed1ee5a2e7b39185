/**
 * Detect models (issue 11 item 2), the pure parts: the two YOLO layouts decoded, class-wise NMS,
 * thresholds, letterbox geometry (grey 114, centred) and the mapping back to the original image. The same
 * outputs, from real ONNX graphs, run through a real gateway in test/vision.test.ts (sessions and
 * /v1/vision/*), where the EXIF-rotated case is pinned too.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { decodeDetections } from '../src/inference/detect/decode.js';
import { letterbox, letterboxGeometry, unletterbox } from '../src/inference/detect/letterbox.js';
import { inspectImage } from '../src/inference/image.js';
import { planarInput } from '../src/inference/planar.js';
import { yolov5Values, yolov8Values } from './helpers/onnx.js';
import { ROWS, ROWS_V5 } from './helpers/detect-fixtures.js';

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
    // a4 overlaps a0 by IoU 19/45 = 0.422: kept at 0.422, dropped just under it.
    assert.deepEqual(decodeDetections(Float32Array.from(v8.values), v8.dims, 'yolov8', 2, 0.4, 19 / 45).map((d) => d.x1), [16, 17, 29]);
    assert.deepEqual(decodeDetections(Float32Array.from(v8.values), v8.dims, 'yolov8', 2, 0.4, 19 / 45 - 1e-9).map((d) => d.x1), [16, 17]);
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

  it('planar input: (byte / 255 - mean) / std per channel, planes in the configured colour order', () => {
    const pixels = Uint8Array.from({ length: 4 * 3 * 3 }, (_, i) => (i * 37) % 256);
    const normalize = { mean: [0.485, 0.456, 0.406] as [number, number, number], std: [0.229, 0.224, 0.225] as [number, number, number] };
    for (const color of ['RGB', 'BGR'] as const) {
      const got = planarInput(pixels, 4, 3, { input: { width: 4, height: 3, color }, normalize });
      const want = new Float32Array(36);
      for (let c = 0; c < 3; c++) {
        const source = color === 'BGR' ? 2 - c : c;
        for (let i = 0; i < 12; i++) want[c * 12 + i] = (pixels[i * 3 + source]! / 255 - normalize.mean[c]!) / normalize.std[c]!;
      }
      assert.deepEqual(got, want, color);
    }
    assert.throws(() => planarInput(pixels, 5, 3, { input: { width: 5, height: 3, color: 'RGB' }, normalize }), /bytes for 5x3x3/);
  });

  it('letterboxes with grey 114, centred, and maps boxes back through the same geometry', async () => {
    const red = await sharp({ create: { width: 200, height: 100, channels: 3, background: { r: 255, g: 0, b: 0 } } }).png().toBuffer();
    const { pixels, box } = await letterbox(red, await inspectImage(red), {}, 64, 64);
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
