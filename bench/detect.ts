/**
 * Detection post-processing next to the model it serves: a YOLO-layout model of realistic size (640x640
 * input, 80 classes, 8400 anchors from strides 8/16/32, ~1 M random weights, ~1.9 G multiply-adds, built
 * here with the test ONNX encoder) run by ONNX Runtime in-process with the gateway's session options, and,
 * in the same run, on the same outputs: the gateway's letterbox (decode a 1280x720 JPEG, EXIF-rotate,
 * scale, pad) and its decode + class-wise NMS (src/inference/detect/). Medians per image.
 *
 *   node --import tsx bench/detect.ts [--runs 20] [--no-write]
 */
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { inspectImage } from '../src/inference/image.js';
import { planarInput } from '../src/inference/planar.js';
import { decodeDetections } from '../src/inference/detect/decode.js';
import { letterbox } from '../src/inference/detect/letterbox.js';
import { createSession } from '../src/inference/providers.js';
import { floats, model, DT, type NodeSpec, type TensorSpec } from '../test/helpers/onnx.js';
import { fmt, machine, median, table, writeSection } from './lib.js';

const argv = process.argv.slice(2);
const { values } = parseArgs({ args: argv, options: { runs: { type: 'string' }, 'no-write': { type: 'boolean' } }, strict: true });
const RUNS = Number(values.runs ?? 20);
const command = `node --import tsx bench/detect.ts${argv.length ? ` ${argv.join(' ')}` : ''}`;
const CLASSES = 80;
const SIZE = 640;
/** Class logits are shifted by this before the sigmoid, so that few of the 8400 x 80 scores are high. */
const SHIFT = -2;

/** Deterministic normal-ish numbers (sum of uniforms), scaled as He initialisation would. */
function weights(count: number, fanIn: number, seed: number): number[] {
  let s = seed >>> 0;
  const next = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const scale = Math.sqrt(2 / fanIn);
  return Array.from({ length: count }, () => (next() + next() + next() - 1.5) * 2 * scale);
}

/** A backbone of stride-2 3x3 convolutions and three 1x1 heads, concatenated to [1, 84, 8400]. */
function yoloSizedModel(): { onnx: Buffer; params: number; macs: number } {
  const nodes: NodeSpec[] = [];
  const inits: TensorSpec[] = [];
  let params = 0;
  let macs = 0;
  let seed = 1;
  const conv = (input: string, output: string, cin: number, cout: number, k: number, stride: number, outHW: number, relu = true) => {
    const w = weights(cout * cin * k * k, cin * k * k, seed++);
    inits.push(floats(`${output}_w`, [cout, cin, k, k], w), floats(`${output}_b`, [cout], new Array(cout).fill(0)));
    params += w.length + cout;
    macs += outHW * outHW * cout * cin * k * k;
    const pad = Math.floor(k / 2);
    nodes.push({
      op: 'Conv',
      inputs: [input, `${output}_w`, `${output}_b`],
      outputs: [relu ? `${output}_pre` : output],
      attrs: [{ name: 'strides', ints: [stride, stride] }, { name: 'pads', ints: [pad, pad, pad, pad] }, { name: 'kernel_shape', ints: [k, k] }],
    });
    if (relu) nodes.push({ op: 'Relu', inputs: [`${output}_pre`], outputs: [output] });
  };
  conv('x', 'c1', 3, 32, 3, 2, 320);
  conv('c1', 'c2', 32, 64, 3, 2, 160);
  conv('c2', 'p3', 64, 128, 3, 2, 80);
  conv('p3', 'p4', 128, 256, 3, 2, 40);
  conv('p4', 'p5', 256, 256, 3, 2, 20);
  const heads = [['p3', 128, 80], ['p4', 256, 40], ['p5', 256, 20]] as const;
  heads.forEach(([from, cin, hw], i) => {
    conv(from, `h${i}`, cin, 4 + CLASSES, 1, 1, hw, false);
    inits.push({ name: `h${i}_shape`, type: DT.INT64, dims: [3], raw: Buffer.from(new BigInt64Array([1n, BigInt(4 + CLASSES), BigInt(hw * hw)]).buffer) });
    nodes.push({ op: 'Reshape', inputs: [`h${i}`, `h${i}_shape`], outputs: [`f${i}`] });
  });
  nodes.push({ op: 'Concat', inputs: ['f0', 'f1', 'f2'], outputs: ['logits'], attrs: [{ name: 'axis', i: 2 }] });
  // Boxes: sigmoid x 640 (centre) or x 160 (size); classes: sigmoid of a shifted logit, so that, as with a
  // trained model on an ordinary photo, few of the 8400 x 80 scores are high.
  inits.push(floats('shift', [1, 4 + CLASSES, 1], [0, 0, 0, 0, ...new Array(CLASSES).fill(SHIFT)]));
  inits.push(floats('scale', [1, 4 + CLASSES, 1], [SIZE, SIZE, SIZE / 4, SIZE / 4, ...new Array(CLASSES).fill(1)]));
  nodes.push({ op: 'Add', inputs: ['logits', 'shift'], outputs: ['shifted'] }, { op: 'Sigmoid', inputs: ['shifted'], outputs: ['squashed'] }, { op: 'Mul', inputs: ['squashed', 'scale'], outputs: ['output0'] });
  const onnx = model({ nodes, inputs: [{ name: 'x', type: DT.FLOAT, dims: [1, 3, SIZE, SIZE] }], outputs: [{ name: 'output0', type: DT.FLOAT, dims: [1, 4 + CLASSES, 8400] }], initializers: inits });
  return { onnx, params, macs };
}

const built = yoloSizedModel();
const { session, provider } = await createSession(new Uint8Array(built.onnx), { providers: ['cpu'] });

// A 1280x720 "photo": smooth gradients plus noise, as JPEG (what cameras send).
const photo = await sharp({ create: { width: 1280, height: 720, channels: 3, noise: { type: 'gaussian', mean: 120, sigma: 40 } } } as never)
  .blur(3)
  .jpeg({ quality: 85 })
  .toBuffer();

/** Anchors whose best class score reaches `min`: the boxes that enter NMS. */
function entering(scores: Float32Array, n: number, min: number): number {
  let count = 0;
  for (let i = 0; i < n; i++) {
    let best = -Infinity;
    for (let c = 0; c < CLASSES; c++) best = Math.max(best, scores[(4 + c) * n + i]!);
    if (best >= min) count++;
  }
  return count;
}

/** NMS's own worst case: 8400 disjoint boxes of one class, all above the threshold (it stops at 300 kept). */
const disjoint = new Float32Array((4 + CLASSES) * 8400);
for (let i = 0; i < 8400; i++) {
  disjoint[i] = (i % 100) * 6.4 + 3;
  disjoint[8400 + i] = Math.floor(i / 100) * 7.6 + 3;
  disjoint[2 * 8400 + i] = 4;
  disjoint[3 * 8400 + i] = 4;
  disjoint[4 * 8400 + i] = 0.5 + (i % 997) / 2000;
}

const times = { letterbox: [] as number[], run: [] as number[], decode40: [] as number[], decode25: [] as number[], decodeAll: [] as number[], disjoint: [] as number[] };
const counts = { kept40: 0, kept25: 0, keptAll: 0, keptDisjoint: 0, in40: 0, in25: 0 };
for (let i = -2; i < RUNS; i++) {
  let t = performance.now();
  const { pixels } = await letterbox(photo, await inspectImage(photo), {}, SIZE, SIZE);
  const data = planarInput(pixels, SIZE, SIZE, { input: { width: SIZE, height: SIZE, color: 'RGB' }, normalize: { mean: [0, 0, 0], std: [1, 1, 1] } });
  const letterboxMs = performance.now() - t;

  t = performance.now();
  const out = (await session.run({ x: new ort.Tensor('float32', data, [1, 3, SIZE, SIZE]) })).output0!;
  const runMs = performance.now() - t;
  const scores = out.data as Float32Array;
  const dims = out.dims as number[];

  const timed = (min: number) => {
    const s = performance.now();
    const found = decodeDetections(scores, dims, 'yolov8', CLASSES, min, 0.45);
    return [performance.now() - s, found.length] as const;
  };
  const [d40, k40] = timed(0.4);
  const [d25, k25] = timed(0.25);
  const [dAll, kAll] = timed(0);
  const s = performance.now();
  const kDisjoint = decodeDetections(disjoint, [1, 4 + CLASSES, 8400], 'yolov8', CLASSES, 0.4, 0.45).length;
  const dDisjoint = performance.now() - s;
  if (i < 0) continue; // warm-up
  times.disjoint.push(dDisjoint);
  Object.assign(counts, { keptDisjoint: kDisjoint, in40: entering(scores, dims[2]!, 0.4), in25: entering(scores, dims[2]!, 0.25) });
  times.letterbox.push(letterboxMs);
  times.run.push(runMs);
  times.decode40.push(d40);
  times.decode25.push(d25);
  times.decodeAll.push(dAll);
  Object.assign(counts, { kept40: k40, kept25: k25, keptAll: kAll });
}
await session.release();

const run = median(times.run);
const rows = [
  ['model run (ONNX Runtime, in-process)', fmt(run, 1), '1.00', '–', '–'],
  ['letterbox (decode JPEG 1280x720, resize, pad, to tensor)', fmt(median(times.letterbox), 1), fmt(median(times.letterbox) / run, 3), '–', '–'],
  ['decode + class-wise NMS, min_confidence 0.40', fmt(median(times.decode40), 2), fmt(median(times.decode40) / run, 4), String(counts.in40), String(counts.kept40)],
  ['decode + class-wise NMS, min_confidence 0.25', fmt(median(times.decode25), 2), fmt(median(times.decode25) / run, 4), String(counts.in25), String(counts.kept25)],
  ['decode + class-wise NMS, min_confidence 0 (every anchor enters NMS)', fmt(median(times.decodeAll), 2), fmt(median(times.decodeAll) / run, 4), '8400', String(counts.keptAll)],
  ['decode + NMS of 8400 disjoint boxes of one class (NMS worst case, stops at 300 kept)', fmt(median(times.disjoint), 2), fmt(median(times.disjoint) / run, 4), '8400', String(counts.keptDisjoint)],
];
const body = `## Detection: decode + NMS next to the model run (issue 11)

\`${command}\` — ${new Date().toISOString().slice(0, 10)}, ${RUNS} images after 2 warm-up runs, medians; provider ${provider}.
Model: YOLO layout \`[1, 84, 8400]\` (yolov8 format, 80 classes, strides 8/16/32 on a 640x640 input), ${(built.params / 1e6).toFixed(2)} M random weights,
${(built.macs / 1e9).toFixed(2)} G multiply-adds (YOLOv8n: 3.2 M weights, ~4.4 G), ${(built.onnx.length / 1e6).toFixed(1)} MB ONNX. Every step runs in one process on the same
outputs; the ratio column is each step's time over the model run's.

${table(['step', 'ms per image', 'ratio to model run', 'boxes entering NMS', 'boxes kept'], rows)}

Machine: ${machine()}. The machine was shared with other jobs (other engineers' builds and tests): absolute
times are noisy, the ratios within one run less so.
`;
console.log(body);
if (!values['no-write']) writeSection('detect', body);
