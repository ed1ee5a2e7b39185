import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import { OcrKernel } from './ocr/kernel.js';
import type { OcrResult } from './ocr/index.js';

export interface ModelInfo {
  name: string;
  task: 'ocr' | 'classify' | 'detect';
  builtin: boolean;
  loaded: boolean;
  provider: string | null;
}

/**
 * The models compute sessions can run. Each is loaded on first use and
 * shared by every session of it in this process (one ORT session per model).
 */
export class KernelRegistry {
  private ocr: Promise<OcrKernel> | undefined;
  private ocrKernel: OcrKernel | undefined;

  constructor(
    private readonly cfg: Config['inference'],
    private readonly log: Logger,
  ) {}

  has(name: string): boolean {
    return name === 'ocr';
  }

  list(): ModelInfo[] {
    return [{ name: 'ocr', task: 'ocr', builtin: true, loaded: this.ocrKernel !== undefined, provider: this.ocrKernel?.provider ?? null }];
  }

  private loadOcr(): Promise<OcrKernel> {
    this.ocr ??= OcrKernel.load({
      providers: this.cfg.providers,
      intraOpNumThreads: this.cfg.threads > 0 ? this.cfg.threads : undefined,
      limits: { maxBytes: this.cfg.max_image_bytes, maxPixels: this.cfg.max_image_pixels },
      queue: { concurrency: this.cfg.concurrency, maxQueued: this.cfg.max_queue, timeoutMs: this.cfg.timeout_ms },
      logger: this.log,
    }).then(
      (kernel) => {
        this.ocrKernel = kernel;
        this.log.info({ model: 'ocr', provider: kernel.provider }, 'model loaded');
        return kernel;
      },
      (error: unknown) => {
        this.ocr = undefined;
        throw error;
      },
    );
    return this.ocr;
  }

  async infer(name: string, image: Buffer): Promise<OcrResult> {
    const kernel = await this.loadOcr();
    return kernel.recognize(image);
  }

  health(): Record<string, unknown> {
    return {
      inference: {
        status: 'ok',
        configured_providers: this.cfg.providers,
        models: Object.fromEntries(this.list().map((m) => [m.name, { loaded: m.loaded, provider: m.provider, queue: m.name === 'ocr' ? this.ocrKernel?.queueStats : undefined }])),
      },
    };
  }
}
