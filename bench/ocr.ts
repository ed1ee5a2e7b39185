/**
 * OCR end to end: kernelgate's signed HTTP path vs @gutenye/ocr-node on the
 * same images (warm, same text), the gateway's overhead over calling the same
 * pipeline in-process, throughput at 1/2/4 clients, /auth/test p99 while OCR
 * runs, and the gateway's peak RSS.
 *
 * Rounds alternate the order of the three paths (gutenye, in-process, HTTP, then
 * the reverse), each round starts after waiting (10 s at most) for a quiet
 * machine, and the overhead is computed here from paired samples (same image,
 * same round), never by hand. Accuracy per class of image: bench/ocr-accuracy.ts.
 *
 *   npx tsc -p tsconfig.json && node --import tsx bench/ocr.ts [--rounds 5] [--seconds 8]
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import GutenOcr from '@gutenye/ocr-node';
import { OcrKernel } from '../src/inference/ocr/index.js';
import { RunnerPool } from '../src/inference/runners/pool.js';
import { ALICE, startGateway, type TestGateway } from '../test/helpers/gateway.js';
import { renderTextWithLayout, type LineSpec } from '../test/helpers/render-text.js';
import { machine, median, waitQuiet, writeSection } from './lib.js';

const percentile = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] ?? NaN;
};

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '5' }, seconds: { type: 'string', default: '8' } } });
const ROUNDS = Number(values.rounds);
const SECONDS = Number(values.seconds);

const SAMPLES: Array<{ lines: Array<LineSpec | string>; background: 'plain' | 'noisy' }> = [
  { lines: ['Invoice 2026 total 431.50', 'Ship to Alice Example'], background: 'plain' },
  { lines: ['Kernelgate signs every request', 'Rate limits live in Redis', 'Sessions run ONNX models'], background: 'plain' },
  { lines: [{ text: 'Meeting at 10:30 in room 4B', font: 'DejaVu Serif' }, { text: 'Bring the quarterly report', font: 'DejaVu Serif' }], background: 'noisy' },
  { lines: [{ text: 'ORDER 88213 SHIPPED', font: 'DejaVu Sans Mono' }, { text: 'Tracking 1Z999AA10123456784', font: 'DejaVu Sans Mono' }], background: 'noisy' },
];

const now = () => performance.now();
const norm = (s: string) => s.replace(/\s+/g, ' ').trim();

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'kg-bench-ocr-'));
  const images: Array<{ path: string; png: Buffer; expected: string[]; width: number; height: number }> = [];
  for (const [i, s] of SAMPLES.entries()) {
    const r = await renderTextWithLayout(s.lines, { width: 800, height: 256, size: 30, background: s.background, seed: i + 1 });
    const path = join(dir, `img${i}.png`);
    writeFileSync(path, r.png);
    images.push({ path, png: r.png, expected: r.lines.map((l) => l.text), width: r.width, height: r.height });
  }

  const guten = await GutenOcr.create();
  const runners = new RunnerPool();
  const kernel = await OcrKernel.load({ providers: ['cpu'] }, runners);
  const gw: TestGateway = await startGateway({ config: '[ratelimit]\ndefault_limit = 1000000\n[inference]\nproviders = ["cuda", "cpu"]\nmax_queue = 64\n' });
  try {
    const created = await gw.signed({ method: 'POST', target: '/session', as: ALICE, body: JSON.stringify({ name: 'bench', image: 'ocr' }) });
    if (created.status >= 300) throw new Error(`session: ${created.text}`);
    const viaHttp = async (png: Buffer) => {
      const res = await gw.signed({ method: 'POST', target: '/session/bench/infer', as: ALICE, body: png, contentType: 'image/png' });
      if (res.status !== 200) throw new Error(`infer ${res.status}: ${res.text}`);
      return res.json as { predictions: Array<{ text: string }>; provider: string; duration_ms: number };
    };

    // Same text: both engines must read every image as rendered (reported, not assumed).
    const agreement: string[] = [];
    let provider = '';
    for (const img of images) {
      const g = (await guten.detect(img.path)).map((l: { text: string }) => norm(l.text));
      const k = await viaHttp(img.png);
      provider = k.provider;
      const ours = k.predictions.map((p) => norm(p.text));
      agreement.push(`| ${img.expected.join(' / ')} | ${ours.join(' / ')} | ${g.join(' / ')} | ${JSON.stringify(ours) === JSON.stringify(img.expected) ? 'yes' : 'NO'} | ${JSON.stringify(g) === JSON.stringify(img.expected) ? 'yes' : 'NO'} |`);
    }

    // Warm-up, then alternating rounds: per image, gutenye / in-process / HTTP.
    for (const img of images) {
      await guten.detect(img.path);
      await kernel.recognize(img.png);
      await viaHttp(img.png);
    }
    const times = { guten: [] as number[], inproc: [] as number[], http: [] as number[], model: [] as number[] };
    const stages: Record<string, number[]> = {};
    const busy: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      busy.push(Math.round((await waitQuiet(20, 10_000)).busyPct));
      for (const img of images) {
        const runGuten = async () => {
          const t = now();
          await guten.detect(img.path);
          times.guten.push(now() - t);
        };
        const runInproc = async () => {
          const t = now();
          const { timings } = await kernel.recognizeWithTimings(img.png);
          times.inproc.push(now() - t);
          for (const [k, v] of Object.entries(timings)) (stages[k] ??= []).push(v);
        };
        const runHttp = async () => {
          const t = now();
          const r = await viaHttp(img.png);
          times.http.push(now() - t);
          times.model.push(r.duration_ms);
        };
        // Alternate round by round, so that no path always runs first (warmer caches, quieter machine).
        const order = round % 2 === 0 ? [runGuten, runInproc, runHttp] : [runHttp, runInproc, runGuten];
        for (const run of order) await run();
      }
    }
    // Overhead from paired samples (same image, same round): HTTP end to end minus the same pipeline in
    // process, and HTTP end to end minus the pipeline's own time inside the gateway (duration_ms).
    const pairedVsInproc = times.http.map((h, i) => h - times.inproc[i]!);
    const pairedVsInside = times.http.map((h, i) => h - times.model[i]!);
    const relVsInproc = times.http.map((h, i) => (h - times.inproc[i]!) / times.inproc[i]!);
    const relVsInside = times.http.map((h, i) => (h - times.model[i]!) / times.model[i]!);

    // Throughput with 1, 2, 4 concurrent clients, and /auth/test latency beside the OCR load.
    const concurrency: string[] = [];
    for (const clients of [1, 2, 4]) {
      const latencies: number[] = [];
      const deadline = now() + SECONDS * 1000;
      let done = 0;
      const probe: number[] = [];
      const worker = async (w: number) => {
        for (let i = w; now() < deadline; i++) {
          const t = now();
          await viaHttp(images[i % images.length].png);
          latencies.push(now() - t);
          done++;
        }
      };
      const prober = async () => {
        while (now() < deadline) {
          const t = now();
          const r = await gw.signed({ method: 'GET', target: '/auth/test', as: ALICE });
          if (r.status !== 200) throw new Error(`auth/test ${r.status}`);
          probe.push(now() - t);
          await new Promise((r2) => setTimeout(r2, 20));
        }
      };
      const started = now();
      await Promise.all([...Array.from({ length: clients }, (_, w) => worker(w)), prober()]);
      const seconds = (now() - started) / 1000;
      concurrency.push(
        `| ${clients} | ${(done / seconds).toFixed(2)} | ${median(latencies).toFixed(0)} | ${percentile(latencies, 99).toFixed(0)} | ${median(probe).toFixed(1)} | ${percentile(probe, 99).toFixed(1)} | ${probe.length} |`,
      );
    }
    const status = readFileSync(`/proc/${gw.proc.pid}/status`, 'utf8');
    const hwm = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
    const rss = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;

    const mg = median(times.guten);
    const mi = median(times.inproc);
    const mh = median(times.http);
    const section = [
      `Command: \`npx tsc -p tsconfig.json && node --import tsx bench/ocr.ts --rounds ${ROUNDS} --seconds ${SECONDS}\``,
      `Date: ${new Date().toISOString()}`,
      `Machine: ${machine()}. Gateway provider: ${provider}. ${images.length} images of 800x256 with 2-3 lines each, ${ROUNDS} rounds after a warm-up; each round runs every image through @gutenye/ocr-node 1.4.8 (in the bench process), kernelgate's pipeline in-process (OcrKernel, same process as the bench), and kernelgate over signed HTTP (a spawned gateway), one after the other, in the reverse order every other round. Machine busy % (all cores, 1 s sample) before each round, after waiting at most 10 s for under 20 %: ${busy.join(', ')}. These are the easy images (two or three clean lines); per class of image and on large pages see the \`ocr-accuracy\` section.`,
      '',
      '| path | median ms per image | vs @gutenye/ocr-node |',
      '|---|---|---|',
      `| @gutenye/ocr-node \`detect(path)\` | ${mg.toFixed(1)} | 1.00x |`,
      `| kernelgate pipeline in-process | ${mi.toFixed(1)} | ${(mg / mi).toFixed(2)}x faster |`,
      `| kernelgate signed HTTP end to end | ${mh.toFixed(1)} | ${(mg / mh).toFixed(2)}x faster |`,
      '',
      `Gateway overhead, computed from paired samples (same image, same round): HTTP end to end minus the same pipeline in-process: median ${median(pairedVsInproc).toFixed(1)} ms (${(median(relVsInproc) * 100).toFixed(1)} %); HTTP end to end minus the pipeline's time inside the gateway (signing check, body parsing, queueing, transport): median ${median(pairedVsInside).toFixed(1)} ms (${(median(relVsInside) * 100).toFixed(1)} %). The gateway's own \`duration_ms\` (pipeline time inside the gateway) has median ${median(times.model).toFixed(1)} ms.`,
      '',
      'Same text (expected / kernelgate / @gutenye/ocr-node / kernelgate exact / gutenye exact):',
      '',
      '| expected | kernelgate | @gutenye/ocr-node | kg exact | gutenye exact |',
      '|---|---|---|---|---|',
      ...agreement,
      '',
      `Concurrency (${SECONDS} s per row, signed HTTP, images cycled), with one extra client sending signed GET /auth/test every 20 ms:`,
      '',
      '| clients | images/s | median ms | p99 ms | /auth/test median ms | /auth/test p99 ms | /auth/test samples |',
      '|---|---|---|---|---|---|---|',
      ...concurrency,
      '',
      'Where the in-process time goes (median ms per image over all images; "run" = the ONNX model alone, in its worker thread):',
      '',
      `| ${Object.keys(stages).join(' | ')} |`,
      `|${Object.keys(stages).map(() => '---').join('|')}|`,
      `| ${Object.values(stages).map((v) => median(v).toFixed(1)).join(' | ')} |`,
      '',
      `Gateway peak RSS (VmHWM) after the run: ${hwm.toFixed(0)} MiB (current RSS ${rss.toFixed(0)} MiB).`,
      '',
      `<!-- data ${JSON.stringify({ script: 'ocr', date: new Date().toISOString(), gutenyeMs: Number(mg.toFixed(1)), inprocMs: Number(mi.toFixed(1)), httpMs: Number(mh.toFixed(1)), overheadMs: Number(median(pairedVsInside).toFixed(1)), overheadPct: Number((median(relVsInside) * 100).toFixed(1)), gatewayDurationMs: Number(median(times.model).toFixed(1)), peakRssMiB: Math.round(hwm) })} -->`,
      '',
      `Raw per-image ms: gutenye ${JSON.stringify(times.guten.map((t) => Math.round(t)))}; in-process ${JSON.stringify(times.inproc.map((t) => Math.round(t)))}; HTTP ${JSON.stringify(times.http.map((t) => Math.round(t)))}`,
    ].join('\n');
    console.log(section);
    writeSection('ocr', `## OCR: kernelgate vs @gutenye/ocr-node\n\n${section}`);
  } finally {
    await gw.stop();
    await runners.close();
    process.exit(0);
  }
}

await main();
