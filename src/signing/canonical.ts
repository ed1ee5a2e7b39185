/**
 * The canonical string to sign, split into small pure functions so the server,
 * the client SDK, the CLI and the proxy build it the same way.
 */

/** Backend.AI trims these characters (and only these) off both ends of header values. */
export function trimHeaderValue(value: string): string {
  let start = 0;
  let end = value.length;
  while (start < end && isTrimmed(value.charCodeAt(start))) start++;
  while (end > start && isTrimmed(value.charCodeAt(end - 1))) end--;
  return start === 0 && end === value.length ? value : value.slice(start, end);
}

function isTrimmed(code: number): boolean {
  return code === 0x20 || code === 0x09 || code === 0x0a || code === 0x0d;
}

/** `Application/JSON; charset=UTF-8` -> `application/json`. */
export function canonicalContentType(value: string | undefined): string {
  if (value === undefined) return '';
  const semi = value.indexOf(';');
  const mediaType = semi === -1 ? value : value.slice(0, semi);
  return trimHeaderValue(mediaType).toLowerCase();
}

export interface CanonicalParts {
  /** HTTP method; upper-cased here. */
  method: string;
  /** Request target exactly as sent: path and query, still percent-encoded. */
  target: string;
  /** Raw value of Date / X-BackendAI-Date, trimmed. */
  date: string;
  /** The host the client addressed (Host, or X-Forwarded-Host behind a trusted proxy). */
  host: string;
  /** Content-Type header as sent (parameters are dropped here). */
  contentType: string | undefined;
  /** X-BackendAI-Version as sent. */
  apiVersion: string;
  /** Hex digest of the body. */
  bodyHash: string;
  /**
   * Label of line 6. Always `x-backendai-version` in this design; Backend.AI's
   * own server writes `x-sorna-version` when only X-Sorna-Version was sent,
   * which is how its documented example was signed.
   */
  versionLabel?: 'x-backendai-version' | 'x-sorna-version';
}

export function stringToSign(parts: CanonicalParts): string {
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
