/**
 * Base64 in JSON bodies (inference images, model uploads), checked and decoded
 * in one linear pass. A regular expression such as `^[A-Za-z0-9+/\s]*={0,2}\s*$`
 * backtracks quadratically on "A" + many spaces + "!" (10-20 s of a frozen event
 * loop for 120 kB); this never looks at a character twice.
 *
 * Accepted: the standard alphabet `A-Z a-z 0-9 + /`, ASCII whitespace anywhere
 * (line-wrapped encoders), then at most two `=` and trailing whitespace. With
 * `dataUrl`, an optional `data:<anything without a comma>;base64,` prefix.
 */

export type Base64Result = { ok: true; bytes: Buffer } | { ok: false; reason: 'invalid' | 'too-large'; detail: string };

/** 1 = alphabet, 2 = whitespace, 0 = anything else. */
const CLASS = new Uint8Array(128);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/') CLASS[c.charCodeAt(0)] = 1;
for (const c of ' \t\n\r\f\v') CLASS[c.charCodeAt(0)] = 2;
const EQUALS = 0x3d;

/** Where the base64 payload starts: after a `data:…;base64,` prefix, or 0. Linear (one indexOf). */
function payloadStart(value: string): number {
  if (!value.startsWith('data:')) return 0;
  const comma = value.indexOf(',');
  if (comma === -1) return 0; // not a data URL after all: validated as base64 (and refused: ':' is not base64)
  return value.slice(0, comma).endsWith(';base64') ? comma + 1 : 0;
}

/**
 * Validates and decodes. `maxBytes` bounds the decoded size, checked from the
 * character count before anything is allocated. Never throws.
 */
export function decodeBase64(value: string, opts: { dataUrl?: boolean; maxBytes?: number } = {}): Base64Result {
  const start = opts.dataUrl ? payloadStart(value) : 0;
  let data = 0;
  let padding = 0;
  for (let i = start; i < value.length; i++) {
    const code = value.charCodeAt(i);
    const kind = code < 128 ? CLASS[code] : 0;
    if (kind === 2) continue;
    if (kind === 1 && padding === 0) {
      data++;
      continue;
    }
    if (code === EQUALS && padding < 2) {
      padding++;
      continue;
    }
    return { ok: false, reason: 'invalid', detail: `not valid base64 (unexpected character at offset ${i})` };
  }
  const decodedLength = Math.floor((data * 3) / 4);
  if (opts.maxBytes !== undefined && decodedLength > opts.maxBytes) {
    return { ok: false, reason: 'too-large', detail: `decodes to ${decodedLength} bytes, more than ${opts.maxBytes}` };
  }
  // Node's decoder skips whitespace and stops at '=', linearly.
  return { ok: true, bytes: Buffer.from(start === 0 ? value : value.slice(start), 'base64') };
}
