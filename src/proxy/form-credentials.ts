import { canonicalContentType } from '../signing/canonical.js';

/** DeepStack's credential form fields: read by the proxy, never forwarded. */
const CREDENTIAL_FIELDS = new Set(['api_key', 'admin_key']);
/** A part's headers longer than this are not a form field's: such a part is kept as it is. */
const MAX_PART_HEADER_BYTES = 8 * 1024;

/** The multipart boundary of a Content-Type (quoted or not), or undefined. */
function boundaryOf(contentType: string): string | undefined {
  const m = /;\s*boundary=(?:"([^"]{1,70})"|([^\s;"]{1,70}))/i.exec(contentType);
  return m?.[1] ?? m?.[2];
}

/** The `name` of a part's Content-Disposition, from its header block (latin1). */
function partName(headers: string): string | undefined {
  for (const line of headers.split('\r\n')) {
    if (!/^content-disposition\s*:/i.test(line)) continue;
    const m = /;\s*name\s*=\s*(?:"([^"]*)"|([^\s;]+))/i.exec(line);
    return m?.[1] ?? m?.[2];
  }
  return undefined;
}

/**
 * The body without DeepStack's `api_key` / `admin_key` fields (urlencoded or multipart), so a visitor's
 * credential never travels upstream: the proxy signs with the visitor's keypair instead. Other parts are
 * kept byte for byte (a multipart body is cut at its delimiters, never re-encoded). One pass of
 * Buffer.indexOf over the body: linear in its size.
 */
export function stripFormCredentials(body: Buffer, contentType: string | undefined): Buffer {
  if (body.length === 0 || contentType === undefined) return body;
  const type = canonicalContentType(contentType);
  if (type === 'application/x-www-form-urlencoded') {
    const params = new URLSearchParams(body.toString('utf8'));
    if (![...CREDENTIAL_FIELDS].some((f) => params.has(f))) return body;
    for (const f of CREDENTIAL_FIELDS) params.delete(f);
    return Buffer.from(params.toString());
  }
  if (type !== 'multipart/form-data') return body;
  const boundary = boundaryOf(contentType);
  if (boundary === undefined) return body;
  // Part i runs from its delimiter ("--b" at the start, else "\r\n--b") to the next delimiter.
  const delimiter = Buffer.from(`\r\n--${boundary}`);
  const starts: number[] = [];
  if (body.subarray(0, delimiter.length - 2).equals(delimiter.subarray(2))) starts.push(0);
  for (let at = body.indexOf(delimiter); at !== -1; at = body.indexOf(delimiter, at + delimiter.length)) starts.push(at);
  if (starts.length < 2) return body;
  const kept: Buffer[] = [body.subarray(0, starts[0])];
  let dropped = false;
  for (let i = 0; i < starts.length; i++) {
    const segment = body.subarray(starts[i], i + 1 < starts.length ? starts[i + 1] : body.length);
    const lead = starts[i] === 0 ? delimiter.length - 2 : delimiter.length;
    // The closing delimiter ("--b--") and the epilogue are always kept.
    const isPart = i + 1 < starts.length && segment.subarray(lead, lead + 2).toString('latin1') === '\r\n';
    if (isPart) {
      const headerEnd = segment.indexOf('\r\n\r\n', lead);
      const name = headerEnd !== -1 && headerEnd - lead <= MAX_PART_HEADER_BYTES ? partName(segment.subarray(lead + 2, headerEnd).toString('latin1')) : undefined;
      if (name !== undefined && CREDENTIAL_FIELDS.has(name)) {
        dropped = true;
        continue;
      }
    }
    kept.push(segment);
  }
  if (!dropped) return body;
  const out = Buffer.concat(kept);
  // A first part dropped: the body now starts "\r\n--b", a preamble of nothing then CRLF; make it "--b".
  return starts[0] === 0 && out.subarray(0, 2).toString('latin1') === '\r\n' ? out.subarray(2) : out;
}
