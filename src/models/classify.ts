import sharp from 'sharp';
import { decodeImage, type DecodeLimits } from '../inference/image.js';
import type { ModelSession } from '../inference/model-session.js';
import type { WorkQueue } from '../inference/queue.js';
import type { ModelConfig } from './model-config.js';

export interface ClassifyResult {
  predictions: Array<{ label: string; confidence: number }>;
  duration_ms: number;
  provider: string;
}

/** Image -> `[1, 3, H, W]` float32, resized to the model's input and normalized as configured. */
export async function toInputTensor(image: Buffer, config: ModelConfig, limits: Partial<DecodeLimits>): Promise<{ data: Float32Array; dims: number[] }> {
  const rgb = await decodeImage(image, limits);
  const { width: w, height: h, color } = config.input;
  const pixels = await sharp(rgb.data, { raw: { width: rgb.width, height: rgb.height, channels: 3 } })
    .resize(w, h, { fit: 'fill' })
    .raw()
    .toBuffer();
  const plane = w * h;
  const data = new Float32Array(3 * plane);
  const { mean, std } = config.normalize;
  for (let c = 0; c < 3; c++) {
    const source = color === 'BGR' ? 2 - c : c;
    const m = mean[c];
    const s = std[c];
    for (let i = 0; i < plane; i++) data[c * plane + i] = (pixels[i * 3 + source] / 255 - m) / s;
  }
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

/** A custom classification model: one ORT session (in its worker), one bounded queue. */
export class ClassifyKernel {
  constructor(
    readonly config: ModelConfig,
    private readonly session: ModelSession,
    private readonly queue: WorkQueue,
    private readonly limits: Partial<DecodeLimits>,
  ) {}

  get provider(): string {
    return this.session.provider;
  }

  get queueStats() {
    return this.queue.stats;
  }

  async classify(image: Buffer, signal?: AbortSignal): Promise<ClassifyResult> {
    const started = performance.now();
    const input = await toInputTensor(image, this.config, this.limits);
    const output = await this.queue.run(() => this.session.run(input), { signal });
    return { predictions: topK(output.data, this.config), duration_ms: Math.round((performance.now() - started) * 10) / 10, provider: this.provider };
  }

  /** A run on a blank input: proves the model takes the declared input and has one score per label. */
  async selfTest(): Promise<void> {
    const { width: w, height: h } = this.config.input;
    const output = await this.session.run({ data: new Float32Array(3 * w * h), dims: [1, 3, h, w] });
    const classes = output.data.length;
    if (classes !== this.config.labels.length) {
      throw new Error(`the model outputs ${classes} scores for ${this.config.labels.length} labels`);
    }
  }

  close(): Promise<void> {
    return this.session.close();
  }
}

function topK(scores: Float32Array, config: ModelConfig): ClassifyResult['predictions'] {
  const probs = toProbabilities(scores.subarray(0, config.labels.length));
  return [...probs]
    .map((p, i) => ({ label: config.labels[i], confidence: Math.round(p * 10000) / 10000 }))
    .sort((a, b) => b.confidence - a.confidence)
    .slice(0, config.top_k);
}
