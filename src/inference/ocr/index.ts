export { OcrKernel } from './kernel.js';
export type { OcrLoadOptions, OcrPrediction, OcrResult, OcrTimings, RecognizeOptions, BoxPoints } from './kernel.js';
export { ocrModelPaths, type OcrModelPaths } from './models.js';
