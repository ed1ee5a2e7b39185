import type { ImageInfo } from '../image.js';
import { planarInput } from '../planar.js';
import { CustomModelKernel, type CustomKernelParts } from '../custom/model-kernel.js';
import type { InferOptions } from '../kernel.js';
import type { TensorData } from '../runners/runner.js';
import { DEFAULT_IOU_THRESHOLD } from '../store/model-config.js';
import { anchorsOf, decodeDetections } from './decode.js';
import { letterbox, unletterbox, type Letterbox } from './letterbox.js';

/** Without a threshold from the caller: DeepStack's default for detection. */
export const DEFAULT_MIN_CONFIDENCE = 0.4;

export interface DetectPrediction {
  label: string;
  confidence: number;
  x_min: number;
  y_min: number;
  x_max: number;
  y_max: number;
}

export interface DetectResult {
  predictions: DetectPrediction[];
  duration_ms: number;
  provider: string;
}

/**
 * A custom YOLO-style detector (DESIGN.md "Kernels"): the EXIF-rotated image letterboxed into the declared
 * input with grey 114, the output decoded in the declared layout (decode.ts), and the boxes mapped back to
 * the original image's pixels as integers, best first.
 */
export class DetectKernel extends CustomModelKernel<Letterbox, DetectResult> {
  readonly task = 'detect';

  static create(parts: CustomKernelParts): Promise<DetectKernel> {
    return new DetectKernel(parts).start();
  }

  protected async prepare(image: Buffer, inspected: ImageInfo): Promise<{ input: TensorData; prepared: Letterbox }> {
    const { width: w, height: h } = this.config.input;
    const { pixels, box } = await letterbox(image, inspected, this.parts.limits, w, h);
    const data = planarInput(pixels, w, h, this.config);
    return { input: { data, dims: [1, 3, h, w] }, prepared: box };
  }

  protected interpret(output: TensorData, box: Letterbox, opts: InferOptions): DetectPrediction[] {
    const { labels, format, iou_threshold } = this.config;
    const found = decodeDetections(output.data, output.dims, format!, labels.length, opts.minConfidence ?? DEFAULT_MIN_CONFIDENCE, iou_threshold ?? DEFAULT_IOU_THRESHOLD);
    return found.map((d) => ({
      label: labels[d.classIndex]!,
      confidence: Math.round(d.confidence * 10000) / 10000,
      ...unletterbox(box, d.x1, d.y1, d.x2, d.y2),
    }));
  }

  protected checkOutput(output: TensorData): void {
    anchorsOf(output.dims, this.config.format!, this.config.labels.length);
  }
}
