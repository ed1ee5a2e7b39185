// The Backend.AI signing scheme in the browser (WebCrypto), line for line the string src/signing/ builds:
// test/browser-signing.test.ts runs this file in Node against the reference signer's vectors.
// Browsers may not set `Date`, so requests carry X-BackendAI-Date; the secret only ever reaches HMAC.

const HASHES = { sha1: 'SHA-1', sha256: 'SHA-256', sha384: 'SHA-384', sha512: 'SHA-512' };
const encoder = new TextEncoder();

/** Backend.AI trims these characters (and only these) off both ends of header values. */
export function trimHeaderValue(value) {
  const trimmed = (c) => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
  let start = 0;
  let end = value.length;
  while (start < end && trimmed(value.charCodeAt(start))) start++;
  while (end > start && trimmed(value.charCodeAt(end - 1))) end--;
  return value.slice(start, end);
}

/** `Application/JSON; charset=UTF-8` -> `application/json`. */
export function canonicalContentType(value) {
  if (value === undefined || value === null) return '';
  const semi = value.indexOf(';');
  return trimHeaderValue(semi === -1 ? value : value.slice(0, semi)).toLowerCase();
}

/** The seven lines, joined by `\n` (DESIGN.md "Signing"). */
export function stringToSign(parts) {
  return [
    parts.method.toUpperCase(),
    parts.target,
    trimHeaderValue(parts.date),
    `host:${trimHeaderValue(parts.host)}`,
    `content-type:${canonicalContentType(parts.contentType)}`,
    `${parts.versionLabel ?? 'x-backendai-version'}:${trimHeaderValue(parts.apiVersion)}`,
    parts.bodyHash,
  ].join('\n');
}

/**
 * `YYYYMMDD` as the date is written (the day in its own offset), for ISO 8601 (extended or basic) and
 * RFC 1123 dates; undefined for anything else.
 */
export function keyDateOf(date) {
  const d = trimHeaderValue(date);
  const iso = /^(\d{4})-?(\d{2})-?(\d{2})T/.exec(d);
  if (iso) return iso[1] + iso[2] + iso[3];
  const rfc = /^(?:[A-Za-z]{3}, )?(\d{1,2}) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) (\d{4}) /.exec(d);
  if (rfc) {
    const month = 'JanFebMarAprMayJunJulAugSepOctNovDec'.indexOf(rfc[2]) / 3 + 1;
    return rfc[3] + String(month).padStart(2, '0') + rfc[1].padStart(2, '0');
  }
  return undefined;
}

function bytesOf(data) {
  if (data === undefined || data === null) return new Uint8Array(0);
  if (typeof data === 'string') return encoder.encode(data);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  throw new TypeError('body must be bytes or a string');
}

function hex(buffer) {
  return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, '0')).join('');
}

function hashName(algorithm) {
  const name = HASHES[algorithm];
  if (name === undefined) throw new TypeError(`unsupported hash: ${algorithm}`);
  return name;
}

/** Hex digest of the exact body bytes. */
export async function bodyHash(algorithm, body) {
  return hex(await crypto.subtle.digest(hashName(algorithm), bytesOf(body)));
}

async function hmac(algorithm, key, data) {
  const k = await crypto.subtle.importKey('raw', bytesOf(key), { name: 'HMAC', hash: hashName(algorithm) }, false, ['sign']);
  return new Uint8Array(await crypto.subtle.sign('HMAC', k, bytesOf(data)));
}

/** HMAC(HMAC(secret, YYYYMMDD), host). */
export async function deriveSigningKey(algorithm, secretKey, keyDate, host) {
  return hmac(algorithm, await hmac(algorithm, secretKey, keyDate), host);
}

/** Lower-case hex HMAC of the string to sign. */
export async function computeSignature(algorithm, signingKey, canonical) {
  return hex(await hmac(algorithm, signingKey, canonical));
}

/** ISO 8601 in UTC with milliseconds, e.g. `2026-12-02T10:41:40.123Z`. */
export function signingDate(at = new Date()) {
  return at.toISOString();
}

/**
 * Signs one request. `body` must be the exact bytes (or string) that will be sent; `host` the Host the
 * browser sends (location.host for same-origin requests).
 * Returns the headers to add (X-BackendAI-Date, X-BackendAI-Version, Authorization), the string to sign
 * and the signature.
 */
export async function signRequest(input) {
  const algorithm = input.algorithm ?? 'sha256';
  const date = input.date ?? signingDate();
  const keyDate = keyDateOf(date);
  if (keyDate === undefined) throw new TypeError(`not a signing date: ${date}`);
  const canonical = stringToSign({
    method: input.method,
    target: input.target,
    date,
    host: input.host,
    contentType: input.contentType,
    apiVersion: input.apiVersion,
    bodyHash: await bodyHash(algorithm, input.body),
  });
  const key = await deriveSigningKey(algorithm, input.secretKey, keyDate, trimHeaderValue(input.host));
  const signature = await computeSignature(algorithm, key, canonical);
  const method = `HMAC-${algorithm.toUpperCase()}`;
  return {
    headers: {
      'X-BackendAI-Date': date,
      'X-BackendAI-Version': input.apiVersion,
      Authorization: `BackendAI signMethod=${method}, credential=${input.accessKey}:${signature}`,
    },
    stringToSign: canonical,
    signature,
  };
}
