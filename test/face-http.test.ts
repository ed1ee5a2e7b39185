/**
 * The built-in `face` kernel through a spawned gateway with signed requests: a session with
 * `image: "face"`, real photographs (test/helpers/photos.ts), `?min_confidence`, and bad input answered
 * with problem documents.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { ALICE, startGateway, type Response, type TestGateway } from './helpers/gateway.js';
import { FACES, iou, photo } from './helpers/photos.js';
import { assertProblem } from './helpers/problems.js';

interface FaceBody {
  predictions: Array<{ confidence: number; x_min: number; y_min: number; x_max: number; y_max: number; landmarks: number[][] }>;
  duration_ms: number;
  provider: string;
}

const MAX_PIXELS = 4_000_000;

describe('face kernel over HTTP', () => {
  let gw: TestGateway;
  const infer = (body: Buffer | string, contentType = 'image/png', query = '') =>
    gw.signed({ method: 'POST', target: `/session/faces/infer${query}`, as: ALICE, body, contentType });
  const ok = (res: Response): FaceBody => {
    assert.equal(res.status, 200, res.text);
    const body = res.json as FaceBody;
    assert.equal(body.provider, 'cpu');
    assert.ok(body.duration_ms > 0);
    return body;
  };

  before(async () => {
    gw = await startGateway({ config: `[inference]\nmax_image_pixels = ${MAX_PIXELS}\n` });
    const created = await gw.signed({ method: 'POST', target: '/session', as: ALICE, body: JSON.stringify({ name: 'faces', image: 'face' }) });
    assert.equal(created.status, 201, created.text);
  });
  after(() => gw?.stop());

  it('finds the face in a real photograph, as a raw body, a multipart form and JSON base64', async () => {
    const png = photo('astronaut');
    const boundary = 'face-test-boundary';
    const form = Buffer.concat([
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n`),
      png,
      Buffer.from(`\r\n--${boundary}--\r\n`),
    ]);
    for (const res of [
      await infer(png),
      await infer(form, `multipart/form-data; boundary=${boundary}`),
      await infer(JSON.stringify({ image: png.toString('base64') }), 'application/json'),
    ]) {
      const { predictions } = ok(res);
      assert.equal(predictions.length, 1, res.text);
      const face = predictions[0]!;
      assert.ok(iou(face, FACES.astronaut.box) > 0.7, res.text);
      for (const v of [face.x_min, face.y_min, face.x_max, face.y_max]) assert.ok(Number.isInteger(v));
      assert.equal(face.landmarks.length, 6);
      assert.ok(face.landmarks.every((p) => p.length === 2 && p.every(Number.isInteger)));
    }
  });

  it('no face on a cat; min_confidence as a query parameter filters', async () => {
    assert.deepEqual(ok(await infer(photo('chelsea'))).predictions, []);
    const camera = photo('camera');
    const found = ok(await infer(camera, 'image/png', '?min_confidence=0.5')).predictions;
    assert.equal(found.length, 1);
    assert.ok(iou(found[0]!, FACES.camera.box) > 0.6);
    const above = found[0]!.confidence + 0.05;
    assert.deepEqual(ok(await infer(camera, 'image/png', `?min_confidence=${above.toFixed(4)}`)).predictions, []);
  });

  it('a large photo is mapped back to its own pixels; one over the pixel limit is a 413', async () => {
    const big = await sharp(photo('astronaut')).resize(1800).png({ compressionLevel: 1 }).toBuffer();
    const [face] = ok(await infer(big)).predictions;
    const s = 1800 / 512;
    const b = FACES.astronaut.box;
    assert.ok(iou(face!, { x_min: b.x_min * s, y_min: b.y_min * s, x_max: b.x_max * s, y_max: b.y_max * s }) > 0.7, JSON.stringify(face));
    const over = await sharp({ create: { width: 2500, height: 2000, channels: 3, background: '#777' } }).png().toBuffer();
    assertProblem(await infer(over), 413, 'request-too-large');
  });

  it('bad input and bad options are 4xx problem documents, and the kernel keeps serving', async () => {
    assertProblem(await infer(Buffer.from('definitely not an image')), 400, 'invalid-image');
    assertProblem(await infer(photo('astronaut').subarray(0, 500)), 400, 'invalid-image');
    assertProblem(await infer(Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>'), 'image/svg+xml'), 415, 'unsupported-media-type');
    for (const q of ['?min_confidence=2', '?min_confidence=abc', '?min_confidence=-0.1', '?min_confidence=0.5&min_confidence=0.6', `?min_confidence=${'9'.repeat(5000)}`]) {
      assertProblem(await infer(photo('camera'), 'image/png', q), 400, 'invalid-api-params');
    }
    assert.equal(ok(await infer(photo('astronaut'))).predictions.length, 1);
  });
});
