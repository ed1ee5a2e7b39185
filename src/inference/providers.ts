/**
 * ONNX Runtime session creation with execution-provider fallback.
 *
 * config.toml's `[inference] providers = ["cuda", "cpu"]` is an ordered wish list: the first provider
 * whose session actually loads wins, and the winner is reported in every result and in /health. ORT itself
 * does not fall back when a listed provider cannot load (with ["cuda","cpu"] it throws if the CUDA add-on
 * is missing), so each provider is tried on its own, in order, and the reasons for skipping are kept.
 *
 * This module creates sessions on the calling thread; runners/ort-worker.ts hosts one per model in a worker
 * thread, and RunnerPool (runners/pool.ts) shares it between kernels.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';

// ORT's own log lines are plain text on stderr; every failure we care about reaches us as an exception and
// is logged as JSON by the gateway, so the native logger only speaks for fatal errors.
ort.env.logLevel = 'fatal';

/** Minimal logger shape (pino's `warn(obj, msg)` fits it) so this module needs no logging setup. */
export interface InferenceLogger {
  warn(obj: object, msg: string): void;
  info?(obj: object, msg: string): void;
}

export interface SessionOptions {
  /** Ordered provider names, e.g. ["cuda", "cpu"]. */
  providers: readonly string[];
  /** Threads for one operator; defaults to the machine's cores (see defaultIntraOpThreads). */
  intraOpNumThreads?: number;
  logger?: InferenceLogger;
  /** How the model is named in errors when it is loaded from bytes. */
  label?: string;
  /**
   * Which copy of a shared model (RunnerPool): a kernel that runs one model on several inputs at once (the face
   * kernel's tiles) asks for copies 0 and 1, each its own session and worker. Remote backends ignore it.
   */
  replica?: number;
}

export interface ProviderFailure {
  provider: string;
  reason: string;
}

export interface LoadedSession {
  session: ort.InferenceSession;
  /** The provider that loaded, e.g. "cpu" or "cuda". */
  provider: string;
  /** Providers tried before it, and why each failed. */
  skipped: ProviderFailure[];
}

/** Thrown (as a plain server-side Error) when no listed provider can load the model. */
export class ProviderLoadError extends Error {
  readonly failures: ProviderFailure[];
  constructor(modelPath: string, failures: ProviderFailure[]) {
    super(
      `no execution provider could load ${modelPath}: ` +
        (failures.map((f) => `${f.provider}: ${f.reason}`).join('; ') || 'empty provider list'),
    );
    this.name = 'ProviderLoadError';
    this.failures = failures;
  }
}

/** Provider names onnxruntime-node accepts in `executionProviders`. */
const KNOWN_PROVIDERS = new Set(['cpu', 'cuda', 'tensorrt', 'webgpu', 'dml', 'coreml', 'qnn']);

/**
 * All cores, at most 4: requests are serialized per model by the work queue, so one run may use the whole
 * (small) machine; beyond ~4 threads these models gain little and starve the event loop's neighbours.
 */
export function defaultIntraOpThreads(): number {
  const cores = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  return Math.max(1, Math.min(4, cores));
}

/** The folder of onnxruntime-node's native binding, where optional provider libraries are installed. */
function bindingDir(): string | undefined {
  try {
    const main = createRequire(import.meta.url).resolve('onnxruntime-node');
    return join(dirname(main), '..', 'bin', 'napi-v6', process.platform, process.arch);
  } catch {
    return undefined;
  }
}

/** The CUDA provider and the shared provider bridge it needs, per platform. */
const CUDA_LIBRARIES: Partial<Record<NodeJS.Platform, string[]>> = {
  linux: ['libonnxruntime_providers_cuda.so', 'libonnxruntime_providers_shared.so'],
  win32: ['onnxruntime_providers_cuda.dll', 'onnxruntime_providers_shared.dll'],
};

/**
 * Why `provider` cannot load on this machine, found without asking ORT (which prints red error lines while
 * it fails): the CUDA provider needs its add-on library beside the binding (installed only by
 * `npm install` with the CUDA flag; see README "GPU"). undefined: worth trying.
 */
export function providerUnavailable(provider: string): string | undefined {
  if (provider !== 'cuda') return undefined;
  const libs = CUDA_LIBRARIES[process.platform];
  if (!libs || process.arch !== 'x64') return `no CUDA build of onnxruntime-node for ${process.platform}/${process.arch}`;
  const dir = bindingDir();
  const missing = dir ? libs.find((lib) => !existsSync(join(dir, lib))) : undefined;
  if (missing) return `CUDA add-on not installed (${missing} is not in onnxruntime-node's bin folder)`;
  return undefined;
}

function sessionOptions(provider: string, intraOpNumThreads: number): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: [provider],
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    intraOpNumThreads,
    interOpNumThreads: 1,
    // Errors reach us as exceptions (and are logged as JSON); ORT's own text lines would only be noise.
    logSeverityLevel: 4,
    extra: {
      // Idle ORT worker threads spin-wait by default; on a 2-core box that steals CPU from the Node event
      // loop (HTTP, signing, JS post-processing) between runs. Sleeping costs microseconds per run.
      session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } },
    },
  };
}

const reported = new Set<string>();

/**
 * Log which execution provider loaded and why the ones before it were skipped: one JSON line per
 * distinct outcome per process (the three OCR models, or every custom model on the same providers,
 * share one line).
 */
export function reportProvider(logger: InferenceLogger | undefined, configured: readonly string[], provider: string, skipped: readonly ProviderFailure[]): void {
  const key = JSON.stringify([configured, provider, skipped]);
  if (reported.has(key)) return;
  reported.add(key);
  const why = skipped.length === 0 ? `first of the configured providers [${configured.join(', ')}]` : skipped.map((f) => `${f.provider} skipped: ${f.reason}`).join('; ');
  (logger?.info ?? logger?.warn)?.call(logger, { provider, configured_providers: configured, skipped, why }, `inference: using execution provider ${provider}`);
}

/** Try each provider in order; the first session that loads wins. Never caches. */
export async function createSession(model: string | Uint8Array, opts: SessionOptions): Promise<LoadedSession> {
  const modelPath = typeof model === 'string' ? model : (opts.label ?? 'model');
  const threads = opts.intraOpNumThreads ?? defaultIntraOpThreads();
  const skipped: ProviderFailure[] = [];
  for (const raw of opts.providers) {
    const provider = raw.trim().toLowerCase();
    if (!KNOWN_PROVIDERS.has(provider)) {
      skipped.push({ provider: raw, reason: 'unknown execution provider' });
      continue;
    }
    const unavailable = providerUnavailable(provider);
    if (unavailable) {
      skipped.push({ provider, reason: unavailable });
      continue;
    }
    try {
      const opts = sessionOptions(provider, threads);
      const session = typeof model === 'string' ? await ort.InferenceSession.create(model, opts) : await ort.InferenceSession.create(model, opts);
      return { session, provider, skipped };
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      skipped.push({ provider, reason: reason.split('\n')[0]!.slice(0, 300) });
    }
  }
  throw new ProviderLoadError(modelPath, skipped);
}
