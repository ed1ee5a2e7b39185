import { algorithmOfSignMethod, HEX_LENGTH, type HashAlgorithm } from './algorithms.js';
import { ACCESS_KEY_FORMAT } from '../validation/names.js';
import { trimHeaderValue } from './canonical.js';

export type AuthScheme = 'BackendAI' | 'Sorna';

export interface AuthorizationParams {
  scheme: AuthScheme;
  signMethod: string;
  algorithm: HashAlgorithm;
  accessKey: string;
  signature: string;
}

export type ParseResult = { ok: true; value: AuthorizationParams } | { ok: false; reason: string };

const MAX_AUTHORIZATION_LENGTH = 512;
const HEX = /^[0-9a-fA-F]+$/;

/**
 * Strictly parses `BackendAI signMethod=HMAC-SHA256, credential=<key>:<hex>`.
 * Parameter order and spaces around commas are free (as in Backend.AI's own
 * parser); everything else is checked before any crypto runs, including the
 * exact hex length of the named hash. Never throws.
 */
export function parseAuthorization(header: string): ParseResult {
  if (header.length > MAX_AUTHORIZATION_LENGTH) return fail('Authorization header is too long');
  const space = header.indexOf(' ');
  if (space <= 0) return fail('Malformed Authorization header');
  const scheme = header.slice(0, space);
  if (scheme !== 'BackendAI' && scheme !== 'Sorna') return fail('Unsupported authorization type');
  const params = new Map<string, string>();
  for (const piece of header.slice(space + 1).split(',')) {
    const eq = piece.indexOf('=');
    if (eq === -1) return fail('Malformed authorization parameter');
    const name = trimHeaderValue(piece.slice(0, eq));
    if (name !== 'signMethod' && name !== 'credential') return fail('Unknown authorization parameter');
    if (params.has(name)) return fail('Repeated authorization parameter');
    params.set(name, trimHeaderValue(piece.slice(eq + 1)));
  }
  const signMethod = params.get('signMethod');
  const credential = params.get('credential');
  if (signMethod === undefined || credential === undefined) {
    return fail('Missing signMethod or credential');
  }
  const algorithm = algorithmOfSignMethod(signMethod);
  if (algorithm === undefined) return fail('Unsupported signMethod');
  const colon = credential.indexOf(':');
  if (colon === -1) return fail('Malformed credential');
  const accessKey = credential.slice(0, colon);
  const signature = credential.slice(colon + 1);
  if (!ACCESS_KEY_FORMAT.test(accessKey)) return fail('Malformed access key');
  if (signature.length !== HEX_LENGTH[algorithm] || !HEX.test(signature)) {
    return fail(`Signature must be ${HEX_LENGTH[algorithm]} hex digits for ${signMethod.toUpperCase()}`);
  }
  // Kept as sent: upper-case hex is well-formed but never matches (signatureMatches compares lower-case only).
  return { ok: true, value: { scheme, signMethod, algorithm, accessKey, signature } };
}

function fail(reason: string): ParseResult {
  return { ok: false, reason };
}

export function formatAuthorization(
  scheme: AuthScheme,
  signMethod: string,
  accessKey: string,
  signatureHex: string,
): string {
  return `${scheme} signMethod=${signMethod}, credential=${accessKey}:${signatureHex}`;
}
