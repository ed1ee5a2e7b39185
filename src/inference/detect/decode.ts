/**
 * YOLO output tensors → boxes: the two layouts DESIGN.md "Kernels" names, a confidence threshold, and
 * class-wise non-maximum suppression. Pure functions over typed arrays (no model needed to test them).
 *
 *  - "yolov8" `[1, 4+C, N]`: cx, cy, w, h, then C class scores, each row holding one value for all N anchors
 *    (Ultralytics v8/v11 export); confidence = the best class score.
 *  - "yolov5" `[1, N, 5+C]`: per anchor cx, cy, w, h, objectness, C class scores; confidence = objectness x
 *    the best class score.
 *
 * Each anchor keeps its best class only (Ultralytics' default, multi_label off). Work is bounded: at most
 * MAX_CANDIDATES boxes enter NMS (the best ones) and it stops at MAX_DETECTIONS kept, comparing each
 * candidate with the kept boxes of its class only, so the cost is O(N·C + K log K + K · MAX_DETECTIONS).
 */
import type { DetectFormat } from '../store/model-config.js';

/** Ultralytics' max_nms and max_det. */
export const MAX_CANDIDATES = 30_000;
export const MAX_DETECTIONS = 300;

export interface Detection {
  /** Corners in the model input's pixels. */
  x1: number;
  y1: number;
  x2: number;
  y2: number;
  confidence: number;
  classIndex: number;
}

/** How many anchors the output holds, or a plain Error saying why its shape does not fit `classes` labels. */
export function anchorsOf(dims: readonly number[], format: DetectFormat, classes: number): number {
  const shape = `[${dims.join(', ')}]`;
  const expected = format === 'yolov8' ? `[1, 4+C, N] = [1, ${4 + classes}, N]` : `[1, N, 5+C] = [1, N, ${5 + classes}]`;
  const wrong = () => new Error(`the model's output has shape ${shape}, not ${expected} for ${classes} labels (format ${format})`);
  if (dims.length !== 3 || dims[0] !== 1) throw wrong();
  if (format === 'yolov8' ? dims[1] !== 4 + classes : dims[2] !== 5 + classes) throw wrong();
  const anchors = format === 'yolov8' ? dims[2]! : dims[1]!;
  if (!(anchors > 0)) throw wrong();
  return anchors;
}

/** Boxes at or above `minConfidence`, best first, after class-wise NMS at `iouThreshold`. */
export function decodeDetections(
  data: Float32Array,
  dims: readonly number[],
  format: DetectFormat,
  classes: number,
  minConfidence: number,
  iouThreshold: number,
): Detection[] {
  const n = anchorsOf(dims, format, classes);
  if (data.length !== n * (format === 'yolov8' ? 4 + classes : 5 + classes)) throw new Error('the output tensor has fewer values than its shape says');
  // Candidates live in flat typed arrays (no object per anchor): 8400 anchors cost a few allocations.
  // Float64: corners and products of float32 values stay exact (cx + w/2 may overflow float32).
  const box = new Float64Array(n * 4);
  const score = new Float64Array(n);
  const cls = new Uint32Array(n);
  let count = 0;
  const push = (cx: number, cy: number, w: number, h: number, confidence: number, classIndex: number) => {
    // NaN fails every comparison: such boxes never pass.
    if (!(confidence >= minConfidence) || !(w >= 0) || !(h >= 0) || !Number.isFinite(cx + cy + w + h)) return;
    box[count * 4] = cx - w / 2;
    box[count * 4 + 1] = cy - h / 2;
    box[count * 4 + 2] = cx + w / 2;
    box[count * 4 + 3] = cy + h / 2;
    score[count] = confidence;
    cls[count] = classIndex;
    count++;
  };
  if (format === 'yolov8') {
    // Class-major, in memory order: each class row is read sequentially (a per-anchor walk would stride
    // across the whole tensor for every anchor).
    const best = new Float32Array(n).fill(-Infinity);
    const bestClass = new Uint32Array(n);
    for (let c = 0; c < classes; c++) {
      const row = (4 + c) * n;
      for (let i = 0; i < n; i++) {
        const score = data[row + i]!;
        if (score > best[i]!) {
          best[i] = score;
          bestClass[i] = c;
        }
      }
    }
    for (let i = 0; i < n; i++) {
      if (best[i]! >= minConfidence) push(data[i]!, data[n + i]!, data[2 * n + i]!, data[3 * n + i]!, best[i]!, bestClass[i]!);
    }
  } else {
    for (let i = 0; i < n; i++) {
      const row = i * (5 + classes);
      const objectness = data[row + 4]!;
      // Cheap rejection first: no class can lift a box whose objectness alone is under the threshold.
      if (!(objectness >= minConfidence)) continue;
      let best = -Infinity;
      let bestClass = 0;
      for (let c = 0; c < classes; c++) {
        const score = data[row + 5 + c]!;
        if (score > best) {
          best = score;
          bestClass = c;
        }
      }
      push(data[row]!, data[row + 1]!, data[row + 2]!, data[row + 3]!, objectness * best, bestClass);
    }
  }
  return nmsFlat(box, score, cls, count, iouThreshold);
}

const iouFlat = (box: Float64Array, a: number, b: number): number => {
  const iw = Math.min(box[a + 2]!, box[b + 2]!) - Math.max(box[a]!, box[b]!);
  const ih = Math.min(box[a + 3]!, box[b + 3]!) - Math.max(box[a + 1]!, box[b + 1]!);
  if (iw <= 0 || ih <= 0) return 0;
  const inter = iw * ih;
  const union = (box[a + 2]! - box[a]!) * (box[a + 3]! - box[a + 1]!) + (box[b + 2]! - box[b]!) * (box[b + 3]! - box[b + 1]!) - inter;
  return union > 0 ? inter / union : 0;
};

/**
 * Greedy NMS per class: best first, a box is dropped when it overlaps an already kept box of its own class
 * by more than `iouThreshold` (torchvision's rule). Boxes of different classes never suppress each other.
 */
function nmsFlat(box: Float64Array, score: Float64Array, cls: Uint32Array, count: number, iouThreshold: number): Detection[] {
  // Best first; equal confidences keep the model's anchor order.
  const order = new Uint32Array(count);
  for (let i = 0; i < count; i++) order[i] = i;
  order.sort((a, b) => score[b]! - score[a]! || a - b);
  const keptByClass = new Map<number, number[]>();
  const kept: Detection[] = [];
  const limit = Math.min(count, MAX_CANDIDATES);
  for (let k = 0; k < limit && kept.length < MAX_DETECTIONS; k++) {
    const i = order[k]!;
    const c = cls[i]!;
    let same = keptByClass.get(c);
    if (same === undefined) keptByClass.set(c, (same = []));
    let suppressed = false;
    for (const j of same) {
      if (iouFlat(box, j * 4, i * 4) > iouThreshold) {
        suppressed = true;
        break;
      }
    }
    if (suppressed) continue;
    same.push(i);
    kept.push({ x1: box[i * 4]!, y1: box[i * 4 + 1]!, x2: box[i * 4 + 2]!, y2: box[i * 4 + 3]!, confidence: score[i]!, classIndex: c });
  }
  return kept;
}
