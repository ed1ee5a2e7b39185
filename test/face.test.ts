/**
 * The built-in face kernel (src/inference/face/): anchors, decoding and weighted NMS pinned on made-up
 * outputs, then the real BlazeFace models on real photographs (test/helpers/photos.ts): faces found where
 * a person sees them, none on a cat or a coffee cup, EXIF orientation honoured, the documented behaviour on
 * an upside-down photo, small faces through the back model, tiny and very wide images.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import sharp from 'sharp';
import { BACK_ANCHORS, FRONT_ANCHORS, ssdAnchorCentres } from '../src/inference/face/anchors.js';
import { decodeCandidates, REGRESSORS, type FaceCandidate } from '../src/inference/face/decode.js';
import { FaceKernel, joinLayers, minConfidenceOf, type FacePrediction, type FaceResult } from '../src/inference/face/kernel.js';
import { weightedNms } from '../src/inference/face/nms.js';
import { RunnerPool } from '../src/inference/runners/pool.js';
import { ApiError } from '../src/problems/api-error.js';
import { FACES, iou, photo } from './helpers/photos.js';

const logit = (p: number) => Math.log(p / (1 - p));

describe('face anchors, decoding and NMS', () => {
  it('generates the 896 anchor centres keijiro’s decoder walks, for both models', () => {
    for (const spec of [FRONT_ANCHORS, BACK_ANCHORS]) {
      const a = ssdAnchorCentres(spec);
      assert.equal(a.length, 896 * 2);
      // keijiro's Postprocess1: 16x16 cells x 2 anchors, then 8x8 cells x 6; centre (cell + 0.5) / cells.
      let i = 0;
      for (const [cells, per] of [[16, 2], [8, 6]] as const) {
        for (let y = 0; y < cells; y++) for (let x = 0; x < cells; x++) for (let k = 0; k < per; k++, i++) {
          assert.ok(Math.abs(a[2 * i]! - (x + 0.5) / cells) < 1e-6 && Math.abs(a[2 * i + 1]! - (y + 0.5) / cells) < 1e-6, `anchor ${i}`);
        }
      }
    }
  });

  it('decodes box, size and keypoints relative to the anchor, in input pixels', () => {
    const anchors = ssdAnchorCentres(FRONT_ANCHORS);
    const scores = new Float32Array(896).fill(-10);
    const regs = new Float32Array(896 * REGRESSORS);
    const i = 600; // in the 8x8 grid: (600 - 512) / 6 = cell 14 → x 6, y 1
    scores[i] = logit(0.9);
    regs.set([6.4, -12.8, 32, 16, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], i * REGRESSORS);
    const [c, ...rest] = decodeCandidates(scores, regs, anchors, 128, 0.5);
    assert.equal(rest.length, 0);
    assert.ok(Math.abs(c!.score - 0.9) < 1e-6);
    const cx = 6.5 / 8 + 0.05, cy = 1.5 / 8 - 0.1;
    const expected = [cx - 0.125, cy - 0.0625, cx + 0.125, cy + 0.0625];
    c!.box.forEach((v, k) => assert.ok(Math.abs(v - expected[k]!) < 1e-6, `box[${k}] ${v} vs ${expected[k]}`));
    assert.ok(Math.abs(c!.keypoints[0]! - (6.5 / 8 + 1 / 128)) < 1e-6 && Math.abs(c!.keypoints[11]! - (1.5 / 8 + 12 / 128)) < 1e-6);
  });

  it('keeps candidates at or above the threshold only, best first, bounded in number', () => {
    const anchors = ssdAnchorCentres(FRONT_ANCHORS);
    const regs = new Float32Array(896 * REGRESSORS);
    for (let i = 0; i < 896; i++) regs.set([0, 0, 10, 10], i * REGRESSORS);
    const scores = Float32Array.from({ length: 896 }, (_, i) => logit(0.1 + (0.8 * i) / 896));
    const kept = decodeCandidates(scores, regs, anchors, 128, 0.55);
    assert.ok(kept.length > 0 && kept.every((c) => c.score >= 0.55));
    for (let k = 1; k < kept.length; k++) assert.ok(kept[k - 1]!.score >= kept[k]!.score);
    assert.equal(decodeCandidates(scores, regs, anchors, 128, 0, 100).length, 100);
    assert.throws(() => decodeCandidates(scores.subarray(1), regs, anchors, 128, 0.5), /do not match/);
  });

  it('blends overlapping candidates by score (weighted NMS) and keeps the best score', () => {
    const cand = (score: number, box: FaceCandidate['box'], kp: number): FaceCandidate => ({ score, box, keypoints: new Float32Array(12).fill(kp) });
    const faces = weightedNms([cand(0.6, [10, 10, 30, 30], 2), cand(0.9, [12, 12, 32, 32], 1), cand(0.8, [100, 100, 120, 120], 5)]);
    assert.equal(faces.length, 2);
    assert.equal(faces[0]!.score, 0.9);
    // (0.9 * 12 + 0.6 * 10) / 1.5 = 11.2
    faces[0]!.box.forEach((v, k) => assert.ok(Math.abs(v - [11.2, 11.2, 31.2, 31.2][k]!) < 1e-9));
    assert.ok(Math.abs(faces[0]!.keypoints[0]! - (0.9 * 1 + 0.6 * 2) / 1.5) < 1e-6);
    assert.deepEqual(faces[1]!.box, [100, 100, 120, 120]);
    // A degenerate box still ends its own cluster (no endless loop).
    assert.equal(weightedNms([cand(0.7, [5, 5, 5, 5], 0), cand(0.6, [5, 5, 5, 5], 0)]).length, 2);
  });

  it('joins the two grids’ outputs in anchor order whatever order they come in', () => {
    const t = (n: number, last: number, v: number) => ({ data: new Float32Array(n * last).fill(v), dims: [1, n, last] });
    const { scores, regressors } = joinLayers([t(384, 16, 4), t(384, 1, 2), t(512, 1, 1), t(512, 16, 3)]);
    assert.equal(scores.length, 896);
    assert.equal(scores[511], 1);
    assert.equal(scores[512], 2);
    assert.equal(regressors[512 * 16 - 1], 3);
    assert.equal(regressors[512 * 16], 4);
  });

  it('decoding and NMS never throw on arbitrary outputs and stay bounded (fuzz)', () => {
    const anchors = ssdAnchorCentres(BACK_ANCHORS);
    fc.assert(
      fc.property(
        fc.float32Array({ minLength: 896, maxLength: 896 }),
        fc.float32Array({ minLength: 896 * 16, maxLength: 896 * 16 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (scores, regs, min) => {
          const c = decodeCandidates(scores, regs, anchors, 256, min);
          assert.ok(c.length <= 256);
          const faces = weightedNms(c);
          assert.ok(faces.length <= c.length);
        },
      ),
      { numRuns: 40 },
    );
  });

  it('min_confidence is a number from 0 to 1 (default 0.55), else a 400', () => {
    assert.equal(minConfidenceOf(undefined), 0.55);
    assert.equal(minConfidenceOf(0), 0);
    assert.equal(minConfidenceOf(1), 1);
    for (const bad of [-0.1, 1.5, Number.NaN, Infinity]) {
      assert.throws(() => minConfidenceOf(bad), (e: unknown) => e instanceof ApiError && e.status === 400);
    }
  });
});

describe('face kernel on real photographs', () => {
  let pool: RunnerPool;
  let kernel: FaceKernel;
  const faces = async (image: Buffer, minConfidence?: number): Promise<FacePrediction[]> => {
    const r: FaceResult = await kernel.infer(image, { minConfidence });
    assert.equal(r.provider, 'cpu');
    assert.ok(r.duration_ms > 0);
    return r.predictions;
  };
  const assertIntegerBox = (p: FacePrediction, w: number, h: number) => {
    for (const v of [p.x_min, p.y_min, p.x_max, p.y_max, ...p.landmarks.flat()]) assert.ok(Number.isInteger(v), `${v} is not an integer`);
    assert.ok(0 <= p.x_min && p.x_min < p.x_max && p.x_max < w && 0 <= p.y_min && p.y_min < p.y_max && p.y_max < h, JSON.stringify(p));
    assert.equal(p.landmarks.length, 6);
  };

  before(async () => {
    pool = new RunnerPool();
    kernel = await FaceKernel.load({ providers: ['cpu'], intraOpNumThreads: 1 }, pool);
  });
  after(async () => {
    await kernel?.close();
    await pool?.close();
  });

  it('finds the astronaut’s face where a person sees it, with her eyes in MediaPipe’s order', async () => {
    const [face, ...others] = await faces(photo('astronaut'));
    assert.equal(others.length, 0, JSON.stringify(others));
    assertIntegerBox(face!, 512, 512);
    assert.ok(face!.confidence > 0.85, `confidence ${face!.confidence}`);
    assert.ok(iou(face!, FACES.astronaut.box) > 0.7, `IoU ${iou(face!, FACES.astronaut.box)} of ${JSON.stringify(face)}`);
    // Landmark 0 is the subject's right eye (left in the picture), 1 the left eye.
    FACES.astronaut.eyes.forEach(([x, y], k) => assert.ok(Math.hypot(face!.landmarks[k]![0] - x, face!.landmarks[k]![1] - y) < 10, `eye ${k} at ${face!.landmarks[k]}`));
  });

  it('finds the cameraman’s face in profile', async () => {
    const [face, ...others] = await faces(photo('camera'));
    assert.equal(others.length, 0);
    assertIntegerBox(face!, 512, 512);
    assert.ok(iou(face!, FACES.camera.box) > 0.6, `IoU ${iou(face!, FACES.camera.box)} of ${JSON.stringify(face)}`);
  });

  it('finds no face on a cat or on a cup of coffee', async () => {
    assert.deepEqual(await faces(photo('chelsea')), []);
    assert.deepEqual(await faces(photo('coffee')), []);
  });

  it('honours EXIF orientation: boxes are in the upright picture’s pixels', async () => {
    const astronaut = photo('astronaut');
    // Stored turned (upside down; a quarter turn the other way), with the tag that turns them back.
    for (const [turn, orientation] of [[180, 3], [270, 6]] as const) {
      const jpeg = await sharp(astronaut).rotate(turn).jpeg({ quality: 92 }).withMetadata({ orientation }).toBuffer();
      const [face, ...others] = await faces(jpeg);
      assert.equal(others.length, 0, `orientation ${orientation}`);
      assert.ok(iou(face!, FACES.astronaut.box) > 0.7, `orientation ${orientation}: ${JSON.stringify(face)}`);
    }
  });

  it('an upside-down photo (no EXIF tag): BlazeFace is not rotation-invariant, the face scores far lower', async () => {
    const upright = (await faces(photo('astronaut'), 0.3))[0]!;
    const turned = await faces(await sharp(photo('astronaut')).rotate(180).png().toBuffer(), 0.3);
    const best = turned[0]!;
    assert.ok(best.confidence < upright.confidence - 0.2, `upside down ${best.confidence} vs upright ${upright.confidence}`);
    // What it does find is the turned face's place: the upright box turned about the centre.
    const b = FACES.astronaut.box;
    assert.ok(iou(best, { x_min: 511 - b.x_max, y_min: 511 - b.y_max, x_max: 511 - b.x_min, y_max: 511 - b.y_min }) > 0.6, JSON.stringify(best));
    // A client that wants only confident faces gets none.
    assert.deepEqual(await faces(await sharp(photo('astronaut')).rotate(180).png().toBuffer(), 0.75), []);
  });

  it('finds a small face in a large picture through the back model', async () => {
    // The astronaut at half her size on a plain 1024x768 canvas: her face is ~5 % of its width.
    const small = await sharp(photo('astronaut')).resize(256).toBuffer();
    const canvas = await sharp({ create: { width: 1024, height: 768, channels: 3, background: { r: 120, g: 130, b: 140 } } })
      .composite([{ input: small, left: 700, top: 400 }])
      .png()
      .toBuffer();
    const found = await faces(canvas);
    assert.equal(found.length, 1, JSON.stringify(found));
    const b = FACES.astronaut.box;
    const expected = { x_min: 700 + b.x_min / 2, y_min: 400 + b.y_min / 2, x_max: 700 + b.x_max / 2, y_max: 400 + b.y_max / 2 };
    assert.ok(iou(found[0]!, expected) > 0.5, `${JSON.stringify(found[0])} vs ${JSON.stringify(expected)}`);
    // The front model alone does not see it: the back model is what finds small faces.
    const pool2 = new RunnerPool();
    const frontOnly = await FaceKernel.load({ providers: ['cpu'], intraOpNumThreads: 1, models: 'front' }, pool2);
    try {
      assert.deepEqual((await frontOnly.infer(canvas)).predictions, []);
    } finally {
      await frontOnly.close();
      await pool2.close();
    }
  });

  it('tiny, flat and very wide images: no face, no error; coordinates stay inside', async () => {
    for (const [w, h] of [[1, 1], [3, 17], [2000, 40]] as const) {
      const img = await sharp({ create: { width: w, height: h, channels: 3, background: '#808080' } }).png().toBuffer();
      assert.deepEqual(await faces(img), [], `${w}x${h}`);
    }
    // The astronaut in a long strip: found, and mapped back through the letterbox's padding.
    const strip = await sharp({ create: { width: 1536, height: 512, channels: 3, background: '#ffffff' } })
      .composite([{ input: photo('astronaut'), left: 1024, top: 0 }])
      .png()
      .toBuffer();
    const [face] = await faces(strip);
    assertIntegerBox(face!, 1536, 512);
    const b = FACES.astronaut.box;
    assert.ok(iou(face!, { ...b, x_min: b.x_min + 1024, x_max: b.x_max + 1024 }) > 0.6, JSON.stringify(face));
  });

  it('refuses what is not an image with a 4xx ApiError', async () => {
    for (const [bytes, status] of [[Buffer.from('not an image at all'), 400], [Buffer.alloc(0), 400], [Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>'), 415]] as const) {
      await assert.rejects(kernel.infer(bytes), (e: unknown) => e instanceof ApiError && e.status === status);
    }
    await assert.rejects(kernel.infer(photo('astronaut'), { minConfidence: 2 }), (e: unknown) => e instanceof ApiError && e.status === 400);
  });
});
