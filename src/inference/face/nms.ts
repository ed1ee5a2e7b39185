/**
 * BlazeFace's weighted non-maximum suppression (MediaPipe's NonMaxSuppressionCalculator, algorithm
 * WEIGHTED; keijiro's Postprocess2 shader does the same): the best remaining candidate and every other
 * one overlapping it by at least `iouThreshold` form a cluster; the cluster becomes one face whose box and
 * keypoints are the score-weighted mean of its members and whose score is the best member's. Blending the
 * many anchors that fire on one face steadies the box better than keeping only the best one.
 */
import type { FaceCandidate } from './decode.js';

/** MediaPipe's face detection graphs use 0.3. */
export const DEFAULT_IOU_THRESHOLD = 0.3;

export function iou(a: FaceCandidate['box'], b: FaceCandidate['box']): number {
  const w = Math.min(a[2], b[2]) - Math.max(a[0], b[0]);
  const h = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
  if (w <= 0 || h <= 0) return 0;
  const inter = w * h;
  const union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
  return union > 0 ? inter / union : 0;
}

/** `candidates` in any order; the result is best first. Quadratic in the number of candidates (bounded by decode). */
export function weightedNms(candidates: readonly FaceCandidate[], iouThreshold = DEFAULT_IOU_THRESHOLD): FaceCandidate[] {
  let remaining = [...candidates].sort((a, b) => b.score - a.score);
  const faces: FaceCandidate[] = [];
  while (remaining.length > 0) {
    const best = remaining[0]!;
    // The best one always leads its cluster (even a degenerate box, whose IoU with itself is 0).
    const cluster: FaceCandidate[] = [best];
    const rest: FaceCandidate[] = [];
    for (const c of remaining.slice(1)) (iou(best.box, c.box) >= iouThreshold ? cluster : rest).push(c);
    let total = 0;
    const box: FaceCandidate['box'] = [0, 0, 0, 0];
    const keypoints = new Float32Array(best.keypoints.length);
    for (const c of cluster) {
      total += c.score;
      for (let k = 0; k < 4; k++) box[k]! += c.box[k]! * c.score;
      for (let k = 0; k < keypoints.length; k++) keypoints[k]! += c.keypoints[k]! * c.score;
    }
    for (let k = 0; k < 4; k++) box[k]! /= total;
    for (let k = 0; k < keypoints.length; k++) keypoints[k]! /= total;
    faces.push({ score: best.score, box, keypoints });
    remaining = rest;
  }
  return faces;
}
