/** Inference: image decoding, execution providers, per-model sessions and queues, and the built-in kernels. */
export { createSession, defaultIntraOpThreads, ProviderLoadError } from './providers.js';
export type { SessionOptions, LoadedSession, ProviderFailure, InferenceLogger } from './providers.js';
export { getSharedSession, startModelSession, startIsolatedSession, ModelFailure } from './model-session.js';
export { externalDataReferences, OnnxInspectError } from './onnx-inspect.js';
export type { ModelSession, TensorData, ArgmaxSteps } from './model-session.js';
export { decodeImage, inspectImage, sniffFormat, DEFAULT_DECODE_LIMITS } from './image.js';
export type { DecodeLimits, RgbImage, ImageFormat, ImageInfo, Sniffed } from './image.js';
export { WorkQueue } from './queue.js';
export type { WorkQueueOptions, QueueStats, Job, RunOptions } from './queue.js';
export * from './ocr/index.js';
