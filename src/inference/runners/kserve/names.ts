/**
 * How models are named on Open Inference Protocol servers: the gateway's remote runner, `kernelgate
 * worker` and the Triton repository export all use these names.
 *
 * - Built-in models by the name their task gives each file (tasks.ts `files`): `ocr-det`, `ocr-cls`,
 *   `ocr-rec`. A file no task names falls back to its base name (lower case, `[a-z0-9._-]`).
 * - Custom models as `<domain>.<name>`, the domain percent-encoded as its models_dir folder (dots
 *   too), so the first dot separates the two: `default.cats`, `acme%2Ecom.cats`.
 */
import { basename } from 'node:path';
import { domainFolder } from '../../store/model-store.js';
import { MODEL_NAME_FORMAT } from '../../../validation/names.js';

export const customRemoteName = (domain: string, name: string): string => `${domainFolder(domain)}.${name}`;

/** The domain and model name of a custom model's remote name, or undefined. */
export function parseCustomRemoteName(remote: string): { domain: string; name: string } | undefined {
  const dot = remote.indexOf('.');
  if (dot <= 0) return undefined;
  const name = remote.slice(dot + 1);
  if (!MODEL_NAME_FORMAT.test(name)) return undefined;
  try {
    return { domain: decodeURIComponent(remote.slice(0, dot)), name };
  } catch {
    return undefined;
  }
}

/** The fallback name of a built-in model file no task names. */
export const fileRemoteName = (path: string): string =>
  basename(path).replace(/\.onnx$/i, '').toLowerCase().replace(/[^a-z0-9._-]/g, '-').replace(/^[^a-z0-9]+/, '').slice(0, 64) || 'model';

/** A protocol path segment for a model name. */
export const modelPath = (remote: string): string => `/v2/models/${encodeURIComponent(remote)}`;
