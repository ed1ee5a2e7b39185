/** Known YOLO outputs for a 64x64 input and where their boxes land on a 200x100 image (test/detect.test.ts, test/vision.test.ts). */
/** Boxes in a 64x64 input: cx, cy, w, h, then the scores of "cat" and "dog". */
export const ROWS = [
  [32, 32, 32, 16, 0.9, 0.1], // a0: cat, kept
  [33, 32, 32, 16, 0.8, 0.1], // a1: cat, IoU 0.94 with a0: suppressed
  [33, 32, 32, 16, 0.1, 0.7], // a2: dog on the same spot: another class, kept
  [10, 50, 8, 8, 0.35, 0.0], // a3: cat under the default 0.40
  [45, 32, 32, 16, 0.6, 0.0], // a4: cat, IoU 19/45 = 0.42 with a0: kept at 0.45, dropped at 0.40
];
/** The same anchors in the yolov5 layout: objectness 1, except a3 (0.5 x 0.7 = 0.35). */
export const ROWS_V5 = ROWS.map((r, i) => (i === 3 ? [...r.slice(0, 4), 0.5, 0.7, 0] : [...r.slice(0, 4), 1, ...r.slice(4)]));
export const LABELS = ['cat', 'dog'];

/** a0, a2, a4, a3 on the 200x100 original (scale 0.32, 16 px of grey above and below). */
export const A0 = { label: 'cat', confidence: 0.9, x_min: 50, y_min: 25, x_max: 150, y_max: 75 };
export const A2 = { label: 'dog', confidence: 0.7, x_min: 53, y_min: 25, x_max: 153, y_max: 75 };
export const A4 = { label: 'cat', confidence: 0.6, x_min: 91, y_min: 25, x_max: 191, y_max: 75 };
export const A3 = { label: 'cat', confidence: 0.35, x_min: 19, y_min: 94, x_max: 44, y_max: 100 };

