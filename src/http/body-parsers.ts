import { ApiError } from '../problems/api-error.js';
import { canonicalContentType } from '../signing/canonical.js';

/** Parses JSON or form bodies from the bytes already read and hashed. */
export function parseBody(raw: Buffer, contentType: string | undefined): Record<string, unknown> | undefined {
  if (raw.length === 0) return undefined;
  const type = canonicalContentType(contentType);
  if (type === 'application/json' || type.endsWith('+json')) {
    let value: unknown;
    try {
      value = JSON.parse(raw.toString('utf8'));
    } catch {
      throw new ApiError(400, 'invalid-api-params', 'The request body is not valid JSON.');
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new ApiError(400, 'invalid-api-params', 'The request body must be a JSON object.');
    }
    return value as Record<string, unknown>;
  }
  if (type === 'application/x-www-form-urlencoded') {
    return Object.fromEntries(new URLSearchParams(raw.toString('utf8')));
  }
  return undefined;
}
