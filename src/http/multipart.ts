/**
 * A multipart/form-data body already in memory, split into its parts without copying (each part's data is a
 * subarray of the body). This is the hot path of every DeepStack request: busboy's stream and event machinery
 * cost more than the parsing itself when the whole body is one Buffer. Spooled uploads still go through busboy.
 *
 * What is accepted follows busboy 1.6 (the parser this replaces for in-memory bodies), so a form real clients
 * send parses to the same parts: the body is read as if preceded by CRLF; a preamble and an epilogue are
 * ignored; part headers have busboy's grammar (token names, folded values, 16 KiB per part); Content-Disposition
 * and Content-Type parameters are token or quoted-string (with `\` escapes), `filename*` (RFC 5987) wins over
 * `filename`. Where busboy silently drops data instead (bytes after a delimiter other than CRLF or `--`, RFC 2046
 * transport padding included; a delimiter with no headers after it; a part whose headers run into the next
 * delimiter) this parser refuses the body: a part lost without a word would answer a different request.
 * A part's data is its bytes whatever charset its Content-Type declares (busboy decoded a field with it, which
 * readForm, keeping fields as latin1 bytes, then misread), and a part without a name is named ''.
 * Each delimiter search is Buffer.indexOf from the end of the previous one and the part count is bounded, so
 * the work is linear in the body.
 */
import { ApiError } from '../problems/api-error.js';

export interface MultipartPart {
  /** The `name` parameter ('' when absent or empty). */
  name: string;
  /** The file name, decoded as UTF-8 and without any path (busboy's basename); absent for a plain field. */
  filename?: string;
  /** The part's media type, lower-cased `type/subtype`, when it has a valid Content-Type. */
  contentType?: string;
  /** The part's bytes: a subarray of the body. */
  data: Buffer;
}

export const malformedMultipart = () => new ApiError(400, 'invalid-api-params', 'Malformed multipart body.');
const tooManyParts = (max: number) => new ApiError(400, 'invalid-api-params', `More than ${max} form parts.`);

/** busboy's rule: a part with a file name, or typed application/octet-stream, is a file. */
export function isFilePart(part: MultipartPart): boolean {
  return part.filename !== undefined || part.contentType === 'application/octet-stream';
}

/** RFC 2046: 1 to 70 characters. Longer ones are refused, which also bounds each delimiter search. */
const MAX_BOUNDARY = 70;
/** Per part, the header block with its closing blank line (busboy and Node's default). */
const MAX_HEADER_BYTES = 16 * 1024;
/** Header fields kept per part, as busboy (later ones are ignored). */
const MAX_HEADER_PAIRS = 2000;

const CR = 13;
const LF = 10;
const DASH = 45;
const HEADER_END = Buffer.from('\r\n\r\n');

/**
 * The boundary parameter of a multipart/form-data Content-Type, as busboy reads it (first `boundary`
 * parameter, quoted or not); undefined when the header does not parse, is another type, or has none (or an
 * empty one, or one over RFC 2046's 70 characters, which busboy took).
 */
export function multipartBoundary(contentType: string): string | undefined {
  const parsed = parseContentType(contentType);
  if (parsed === undefined || parsed.type !== 'multipart' || parsed.subtype !== 'form-data') return undefined;
  const boundary = parsed.params.get('boundary');
  return boundary !== undefined && boundary.length > 0 && boundary.length <= MAX_BOUNDARY ? boundary : undefined;
}

/**
 * The parts of `body`, in order. Throws the 400 malformedMultipart for a body busboy would refuse (or would
 * silently drop data from), and a 400 past `maxParts` parts. A generator, so a caller's own refusal of an
 * earlier part (a duplicate, an oversized one) comes first, as it did with busboy's events.
 */
export function* multipartParts(body: Buffer, boundary: string, maxParts: number): Generator<MultipartPart> {
  if (boundary.length === 0 || boundary.length > MAX_BOUNDARY) throw malformedMultipart();
  // busboy's needle is the string as UTF-8; so is this one.
  const delimiter = Buffer.from(`\r\n--${boundary}`);
  let end = firstDelimiterEnd(body, delimiter);
  let count = 0;
  for (;;) {
    if (body[end] === DASH && body[end + 1] === DASH) return;
    if (body[end] !== CR || body[end + 1] !== LF) throw malformedMultipart();
    if (++count > maxParts) throw tooManyParts(maxParts);
    const next = body.indexOf(delimiter, end);
    if (next < 0) throw malformedMultipart();
    // The blank line must close the headers within this part and within the header limit.
    const headerEnd = body.subarray(end, Math.min(next, end + 2 + MAX_HEADER_BYTES)).indexOf(HEADER_END);
    if (headerEnd <= 0) throw malformedMultipart();
    const part = partOf(body, end + 2, end + headerEnd + 2);
    if (part !== undefined) {
      part.data = body.subarray(end + headerEnd + 4, next);
      yield part;
    }
    end = next + delimiter.length;
  }
}

/** Where the first delimiter ends; busboy reads the body after a CRLF, so one at offset 0 needs none. */
function firstDelimiterEnd(body: Buffer, delimiter: Buffer): number {
  const bare = delimiter.length - 2;
  if (body.length >= bare && body.compare(delimiter, 2, delimiter.length, 0, bare) === 0) return bare;
  const at = body.indexOf(delimiter);
  if (at < 0) throw malformedMultipart();
  return at + delimiter.length;
}

/**
 * The part described by the header lines in [start, end) (each line ending CRLF, the blank line excluded);
 * undefined for a part busboy skips (no Content-Disposition, or one that is not form-data or does not parse).
 */
function partOf(body: Buffer, start: number, end: number): MultipartPart | undefined {
  let disposition: string | undefined;
  let type: string | undefined;
  let pairs = 0;
  let i = start;
  while (i < end) {
    const nameStart = i;
    while (TOKEN[body[i]!] === 1) i++;
    if (i === nameStart || body[i] !== 0x3a) throw malformedMultipart();
    const name = body.toString('latin1', nameStart, i).toLowerCase();
    i++;
    while (body[i] === 0x20 || body[i] === 0x09) i++;
    let value = '';
    for (;;) {
      const valueStart = i;
      while (FIELD_VCHAR[body[i]!] === 1) i++;
      if (body[i] !== CR || body[i + 1] !== LF) throw malformedMultipart();
      value += body.toString('latin1', valueStart, i);
      i += 2;
      // A folded line continues the value, its leading whitespace kept (busboy does the same).
      if (i >= end || (body[i] !== 0x20 && body[i] !== 0x09)) break;
    }
    if (++pairs < MAX_HEADER_PAIRS) {
      if (name === 'content-disposition') disposition ??= value;
      else if (name === 'content-type') type ??= value;
    }
  }
  if (disposition === undefined) return undefined;
  const disp = parseDisposition(disposition);
  if (disp === undefined || disp.type !== 'form-data') return undefined;
  const part: MultipartPart = { name: disp.params.get('name') || '', data: EMPTY };
  // Truthiness as busboy: an empty `filename=""` (a browser's empty file input) is no file name.
  const filename = disp.params.get('filename*') || disp.params.get('filename');
  if (filename) part.filename = basename(filename);
  const contentType = type === undefined ? undefined : parseContentType(type);
  if (contentType !== undefined) part.contentType = `${contentType.type}/${contentType.subtype}`;
  return part;
}

const EMPTY = Buffer.alloc(0);

/** busboy's basename: the name after the last `/` or `\`; `.` and `..` become ''. */
function basename(path: string): string {
  const cut = Math.max(path.lastIndexOf('/'), path.lastIndexOf('\\'));
  const name = cut < 0 ? path : path.slice(cut + 1);
  return name === '.' || name === '..' ? '' : name;
}

function parseContentType(str: string): { type: string; subtype: string; params: Map<string, string> } | undefined {
  let i = 0;
  while (i < str.length && TOKEN[str.charCodeAt(i)] === 1) i++;
  if (i === 0 || str.charCodeAt(i) !== 0x2f) return undefined;
  const type = str.slice(0, i).toLowerCase();
  const subtypeStart = ++i;
  while (i < str.length && TOKEN[str.charCodeAt(i)] === 1) i++;
  if (i === subtypeStart) return undefined;
  const subtype = str.slice(subtypeStart, i).toLowerCase();
  const params = parseParams(str, i, false);
  return params === undefined ? undefined : { type, subtype, params };
}

function parseDisposition(str: string): { type: string; params: Map<string, string> } | undefined {
  if (str.length === 0) return undefined;
  let i = 0;
  while (i < str.length && TOKEN[str.charCodeAt(i)] === 1) i++;
  const params = parseParams(str, i, true);
  return params === undefined ? undefined : { type: str.slice(0, i).toLowerCase(), params };
}

/**
 * `; name=value` parameters from `i` (busboy's grammar: token or quoted-string values, names lower-cased, the
 * first of a name kept). Disposition values are UTF-8 (busboy's defParamCharset, as readForm set it) and
 * `name*` ones RFC 5987 `charset'lang'%xx`. Undefined when malformed.
 */
function parseParams(str: string, i: number, disposition: boolean): Map<string, string> | undefined {
  const params = new Map<string, string>();
  const n = str.length;
  for (;;) {
    while (i < n && isWhitespace(str.charCodeAt(i))) i++;
    if (i === n) return params;
    if (str.charCodeAt(i++) !== 0x3b) return undefined;
    while (i < n && isWhitespace(str.charCodeAt(i))) i++;
    if (i === n) return undefined;
    const nameStart = i;
    while (i < n && TOKEN[str.charCodeAt(i)] === 1) i++;
    if (i === n || str.charCodeAt(i) !== 0x3d) return undefined;
    const name = str.slice(nameStart, i);
    i++;
    if (i === n) return undefined;
    let value: string | undefined;
    if (disposition && name.endsWith('*')) {
      const ext = extendedValue(str, i);
      if (ext === undefined) return undefined;
      [value, i] = ext;
    } else {
      if (str.charCodeAt(i) === 0x22) {
        const quoted = quotedString(str, i + 1);
        if (quoted === undefined) return undefined;
        [value, i] = quoted;
      } else {
        const valueStart = i;
        while (i < n && TOKEN[str.charCodeAt(i)] === 1) i++;
        if (i === valueStart) return undefined;
        value = str.slice(valueStart, i);
      }
      if (disposition) value = Buffer.from(value, 'latin1').toString('utf8');
    }
    const key = name.toLowerCase();
    if (!params.has(key)) params.set(key, value);
  }
}

/** A quoted-string's content from just after its opening quote, and the index after its closing one. */
function quotedString(str: string, i: number): [string, number] | undefined {
  let value = '';
  for (; i < str.length; i++) {
    const code = str.charCodeAt(i);
    if (code === 0x5c) {
      // busboy's escapes: `\\` and `\"` stand for the character; before any other, the backslash stays.
      if (++i === str.length) return undefined;
      const next = str.charCodeAt(i);
      if (next !== 0x5c && next !== 0x22) {
        if (QDTEXT[next] !== 1) return undefined;
        value += '\\';
      }
      value += str[i];
      continue;
    }
    if (code === 0x22) return [value, i + 1];
    if (QDTEXT[code] !== 1) return undefined;
    value += str[i];
  }
  return undefined;
}

/** An RFC 5987 value `charset'lang'pct-encoded` from `i`, decoded, and the index after it. */
function extendedValue(str: string, i: number): [string, number] | undefined {
  const n = str.length;
  const charsetStart = i;
  while (i < n && CHARSET[str.charCodeAt(i)] === 1) i++;
  if (i === n || str.charCodeAt(i) !== 0x27) return undefined;
  const charset = str.slice(charsetStart, i).toLowerCase();
  i = str.indexOf("'", i + 1);
  if (i < 0 || ++i === n) return undefined;
  const bytes: number[] = [];
  for (; i < n; i++) {
    const code = str.charCodeAt(i);
    if (EXTENDED_VALUE[code] === 1) bytes.push(code);
    else if (code === 0x25) {
      const hex = i + 2 < n ? parseHexByte(str, i + 1) : -1;
      if (hex < 0) return undefined;
      bytes.push(hex);
      i += 2;
    } else break;
  }
  const decoded = decodeCharset(Buffer.from(bytes), charset);
  return decoded === undefined ? undefined : [decoded, i];
}

function parseHexByte(str: string, i: number): number {
  const hi = HEX.indexOf(str[i]!.toLowerCase());
  const lo = HEX.indexOf(str[i + 1]!.toLowerCase());
  return hi < 0 || lo < 0 ? -1 : (hi << 4) | lo;
}
const HEX = '0123456789abcdef';

/**
 * busboy's decoders for an RFC 5987 charset. Any other charset fails there (its fallback decoder is never
 * bound to the charset), which drops the part; so it does here.
 */
function decodeCharset(bytes: Buffer, charset: string): string | undefined {
  switch (charset) {
    case 'utf-8':
    case 'utf8':
      return bytes.toString('utf8');
    case 'latin1':
    case 'ascii':
    case 'us-ascii':
    case 'iso-8859-1':
    case 'iso8859-1':
    case 'iso88591':
    case 'iso_8859-1':
    case 'windows-1252':
    case 'iso_8859-1:1987':
    case 'cp1252':
    case 'x-cp1252':
      return bytes.toString('latin1');
    case 'utf16le':
    case 'utf-16le':
    case 'ucs2':
    case 'ucs-2':
      return bytes.toString('utf16le');
    case 'base64':
      return bytes.toString('base64');
    default:
      return undefined;
  }
}

function isWhitespace(code: number): boolean {
  return code === 0x20 || code === 0x09;
}

function table(accepts: (code: number) => boolean): Uint8Array {
  const t = new Uint8Array(256);
  for (let c = 0; c < 256; c++) t[c] = accepts(c) ? 1 : 0;
  return t;
}
const isAlnum = (c: number) => (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
const oneOf = (chars: string) => (c: number) => isAlnum(c) || chars.includes(String.fromCharCode(c));
/** RFC 7230 tchar. */
const TOKEN = table(oneOf("!#$%&'*+-.^_`|~"));
/** A header value's bytes: HTAB, visible ASCII and space, obs-text. */
const FIELD_VCHAR = table((c) => c === 0x09 || (c >= 0x20 && c !== 0x7f));
const QDTEXT = table((c) => c === 0x09 || (c >= 0x20 && c !== 0x22 && c !== 0x5c && c !== 0x7f));
/** RFC 5987 charset and attr-char, as busboy's tables have them. */
const CHARSET = table(oneOf("!#$%&+-^_`{}~"));
const EXTENDED_VALUE = table(oneOf("!#$&+-.^_`|~"));
