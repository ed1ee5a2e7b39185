/**
 * Fuzzing the parsers the DeepStack API added (issue 11): the form reader (multipart and urlencoded bodies,
 * hostile and valid), min_confidence, the YOLO decoder on arbitrary tensors, and an uploaded config through
 * the form. Each never throws anything but ApiError (a 4xx), agrees with a reference where one exists, and
 * stays linear on long adversarial input.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { readForm, textField, imagePart } from '../src/http/form.js';
import { decodeDetections, MAX_DETECTIONS } from '../src/inference/detect/decode.js';
import { uploadFromForm } from '../src/models/form-upload.js';
import { ApiError } from '../src/problems/api-error.js';
import { parseMinConfidence } from '../src/vision/min-confidence.js';
import { multipartBody } from './helpers/deepstack.js';

const RUNS = 300;
const LIMITS = { maxFileBytes: 4096 };

/** Resolves, or rejects with a client error; anything else fails the property. */
async function onlyClientErrors(p: Promise<unknown>): Promise<void> {
  try {
    await p;
  } catch (error) {
    assert.ok(error instanceof ApiError, `not an ApiError: ${String(error)}`);
    assert.ok(error.status >= 400 && error.status < 500, `status ${error.status}`);
  }
}

const fieldName = fc.string({ unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz_'), minLength: 1, maxLength: 12 });

describe('fuzz: DeepStack forms and numbers', () => {
  it('readForm: arbitrary bytes under multipart and urlencoded types never escape as anything but a 4xx', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 600 }), fc.constantFrom('multipart/form-data; boundary=b', 'multipart/form-data', 'application/x-www-form-urlencoded', 'text/plain', 'multipart/form-data; boundary="a b"'), async (bytes, type) => {
        await onlyClientErrors(readForm(Buffer.from(bytes), type, LIMITS));
      }),
      { numRuns: RUNS },
    );
  });

  it('readForm: well-formed forms come back exactly (fields as sent, files byte for byte), duplicates refused', async () => {
    const part = fc.oneof(
      fc.record({ name: fieldName, value: fc.string({ unit: fc.constantFrom(...'abc 0.9-_é'), maxLength: 40 }) }),
      fc.record({ name: fieldName, file: fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(part, { maxLength: 6 }), async (parts) => {
        const names = parts.map((p) => p.name);
        const { body, contentType } = multipartBody(parts);
        if (new Set(names).size !== names.length) {
          await assert.rejects(readForm(body, contentType, LIMITS), (e: ApiError) => e.status === 400 && /more than once/.test(e.message));
          return;
        }
        const form = await readForm(body, contentType, LIMITS);
        for (const p of parts) {
          if ('value' in p) assert.equal(textField(form, p.name), p.value);
          else assert.deepEqual(form.files.get(p.name), p.file);
        }
        const firstFile = parts.find((p) => 'file' in p) as { file: Buffer } | undefined;
        assert.deepEqual(form.firstFile, firstFile?.file);
        const image = parts.find((p) => p.name === 'image');
        if (image) assert.deepEqual(imagePart(form), 'file' in image ? image.file : Buffer.from(image.value, 'utf8'));
      }),
      { numRuns: RUNS },
    );
    // Found by this property in CI: an empty file part, then a field of the same name (the field arrived before
    // the file's end, when names were still checked against the finished parts only).
    for (const parts of [
      [{ name: 'ca', file: Buffer.alloc(0) }, { name: 'ca', value: '' }],
      [{ name: 'image', file: Buffer.alloc(0) }, { name: 'image', file: Buffer.from('x') }],
    ]) {
      const { body, contentType } = multipartBody(parts);
      await assert.rejects(readForm(body, contentType, LIMITS), (e: ApiError) => e.status === 400 && /more than once/.test(e.message));
    }
  });

  it('readForm: a part over its limit is a 413, long adversarial headers stay fast', async () => {
    const over = multipartBody([{ name: 'image', file: Buffer.alloc(LIMITS.maxFileBytes + 1) }]);
    await assert.rejects(readForm(over.body, over.contentType, LIMITS), (e: ApiError) => e.status === 413);
    const field = multipartBody([{ name: 'min_confidence', value: '9'.repeat(5000) }]);
    await assert.rejects(readForm(field.body, field.contentType, LIMITS), (e: ApiError) => e.status === 413);
    for (const hostile of [
      Buffer.from(`--b\r\nContent-Disposition: form-data; name="${'x'.repeat(200_000)}"\r\n\r\nv\r\n--b--\r\n`),
      Buffer.from(`--b\r\n${'Content-Disposition: form-data; name="a"\r\n'.repeat(5_000)}\r\nv\r\n--b--\r\n`),
      Buffer.from('--b\r\n'.repeat(50_000)),
      Buffer.from(`${'\r\n'.repeat(100_000)}--b--`),
      Buffer.from('a=1&'.repeat(50_000), 'latin1'),
    ]) {
      const started = performance.now();
      await onlyClientErrors(readForm(hostile, 'multipart/form-data; boundary=b', { maxFileBytes: 1 << 20 }));
      await onlyClientErrors(readForm(hostile, 'application/x-www-form-urlencoded', { maxFileBytes: 1 << 20 }));
      assert.ok(performance.now() - started < 2000, 'linear');
    }
  });

  it('parseMinConfidence: agrees with a reference on decimals, refuses everything else with a 400', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 60 }), fc.double({ noNaN: false }).map(String), fc.double({ min: 0, max: 1 }).map(String), fc.constantFrom('0', '1', '.5', '0.', '1e-5', '5E-1', ' 0.3 ', 'Infinity', '0x1', '1_0')), (raw) => {
        const text = raw.trim();
        let value: number | undefined;
        try {
          value = parseMinConfidence(raw, 0.4);
        } catch (error) {
          assert.ok(error instanceof ApiError && error.status === 400);
          assert.ok(!(text !== '' && /^[0-9.eE+-]+$/.test(text) && Number(text) >= 0 && Number(text) <= 1 && /^(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text) && text.length < 40), `refused ${JSON.stringify(raw)}`);
          return;
        }
        if (text === '') assert.equal(value, 0.4);
        else assert.equal(value, Number(text));
        assert.ok(value >= 0 && value <= 1);
      }),
      { numRuns: 2000 },
    );
    const started = performance.now();
    for (const s of ['1'.repeat(100_000), `0.${'0'.repeat(100_000)}1`, '1e'.repeat(50_000), `${' '.repeat(100_000)}x`]) assert.throws(() => parseMinConfidence(s, 0.4));
    assert.equal(parseMinConfidence(' '.repeat(100_000), 0.4), 0.4, 'blank: the default');
    assert.ok(performance.now() - started < 500, 'linear');
  });

  it('decodeDetections: any tensor of the declared shape gives at most MAX_DETECTIONS finite, ordered boxes', () => {
    const values = fc.oneof(fc.float({ noDefaultInfinity: false, noNaN: false }), fc.float({ min: 0, max: 1, noNaN: true }), fc.float({ min: 0, max: 640, noNaN: true }));
    fc.assert(
      fc.property(fc.constantFrom('yolov8' as const, 'yolov5' as const), fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 40 }), fc.array(values, { minLength: 9 * 40, maxLength: 9 * 40 }), fc.double({ min: 0, max: 1, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true }), (format, classes, n, pool, min, iouT) => {
          const attrs = format === 'yolov8' ? 4 + classes : 5 + classes;
          const data = Float32Array.from(pool.slice(0, attrs * n));
          const dims = format === 'yolov8' ? [1, attrs, n] : [1, n, attrs];
          const found = decodeDetections(data, dims, format, classes, min, iouT);
          assert.ok(found.length <= Math.min(n, MAX_DETECTIONS));
          for (let i = 0; i < found.length; i++) {
            const d = found[i]!;
            assert.ok(Number.isFinite(d.x1 + d.y1 + d.x2 + d.y2) && d.x2 >= d.x1 && d.y2 >= d.y1);
            assert.ok(d.confidence >= min && d.classIndex >= 0 && d.classIndex < classes);
            if (i > 0) assert.ok(found[i - 1]!.confidence >= d.confidence);
          }
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('uploadFromForm: arbitrary config parts are a 400, never a crash', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.json(), fc.string({ maxLength: 200 })), fc.option(fieldName, { nil: undefined }), async (config, name) => {
        const parts: Parameters<typeof multipartBody>[0] = [{ name: 'model', file: Buffer.from('onnx') }, { name: 'config', file: Buffer.from(config) }];
        if (name !== undefined) parts.push({ name: 'name', value: name });
        const { body, contentType } = multipartBody(parts);
        await onlyClientErrors((async () => uploadFromForm(await readForm(body, contentType, LIMITS)))());
      }),
      { numRuns: RUNS },
    );
  });
});
