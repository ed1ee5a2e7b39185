export { FaceKernel, DEFAULT_MIN_CONFIDENCE, minConfidenceOf } from './kernel.js';
export type { FaceLoadOptions, FacePrediction, FaceResult } from './kernel.js';
