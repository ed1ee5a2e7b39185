/**
 * The OCR model-only floor: the PP-OCRv4 detection and recognition ONNX
 * sessions (and the angle classifier) run alone, with the session options the
 * gateway uses (src/inference/providers.ts createSession, CPU provider, default
 * intra-op threads), on the input shapes of bench/ocr.ts: detection on one
 * 800×256 image, recognition and classifier on one text-line crop. No image
 * decoding, no pre/post-processing, no worker thread: what the models
 * themselves cost, the floor the in-gateway pipeline is compared with.
 *
 *   node --import tsx bench/ocr-floor.ts [--runs 30] [--line-width 320] [--no-write]
 */
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { ocrModelPaths } from '../src/inference/ocr/models.js';
import { createSession } from '../src/inference/providers.js';
import { fmt, machine, median, table, writeSection } from './lib.js';

const argv = process.argv.slice(2);
const { values } = parseArgs({
  args: argv,
  options: { runs: { type: 'string' }, 'line-width': { type: 'string' }, 'no-write': { type: 'boolean' } },
  strict: true,
});
const RUNS = Number(values.runs ?? 30);
const LINE_W = Number(values['line-width'] ?? 320);
const command = `node --import tsx bench/ocr-floor.ts${argv.length ? ` ${argv.join(' ')}` : ''}`;

/** A deterministic pseudo-random image tensor in [-1, 1] (the models' normalized range). */
function tensor(dims: number[]): ort.Tensor {
  const n = dims.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  let x = 12345;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    data[i] = (x / 2 ** 32) * 2 - 1;
  }
  return new ort.Tensor('float32', data, dims);
}

const paths = ocrModelPaths();
const cases = [
  { name: 'detection', model: paths.detection, dims: [1, 3, 256, 800] },
  { name: 'recognition (one line)', model: paths.recognition, dims: [1, 3, 48, LINE_W] },
  { name: 'classifier (one line)', model: paths.classifier, dims: [1, 3, 48, 192] },
];
const rows: Array<Array<string | number>> = [];
const data: Array<{ name: string; ms: number }> = [];
for (const c of cases) {
  const { session, provider } = await createSession(c.model, { providers: ['cpu'] });
  const feeds = { [session.inputNames[0]!]: tensor(c.dims) };
  for (let i = 0; i < 3; i++) await session.run(feeds); // warm-up
  const ms: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = process.hrtime.bigint();
    await session.run(feeds);
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  await session.release();
  const sorted = [...ms].sort((a, b) => a - b);
  rows.push([c.name, `\`${c.model.split('/').pop()}\``, c.dims.join('×'), provider, `**${fmt(median(ms), 1)}**`, fmt(sorted[0], 1), fmt(sorted[sorted.length - 1], 1)]);
  data.push({ name: c.name, ms: Number(median(ms).toFixed(1)) });
  process.stderr.write(`${c.name.padEnd(24)} ${fmt(median(ms), 1)} ms (min ${fmt(sorted[0], 1)}, max ${fmt(sorted[sorted.length - 1], 1)})\n`);
}
const det = data[0].ms;
const rec = data[1].ms;
const body = [
  '## OCR model-only floor',
  '',
  `- command: \`${command}\``,
  `- date: ${new Date().toISOString()}`,
  `- machine: ${machine()}`,
  `- method: each ONNX session created with the gateway's createSession (CPU provider, default intra-op threads), 3 warm-up runs, then ${RUNS} timed \`session.run\` calls on a fixed pseudo-random input (process.hrtime.bigint); median, min, max. In the bench process's main thread, one model at a time.`,
  '',
  table(['model', 'file', 'input', 'provider', 'median ms', 'min ms', 'max ms'], rows),
  '',
  `Floor for an 800×256 image with n text lines ≈ ${fmt(det, 1)} + n × ${fmt(rec, 1)} ms (detection + recognition; the classifier adds ${fmt(data[2].ms, 1)} ms per line where it runs): ${fmt(det + 2.5 * rec, 1)} ms for 2.5 lines, the average of bench/ocr.ts's images.`,
  '',
  `<!-- data ${JSON.stringify({ script: 'ocr-floor', date: new Date().toISOString(), command, cases: data })} -->`,
].join('\n');
console.log(`\n${body}\n`);
if (!values['no-write']) {
  writeSection('ocr-floor', body);
  process.stderr.write('updated bench/RESULTS.md section "ocr-floor"\n');
}
