import { ApiError } from '../problems/api-error.js';

const NUMBER = /^(?:\d{1,16}(?:\.\d{0,32})?|\.\d{1,32})(?:[eE][-+]?\d{1,3})?$/;

/**
 * DeepStack's `min_confidence`: a decimal number from 0 to 1 (Python clients send `str(float)`, e.g.
 * "0.45" or "1e-05"); absent or empty: the route's default. Anything else is a 400 that says what came.
 */
export function parseMinConfidence(raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const text = raw.trim();
  if (text === '') return fallback;
  const value = NUMBER.test(text) ? Number(text) : Number.NaN;
  if (!(value >= 0 && value <= 1)) {
    throw new ApiError(400, 'invalid-api-params', `min_confidence must be a number from 0 to 1, not ${JSON.stringify(raw.slice(0, 40))}${raw.length > 40 ? '…' : ''}.`);
  }
  return value;
}
