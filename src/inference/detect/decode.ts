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
 * candidate with the kept boxes of its class only, so the cost is O(N + K log K + K * MAX_DETECTIONS).
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
  const candidates: Detection[] = [];
  const push = (cx: number, cy: number, w: number, h: number, confidence: number, classIndex: number) => {
    // NaN fails every comparison: such boxes never pass.
    if (!(confidence >= minConfidence) || !(w >= 0) || !(h >= 0) || !Number.isFinite(cx + cy + w + h)) return;
    candidates.push({ x1: cx - w / 2, y1: cy - h / 2, x2: cx + w / 2, y2: cy + h / 2, confidence, classIndex });
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
  return classwiseNms(candidates, iouThreshold);
}

export function iou(a: Detection, b: Detection): number {
  const iw = Math.min(a.x2, b.x2) - Math.max(a.x1, b.x1);
  const ih = Math.min(a.y2, b.y2) - Math.max(a.y1, b.y1);
  if (iw <= 0 || ih <= 0) return 0;
  const inter = iw * ih;
  const union = (a.x2 - a.x1) * (a.y2 - a.y1) + (b.x2 - b.x1) * (b.y2 - b.y1) - inter;
  return union > 0 ? inter / union : 0;
}

/**
 * Greedy NMS per class: best first, a box is dropped when it overlaps an already kept box of its own class
 * by more than `iouThreshold` (torchvision's rule). Boxes of different classes never suppress each other.
 */
export function classwiseNms(candidates: Detection[], iouThreshold: number): Detection[] {
  // Stable: equal confidences keep the model's anchor order.
  const sorted = candidates
    .map((d, i) => [d, i] as const)
    .sort((a, b) => b[0].confidence - a[0].confidence || a[1] - b[1])
    .slice(0, MAX_CANDIDATES)
    .map(([d]) => d);
  const keptByClass = new Map<number, Detection[]>();
  const kept: Detection[] = [];
  for (const d of sorted) {
    let same = keptByClass.get(d.classIndex);
    if (same === undefined) keptByClass.set(d.classIndex, (same = []));
    if (same.some((k) => iou(k, d) > iouThreshold)) continue;
    same.push(d);
    kept.push(d);
    if (kept.length >= MAX_DETECTIONS) break;
  }
  return kept;
}
