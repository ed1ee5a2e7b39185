import { planarInput } from '../planar.js';
import { decodeImage, type DecodeLimits, type ImageInfo } from '../image.js';
import { CustomModelKernel, type CustomKernelParts } from '../custom/model-kernel.js';
import type { TensorData } from '../runners/runner.js';
import type { ModelConfig } from '../store/model-config.js';

export interface ClassifyResult {
  predictions: Array<{ label: string; confidence: number }>;
  duration_ms: number;
  provider: string;
}

/** Image -> `[1, 3, H, W]` float32, resized to the model's input and normalized as configured. */
export async function toInputTensor(image: Buffer, config: ModelConfig, limits: Partial<DecodeLimits>, inspected?: ImageInfo): Promise<{ data: Float32Array; dims: number[] }> {
  const { width: w, height: h } = config.input;
  // Decoded straight to the model's size (shrink-on-load; the full-size pixels are never made).
  const pixels = (await decodeImage(image, limits, inspected, { width: w, height: h })).data;
  const data = planarInput(pixels, w, h, config);
  return { data, dims: [1, 3, h, w] };
}

/** Softmax unless the output already is a probability distribution. */
export function toProbabilities(scores: Float32Array): Float32Array {
  let sum = 0;
  let inRange = true;
  for (const v of scores) {
    sum += v;
    if (v < 0 || v > 1) inRange = false;
  }
  if (inRange && Math.abs(sum - 1) < 1e-3) return scores;
  const max = Math.max(...scores);
  const exp = scores.map((v) => Math.exp(v - max));
  const total = exp.reduce((a, b) => a + b, 0);
  return exp.map((v) => v / total);
}

export type { CustomKernelParts } from '../custom/model-kernel.js';

/**
 * A custom classification model: the image resized to the declared input (no letterbox: classifiers are
 * trained on whole, stretched crops), scores turned into the top_k labels.
 */
export class ClassifyKernel extends CustomModelKernel<undefined, ClassifyResult> {
  readonly task = 'classify';

  /** A kernel with its first session loaded (so a model that cannot load fails here). */
  static create(parts: CustomKernelParts): Promise<ClassifyKernel> {
    return new ClassifyKernel(parts).start();
  }

  protected async prepare(image: Buffer, inspected: ImageInfo) {
    return { input: await toInputTensor(image, this.config, this.parts.limits, inspected), prepared: undefined };
  }

  protected interpret(output: TensorData): ClassifyResult['predictions'] {
    return topK(output.data, this.config);
  }

  protected checkOutput(output: TensorData): void {
    const classes = output.data.length;
    if (classes !== this.config.labels.length) {
      throw new Error(`the model outputs ${classes} scores for ${this.config.labels.length} labels`);
    }
  }
}

function topK(scores: Float32Array, config: ModelConfig): ClassifyResult['predictions'] {
  const probs = toProbabilities(scores.subarray(0, config.labels.length));
  return [...probs]
    .map((p, i) => ({ label: config.labels[i], confidence: Math.round(p * 10000) / 10000 }))
    .sort((a, b) => b.confidence - a.confidence)
    .slice(0, config.top_k ?? 5);
}
