/**
 * ONNX Runtime session creation with execution-provider fallback.
 *
 * config.toml's `[inference] providers = ["cuda", "cpu"]` is an ordered wish list: the first provider
 * whose session actually loads wins, and the winner is reported in every result and in /health. ORT itself
 * does not fall back when a listed provider cannot load (with ["cuda","cpu"] it throws if the CUDA add-on
 * is missing), so each provider is tried on its own, in order, and the reasons for skipping are kept.
 *
 * This module creates sessions on the calling thread; model-session.ts hosts one per model in a worker
 * thread and shares it process-wide.
 */
import os from 'node:os';
import * as ort from 'onnxruntime-node';

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

function sessionOptions(provider: string, intraOpNumThreads: number): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: [provider],
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    intraOpNumThreads,
    interOpNumThreads: 1,
    // Errors from a provider that fails to load are reported through our return value; ORT's own
    // error-level log line for it would only be noise on stderr.
    logSeverityLevel: provider === 'cpu' ? 3 : 4,
    extra: {
      // Idle ORT worker threads spin-wait by default; on a 2-core box that steals CPU from the Node event
      // loop (HTTP, signing, JS post-processing) between runs. Sleeping costs microseconds per run.
      session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } },
    },
  };
}

/** Try each provider in order; the first session that loads wins. Never caches. */
export async function createSession(modelPath: string, opts: SessionOptions): Promise<LoadedSession> {
  const threads = opts.intraOpNumThreads ?? defaultIntraOpThreads();
  const skipped: ProviderFailure[] = [];
  for (const raw of opts.providers) {
    const provider = raw.trim().toLowerCase();
    if (!KNOWN_PROVIDERS.has(provider)) {
      skipped.push({ provider: raw, reason: 'unknown execution provider' });
      continue;
    }
    try {
      const session = await ort.InferenceSession.create(modelPath, sessionOptions(provider, threads));
      return { session, provider, skipped };
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      skipped.push({ provider, reason: reason.split('\n')[0]!.slice(0, 300) });
    }
  }
  throw new ProviderLoadError(modelPath, skipped);
}
