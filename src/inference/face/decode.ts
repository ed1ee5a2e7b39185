/**
 * BlazeFace's raw outputs → face candidates in the model's input square (coordinates 0..1).
 *
 * Per anchor the model gives one score logit and 16 regressors: box centre offset (x, y) and size (w, h),
 * then six keypoints (x, y), all in input pixels relative to the anchor's centre (MediaPipe's
 * TensorsToDetectionsCalculator with x/y/w/h_scale = the input size, and keijiro's Postprocess1 shader).
 */
export const KEYPOINTS = 6;
/** Regressors per anchor: 4 box values + 2 per keypoint. */
export const REGRESSORS = 4 + 2 * KEYPOINTS;

export interface FaceCandidate {
  score: number;
  /** x_min, y_min, x_max, y_max. */
  box: [number, number, number, number];
  /** x0, y0, ... x5, y5: right eye, left eye, nose tip, mouth centre, right ear tragion, left ear tragion (MediaPipe's order, the subject's right and left). */
  keypoints: Float32Array;
}

/** MediaPipe clips logits to ±100 before the sigmoid (score_clipping_thresh). */
const CLIP = 100;
const sigmoid = (x: number) => 1 / (1 + Math.exp(-Math.max(-CLIP, Math.min(CLIP, x))));

/**
 * Candidates whose score is at least `minScore`, best first, at most `maxCandidates` of them (the input of
 * the quadratic NMS stays bounded whatever threshold a client asks for).
 */
export function decodeCandidates(
  scores: Float32Array,
  regressors: Float32Array,
  anchors: Float32Array,
  inputSize: number,
  minScore: number,
  maxCandidates = 256,
): FaceCandidate[] {
  const count = anchors.length / 2;
  if (scores.length !== count || regressors.length !== count * REGRESSORS) {
    throw new Error(`BlazeFace output sizes ${scores.length} scores / ${regressors.length} regressors do not match ${count} anchors`);
  }
  const picked: Array<{ i: number; score: number }> = [];
  for (let i = 0; i < count; i++) {
    const score = sigmoid(scores[i]!);
    if (score >= minScore && Number.isFinite(score)) picked.push({ i, score });
  }
  picked.sort((a, b) => b.score - a.score);
  const out: FaceCandidate[] = [];
  for (const { i, score } of picked.slice(0, maxCandidates)) {
    const ax = anchors[2 * i]!, ay = anchors[2 * i + 1]!;
    const r = i * REGRESSORS;
    const cx = ax + regressors[r]! / inputSize;
    const cy = ay + regressors[r + 1]! / inputSize;
    const w = regressors[r + 2]! / inputSize;
    const h = regressors[r + 3]! / inputSize;
    if (!(w > 0 && h > 0) || !Number.isFinite(cx + cy + w + h)) continue;
    const keypoints = new Float32Array(2 * KEYPOINTS);
    for (let k = 0; k < KEYPOINTS; k++) {
      keypoints[2 * k] = ax + regressors[r + 4 + 2 * k]! / inputSize;
      keypoints[2 * k + 1] = ay + regressors[r + 5 + 2 * k]! / inputSize;
    }
    out.push({ score, box: [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], keypoints });
  }
  return out;
}
