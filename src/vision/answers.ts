/**
 * Kernel results in DeepStack's shapes (DESIGN.md "DeepStack-compatible API"): `success`, integer pixel
 * coordinates, `duration` (milliseconds the call took in the gateway, image decoding and queueing included).
 */

export interface Box {
  x_min: number;
  y_min: number;
  x_max: number;
  y_max: number;
}

export interface DeepStackPrediction extends Box {
  confidence: number;
  label?: string;
}

const px = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? Math.round(v) : 0);
const conf = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? Math.round(v * 10000) / 10000 : 0);

export const durationSince = (started: number) => Math.round((performance.now() - started) * 10) / 10;

/** One box prediction: confidence, label (when there is one), integer corners. */
export function boxPrediction(p: Record<string, unknown>, label?: string): DeepStackPrediction {
  return {
    confidence: conf(p.confidence),
    ...(label === undefined ? {} : { label }),
    x_min: px(p.x_min),
    y_min: px(p.y_min),
    x_max: px(p.x_max),
    y_max: px(p.y_max),
  };
}

/** Detections (custom detect models): label and box; below `minConfidence` left out. */
export function detections(predictions: unknown[], minConfidence: number): DeepStackPrediction[] {
  return (predictions as Array<Record<string, unknown>>)
    .filter((p) => conf(p.confidence) >= minConfidence)
    .map((p) => boxPrediction(p, String(p.label)));
}

/** Faces: DeepStack's face shape carries no label (the kernel's landmarks stay out of it). */
export function faces(predictions: unknown[], minConfidence: number): DeepStackPrediction[] {
  return (predictions as Array<Record<string, unknown>>).filter((p) => conf(p.confidence) >= minConfidence).map((p) => boxPrediction(p));
}

/** OCR lines: the text is the label. */
export function textLines(predictions: unknown[]): DeepStackPrediction[] {
  return (predictions as Array<Record<string, unknown>>).map((p) => boxPrediction(p, String(p.text ?? '')));
}

/** A classifier's labels as boxes covering the whole (EXIF-rotated) image, so box readers keep working. */
export function classes(predictions: unknown[], minConfidence: number, size: { width: number; height: number }): DeepStackPrediction[] {
  return (predictions as Array<Record<string, unknown>>)
    .filter((p) => conf(p.confidence) >= minConfidence)
    .map((p) => boxPrediction({ ...p, x_min: 0, y_min: 0, x_max: size.width, y_max: size.height }, String(p.label)));
}
