/**
 * The face kernel's tiles for large camera frames (src/inference/face/tiles.ts, README "Face kernel"): the grid's
 * geometry (overlap, each point of the frame in exactly one tile's share), then the real models on real photos
 * (test/helpers/face-frames.ts): a small face in a 1920x1080 frame found with tiles and not without, no false
 * positive added on no-face frames, 640x480 and 1024x768 frames unchanged, and the LFW file parsed in TS.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import sharp from 'sharp';
import { FaceKernel, MAX_TILE_CHECKS, SMALL_FACE, TILE_MIN_LONG_SIDE, TILE_SIDE } from '../src/inference/face/kernel.js';
import { inCore, tileGrid } from '../src/inference/face/tiles.js';
import { RunnerPool, type RunnerSource } from '../src/inference/runners/pool.js';
import { composeFrame, evaluationFrames, faceInSurroundings, parseNpyCrops, photoFile } from './helpers/face-frames.js';
import { iou, photo, type Photo } from './helpers/photos.js';

describe('face tile grid', () => {
  it('tiles only frames whose long side is over TILE_MIN_LONG_SIDE', () => {
    assert.equal(tileGrid({ width: 640, height: 480 }, TILE_SIDE, 256, SMALL_FACE, TILE_MIN_LONG_SIDE), undefined);
    assert.equal(tileGrid({ width: 1024, height: 768 }, TILE_SIDE, 256, SMALL_FACE, TILE_MIN_LONG_SIDE), undefined);
    const g = tileGrid({ width: 1920, height: 1080 }, TILE_SIDE, 256, SMALL_FACE, TILE_MIN_LONG_SIDE)!;
    assert.equal(g.width, 960);
    assert.equal(g.height, 540);
    assert.equal(g.tiles.length, 15);
  });

  it('neighbours overlap by at least the largest face a tile answers for; every point lies in exactly one share, inside its tile', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1025, max: 8000 }), fc.integer({ min: 1, max: 8000 }), fc.integer({ min: 300, max: 1200 }), fc.boolean(), (a, b, side, flip) => {
        const img = flip ? { width: b, height: a } : { width: a, height: b };
        const g = tileGrid(img, side, 256, SMALL_FACE, TILE_MIN_LONG_SIDE)!;
        const overlap = Math.ceil(SMALL_FACE * 256);
        for (const { rect, core } of g.tiles) {
          assert.ok(rect.x >= 0 && rect.y >= 0 && rect.x + rect.width <= g.width && rect.y + rect.height <= g.height && rect.width <= 256 && rect.height <= 256);
          // A face centred in the share, narrower than the overlap, is whole in the tile (or cut by the frame's edge only).
          const half = overlap / 2;
          assert.ok(core.x - half >= rect.x || core.x === 0, JSON.stringify({ rect, core }));
          assert.ok(core.x + core.width + half <= rect.x + rect.width || core.x + core.width === g.width, JSON.stringify({ rect, core }));
          assert.ok(core.y - half >= rect.y || core.y === 0, JSON.stringify({ rect, core }));
          assert.ok(core.y + core.height + half <= rect.y + rect.height || core.y + core.height === g.height, JSON.stringify({ rect, core }));
        }
        for (let k = 0; k < 50; k++) {
          const x = ((k * 7919) % 1000) / 1000 * g.width, y = ((k * 104729) % 997) / 997 * g.height;
          assert.equal(g.tiles.filter((t) => inCore(t.core, x, y)).length, 1, `${x},${y}`);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('parses LFW’s .npy in TS: 200 crops of 25x25 in [0, 1]', () => {
    const { count, side, crops } = parseNpyCrops(photoFile('lfw_subset.npy'));
    assert.equal(count, 200);
    assert.equal(side, 25);
    assert.ok(crops.every((c) => c.length === 625 && c.every((v) => v >= 0 && v <= 1)));
    assert.throws(() => parseNpyCrops(Buffer.from('not numpy at all')), /not a \.npy/);
  });
});

describe('face tiles on real photos', () => {
  let pool: RunnerPool;
  let on: FaceKernel;
  let off: FaceKernel;
  before(async () => {
    pool = new RunnerPool();
    on = await FaceKernel.load({ providers: ['cpu'], intraOpNumThreads: 1 }, pool);
    off = await FaceKernel.load({ providers: ['cpu'], intraOpNumThreads: 1, tiles: false }, pool);
  });
  after(async () => {
    await on?.close();
    await off?.close();
    await pool?.close();
  });

  it('finds a 40 px face in a 1920x1080 camera frame with tiles, and not without', async () => {
    const face = await faceInSurroundings('astronaut', 40);
    const frame = await composeFrame('astronaut 40 px', 'brick.png', { width: 1920, height: 1080 }, [face], { seed: 3, degrade: 'none', quality: 80 });
    const truth = frame.faces[0]!;
    const without = (await off.infer(frame.jpeg)).predictions;
    assert.ok(!without.some((p) => iou(p, truth) >= 0.3), `found without tiles: ${JSON.stringify(without)}`);
    const found = (await on.infer(frame.jpeg)).predictions;
    assert.equal(found.length, 1, JSON.stringify(found));
    assert.ok(iou(found[0]!, truth) > 0.5, `${JSON.stringify(found[0])} vs ${JSON.stringify(truth)}`);
    assert.ok(found[0]!.confidence >= 0.55);
  });

  it('adds no face on frames that have none (real no-face photos at 1920x1080 and 1280x720, degraded), nor on LFW’s non-faces', async () => {
    const { noFace, nonFaces } = await evaluationFrames();
    for (const f of [...noFace, ...nonFaces]) {
      const a = (await on.infer(f.jpeg)).predictions;
      const b = (await off.infer(f.jpeg)).predictions;
      // Whatever the whole-image passes report (a nebula in Hubble's deep field at 0.6), the tiles add nothing.
      assert.equal(a.length, b.length, `${f.name}: ${JSON.stringify(a)} vs ${JSON.stringify(b)}`);
    }
  });

  it('bounds a frame’s model runs whatever it holds and whatever min_confidence asks (at most 32 checks)', async () => {
    // A source that counts the runs of each model: the kernel sees the pool's runners, wrapped.
    const runs = new Map<string, number>();
    const counting: RunnerSource = {
      shared: async (path, opts) => {
        const runner = await pool.shared(path, opts);
        const key = path.includes('front') ? 'front' : 'back';
        return Object.assign(Object.create(runner) as typeof runner, {
          run: (feeds: Parameters<typeof runner.run>[0], o?: Parameters<typeof runner.run>[1]) => {
            runs.set(key, (runs.get(key) ?? 0) + 1);
            return runner.run(feeds, o);
          },
        });
      },
      custom: (model, opts) => pool.custom(model, opts),
      close: async () => undefined,
    };
    const counted = await FaceKernel.load({ providers: ['cpu'], intraOpNumThreads: 1 }, counting);
    try {
      // Gravel and Hubble's deep field up close: the back model's busiest no-face textures.
      for (const background of ['gravel.png', 'hubble_deep_field.jpg']) {
        const frame = await composeFrame(background, background, { width: 1920, height: 1080 }, [], { seed: 5, degrade: 'noise', quality: 80 });
        runs.clear();
        await counted.infer(frame.jpeg, { minConfidence: 0 });
        // One whole-image run each, 15 tiles, and the front model's checks: at most MAX_TILE_CHECKS.
        assert.equal(runs.get('back'), 1 + 15, `${background}: back-model runs`);
        assert.ok((runs.get('front') ?? 0) <= 1 + MAX_TILE_CHECKS, `${background}: ${runs.get('front')} front-model runs`);
      }
    } finally {
      await counted.close();
    }
  });

  it("a tiled frame takes turns: another tenant's small photo is answered between its tiles, not after them", async () => {
    const face = await faceInSurroundings('astronaut', 40);
    const frame = await composeFrame('astronaut 40 px', 'gravel.png', { width: 3840, height: 2160 }, [face], { seed: 7, degrade: 'none', quality: 80 });
    const small = await sharp(photo('camera')).resize(640, 480, { fit: 'cover', position: 'top' }).jpeg({ quality: 85 }).toBuffer();
    await on.infer(small);
    const done: string[] = [];
    const big = on.infer(frame.jpeg, { owner: 'tenant-a' }).then((r) => (done.push('frame'), r));
    // Sent once the frame holds the slot, as a second tenant's request would arrive.
    await new Promise((r) => setTimeout(r, 40));
    assert.equal(on.queueStats.running, 1);
    const quick = on.infer(small, { owner: 'tenant-b' }).then((r) => (done.push('small'), r));
    const [frameResult, smallResult] = await Promise.all([big, quick]);
    assert.deepEqual(done, ['small', 'frame'], 'the small photo did not wait for all 45 tiles');
    assert.equal(smallResult.predictions.length, 1, 'the cameraman');
    assert.ok(frameResult.predictions.some((p) => iou(p, frame.faces[0]!) > 0.5), `the 40 px face in 4K: ${JSON.stringify(frameResult.predictions)}`);
  });

  it('leaves 640x480 and 1024x768 frames as they were (no tile)', async () => {
    for (const name of ['astronaut', 'camera', 'chelsea', 'coffee'] as Photo[]) {
      for (const [w, h] of [[640, 480], [1024, 768]] as const) {
        const jpeg = await sharp(photo(name)).resize(w, h, { fit: 'cover', position: 'top' }).jpeg({ quality: 85 }).toBuffer();
        assert.deepEqual((await on.infer(jpeg, { minConfidence: 0.3 })).predictions, (await off.infer(jpeg, { minConfidence: 0.3 })).predictions, `${name} ${w}x${h}`);
      }
    }
  });
});
