/**
 * Face tiling for large camera frames (README "Face kernel"): recall, false positives and time per frame with
 * tiling off and on, on test/helpers/face-frames.ts' frames (real faces in real no-face photos, 1920x1080 and
 * 1280x720 JPEGs, some blurred or noisy). A face counts as found when a prediction at DeepStack's 0.55 overlaps
 * it (IoU ≥ 0.3); a false positive is a prediction ≥ 0.55 on a frame with no face, on a frame of LFW non-faces,
 * or one that matches no face on a frame with faces.
 *
 *   bash .ci/photos && node --import tsx bench/face-tiles.ts [--sides 768] [--no-write]
 */
import { parseArgs } from 'node:util';
import { FaceKernel, TILE_SIDE } from '../src/inference/face/kernel.js';
import { RunnerPool } from '../src/inference/runners/pool.js';
import { evaluationFrames, type Frame } from '../test/helpers/face-frames.js';
import { iou } from '../test/helpers/photos.js';
import { fmt, machine, median, writeSection } from './lib.js';

const { values } = parseArgs({ options: { sides: { type: 'string', default: String(TILE_SIDE) }, 'no-write': { type: 'boolean', default: false } } });
const sides = values.sides!.split(',').map(Number);

const frames = await evaluationFrames();
const faceCount = frames.withFaces.reduce((n, f) => n + f.faces.length, 0);
const pool = new RunnerPool();

interface Score {
  label: string;
  found: number;
  fpFaces: number;
  fpEmpty: number;
  fpNon: number;
  ms: number;
  msLarge: number;
}

async function score(label: string, kernel: FaceKernel): Promise<Score> {
  const times: number[] = [], timesLarge: number[] = [];
  const run = async (f: Frame) => {
    const t0 = performance.now();
    const r = await kernel.infer(f.jpeg, { minConfidence: 0.55 });
    (f.width === 1920 ? timesLarge : times).push(performance.now() - t0);
    return r.predictions;
  };
  await run(frames.noFace[0]!); // warm-up
  times.length = 0;
  timesLarge.length = 0;
  let found = 0, fpFaces = 0, fpEmpty = 0, fpNon = 0;
  for (const f of frames.withFaces) {
    const preds = await run(f);
    found += f.faces.filter((b) => preds.some((p) => iou(p, b) >= 0.3)).length;
    fpFaces += preds.filter((p) => !f.faces.some((b) => iou(p, b) >= 0.3)).length;
  }
  for (const f of frames.noFace) fpEmpty += (await run(f)).length;
  for (const f of frames.nonFaces) fpNon += (await run(f)).length;
  return { label, found, fpFaces, fpEmpty, fpNon, ms: median(times), msLarge: median(timesLarge) };
}

const results: Score[] = [];
for (const [label, opts] of [['tiles off', { tiles: false }], ...sides.map((s) => [`tiles on, ${s} px`, { tiles: true, tileSide: s }] as const)] as const) {
  const kernel = await FaceKernel.load({ providers: ['cpu'], ...opts }, pool);
  results.push(await score(label, kernel));
  await kernel.close();
  const r = results.at(-1)!;
  console.log(`${r.label}: recall ${r.found}/${faceCount}, fp faces-frames ${r.fpFaces}, fp empty ${r.fpEmpty}/${frames.noFace.length} frames, fp non-faces ${r.fpNon}, median ms 1280x720 ${fmt(r.ms, 1)} 1920x1080 ${fmt(r.msLarge, 1)}`);
}
await pool.close();

const table = [
  `Frames: ${frames.withFaces.length} with ${faceCount} faces (astronaut and cameraman 30-100 px in their surroundings, LFW faces 40-80 px), ${frames.noFace.length} with none, ${frames.nonFaces.length} with 5 LFW non-faces each; 1920x1080 and 1280x720 JPEG q75-85, a third blurred, a third noisy. Threshold 0.55.`,
  '',
  '| mode | recall | false positives (face frames / empty frames / non-face frames) | median ms 1280x720 | median ms 1920x1080 |',
  '|---|---|---|---|---|',
  ...results.map((r) => `| ${r.label} | ${r.found}/${faceCount} (${fmt((100 * r.found) / faceCount, 0)} %) | ${r.fpFaces} / ${r.fpEmpty} / ${r.fpNon} | ${fmt(r.ms, 1)} | ${fmt(r.msLarge, 1)} |`),
];
console.log(table.join('\n'));
if (!values['no-write']) writeSection('face-tiles', `## Face tiling (bench/face-tiles.ts)\n\n${machine()}, ${new Date().toISOString()}\n\n${table.join('\n')}`);
