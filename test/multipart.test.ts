/**
 * The in-memory multipart splitter (src/http/multipart.ts) that readForm uses for bodies in memory, checked
 * against busboy (which it replaces there and which still reads spooled uploads): generated well-formed forms
 * parse to the same parts and the same Form; arbitrary and mutated bodies never throw anything but ApiError,
 * and whatever the splitter accepts busboy reads the same way (it only refuses more); long adversarial bodies
 * stay fast; and the forms DeepStack clients and curl send.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import busboy from 'busboy';
import fc from 'fast-check';
import { imagePart, readForm, textField, type Form, type FormLimits } from '../src/http/form.js';
import { isFilePart, multipartBoundary, multipartParts } from '../src/http/multipart.js';
import type { RequestBody } from '../src/http/request-body.js';
import { ApiError } from '../src/problems/api-error.js';
import { deepstackPython, multipartBody } from './helpers/deepstack.js';

const RUNS = 400;
const LIMITS: FormLimits = { maxFileBytes: 1 << 20 };

/** One part as both parsers see it: busboy's events, or the splitter's parts. */
interface SeenPart {
  name: string;
  filename: string | undefined;
  contentType: string;
  file: boolean;
  data: Buffer;
}
type Seen = SeenPart[] | 'refused';

/** busboy on the whole body, as readForm configured it (latin1 fields, UTF-8 parameters), without limits. */
function busboyParts(body: Buffer, contentType: string): Promise<Seen> {
  return new Promise((resolve) => {
    let parser: busboy.Busboy;
    try {
      parser = busboy({ headers: { 'content-type': contentType }, defCharset: 'latin1', defParamCharset: 'utf8', limits: { fieldSize: Infinity } });
    } catch {
      resolve('refused');
      return;
    }
    const parts: SeenPart[] = [];
    parser.on('file', (name, stream, info) => {
      const chunks: Buffer[] = [];
      const part: SeenPart = { name: name ?? '', filename: info.filename, contentType: info.mimeType, file: true, data: Buffer.alloc(0) };
      parts.push(part);
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => (part.data = Buffer.concat(chunks)));
      stream.on('error', () => undefined);
    });
    parser.on('field', (name, value, info) => parts.push({ name: name ?? '', filename: undefined, contentType: info.mimeType, file: false, data: Buffer.from(value, 'latin1') }));
    parser.on('error', () => resolve('refused'));
    parser.on('close', () => resolve(parts));
    parser.end(body);
  });
}

function splitterParts(body: Buffer, contentType: string): Seen {
  try {
    const boundary = multipartBoundary(contentType);
    if (boundary === undefined) return 'refused';
    return [...multipartParts(body, boundary, 1000)].map((p) => ({ name: p.name, filename: p.filename, contentType: p.contentType ?? 'text/plain', file: isFilePart(p), data: Buffer.from(p.data) }));
  } catch (error) {
    assert.ok(error instanceof ApiError, `not an ApiError: ${String(error)}`);
    assert.equal(error.status, 400);
    return 'refused';
  }
}

/** readForm as it was for every body: busboy, fed the bytes as a stream (the spooled path, still busboy's). */
function streamedBody(bytes: Buffer): RequestBody {
  return { size: bytes.length, bytes: undefined, path: '/unused', digest: () => '', stream: () => Readable.from([bytes]) };
}

type Outcome = { form: Form } | { status: number; message: string };
async function outcome(p: Promise<Form>): Promise<Outcome> {
  try {
    return { form: await p };
  } catch (error) {
    assert.ok(error instanceof ApiError, `not an ApiError: ${String(error)}`);
    return { status: error.status, message: error.message };
  }
}

/**
 * The Form as plain data (a Buffer's subarray and busboy's copy compare equal). busboy gave a part without a
 * name (or with `name=""`) the name undefined; the splitter gives it ''.
 */
function plain(o: Outcome): unknown {
  if (!('form' in o)) return o;
  const { fields, files, firstFile } = o.form;
  return { fields: [...fields].map(([k, v]) => [k ?? '', v]), files: [...files].map(([k, v]) => [k ?? '', v.toString('hex')]), firstFile: firstFile?.toString('hex') };
}

// --- generated well-formed forms -------------------------------------------------------------------------------

/** RFC 2046 bchars (the space not last). */
const BCHARS = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'()+_,-./:=? ";
const isToken = (s: string) => /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(s);
const quote = (s: string) => `"${s.replace(/[\\"]/g, '\\$&')}"`;

const boundaryArb = fc.string({ unit: fc.constantFrom(...BCHARS), minLength: 1, maxLength: 70 }).filter((b) => !b.endsWith(' '));
/** Names and file names: ASCII with the characters quoting has to handle, and unicode (sent as UTF-8). */
const textArb = fc.string({ unit: fc.oneof(fc.constantFrom(...'abc_-. "\\\';=/%é€'), fc.constantFrom('😀', 'ü', '名', '\t')), maxLength: 16 });
const ows = fc.constantFrom('', ' ', '\t', '  ');
const caseOf = (s: string) => fc.constantFrom(s, s.toLowerCase(), s.toUpperCase());

const dataArb = (boundary: string) =>
  fc
    .array(
      fc.oneof(
        fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b)),
        fc.constantFrom('\r\n', '--', '\r\n--', '\r\n-', '\r', '\n').map((s) => Buffer.from(s)),
        // Delimiters cut short: every prefix of `\r\n--boundary` but the whole.
        fc.nat({ max: boundary.length - 1 }).map((k) => Buffer.from(`\r\n--${boundary.slice(0, k)}`)),
        fc.nat({ max: boundary.length }).map((k) => Buffer.from(`--${boundary.slice(0, k)}`)),
      ),
      { maxLength: 8 },
    )
    .map((chunks) => Buffer.concat(chunks));

interface GenPart {
  headers: string[];
  data: Buffer;
}

const partArb = (boundary: string) =>
  fc
    .record({
      name: textArb,
      nameToken: fc.boolean(),
      filename: fc.option(fc.tuple(textArb, fc.constantFrom('', 'dir/', 'C:\\x\\')), { nil: undefined, freq: 2 }),
      extended: fc.boolean(),
      type: fc.option(fc.constantFrom('image/jpeg', 'application/octet-stream', 'Image/PNG; q=1', 'text/plain', 'garbage', 'application/OCTET-STREAM'), { nil: undefined }),
      dispName: caseOf('Content-Disposition'),
      typeName: caseOf('Content-Type'),
      formData: caseOf('form-data'),
      sep: fc.tuple(ows, ows, ows),
      fold: fc.boolean(),
      typeFirst: fc.boolean(),
      extra: fc.boolean(),
      data: dataArb(boundary),
    })
    .map((p): GenPart => {
      const value = (s: string) => (p.nameToken && isToken(s) ? s : quote(s));
      const semi = `${p.sep[0]};${p.fold ? '\r\n ' : p.sep[1]}`;
      let disposition = `${p.dispName}:${p.sep[2]}${p.formData}${semi}name=${value(p.name)}`;
      if (p.filename !== undefined) {
        const filename = p.filename[1] + p.filename[0];
        disposition += p.extended
          ? `${semi}filename=${quote('fallback')}${semi}filename*=utf-8''${encodeURIComponent(filename).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16)}`)}`
          : `${semi}filename=${quote(filename)}`;
      }
      const headers = [disposition];
      if (p.type !== undefined) headers[p.typeFirst ? 'unshift' : 'push'](`${p.typeName}: ${p.type}`);
      if (p.extra) headers.push('X-Note: \tsomething');
      return { headers, data: p.data };
    });

const formArb = boundaryArb.chain((boundary) =>
  fc.record({
    boundary: fc.constant(boundary),
    quoted: fc.boolean(),
    typeCase: caseOf('multipart/form-data'),
    parts: fc.array(partArb(boundary), { maxLength: 6 }),
    preamble: fc.option(dataArb(boundary), { nil: undefined }),
    epilogue: fc.option(fc.oneof(dataArb(boundary), fc.constant(Buffer.from('\r\n'))), { nil: undefined }),
  }),
);

/** The body and Content-Type of a generated form; undefined when its data happen to contain the delimiter. */
function encodeForm(f: { boundary: string; quoted: boolean; typeCase: string; parts: GenPart[]; preamble?: Buffer; epilogue?: Buffer }): { body: Buffer; contentType: string } | undefined {
  const chunks: Buffer[] = [];
  if (f.preamble !== undefined) chunks.push(f.preamble, Buffer.from('\r\n'));
  for (const p of f.parts) chunks.push(Buffer.from(`--${f.boundary}\r\n${p.headers.map((h) => `${h}\r\n`).join('')}\r\n`), p.data, Buffer.from('\r\n'));
  chunks.push(Buffer.from(`--${f.boundary}--`));
  // busboy goes on parsing an epilogue that arrives with the close delimiter; so none has a delimiter either.
  const form = Buffer.concat([Buffer.from('\r\n'), ...chunks, f.epilogue ?? Buffer.alloc(0)]);
  const needle = Buffer.from(`\r\n--${f.boundary}`);
  let found = 0;
  for (let at = form.indexOf(needle); at >= 0; at = form.indexOf(needle, at + 1)) found++;
  if (found !== f.parts.length + 1) return undefined;
  const param = f.quoted || !isToken(f.boundary) ? quote(f.boundary) : f.boundary;
  return { body: Buffer.concat([...chunks, f.epilogue ?? Buffer.alloc(0)]), contentType: `${f.typeCase}; boundary=${param}` };
}

/**
 * The body up to its close delimiter. busboy keeps parsing whatever follows the close delimiter in the same
 * write (it swaps its search out only for later writes), so an epilogue holding delimiters gave it more parts,
 * or an error, depending on how the body was chunked; the splitter ignores any epilogue, as RFC 2046 says.
 */
function withoutEpilogue(body: Buffer, contentType: string): Buffer {
  const needle = Buffer.from(`\r\n--${multipartBoundary(contentType)}`);
  const stream = Buffer.concat([Buffer.from('\r\n'), body]);
  for (let at = stream.indexOf(needle); at >= 0; at = stream.indexOf(needle, at + needle.length)) {
    const end = at + needle.length;
    if (stream[end] === 0x2d && stream[end + 1] === 0x2d) return body.subarray(0, end);
  }
  return body;
}

// --- mutations ---------------------------------------------------------------------------------------------------

const mutationArb = fc.array(
  fc.record({ at: fc.nat(), kind: fc.constantFrom('flip', 'delete', 'duplicate', 'insert'), len: fc.integer({ min: 1, max: 12 }), byte: fc.constantFrom(0x0d, 0x0a, 0x2d, 0x22, 0x3b, 0x3a, 0x20, 0x00, 0xff, 0x5c) }),
  { minLength: 1, maxLength: 4 },
);

function mutate(body: Buffer, mutations: Array<{ at: number; kind: string; len: number; byte: number }>): Buffer {
  let b = body;
  for (const m of mutations) {
    const at = b.length === 0 ? 0 : m.at % b.length;
    if (m.kind === 'flip' && b.length > 0) b = Buffer.concat([b.subarray(0, at), Buffer.from([m.byte]), b.subarray(at + 1)]);
    else if (m.kind === 'delete') b = Buffer.concat([b.subarray(0, at), b.subarray(at + m.len)]);
    else if (m.kind === 'duplicate') b = Buffer.concat([b.subarray(0, at + m.len), b.subarray(at)]);
    else b = Buffer.concat([b.subarray(0, at), Buffer.alloc(m.len, m.byte), b.subarray(at)]);
  }
  return b;
}

describe('multipart splitter', () => {
  it('differential: generated well-formed forms parse to the same parts as busboy, and readForm to the same Form', async () => {
    await fc.assert(
      fc.asyncProperty(formArb, async (f) => {
        const encoded = encodeForm(f);
        fc.pre(encoded !== undefined);
        const { body, contentType } = encoded!;
        const ours = splitterParts(body, contentType);
        assert.notEqual(ours, 'refused', 'a well-formed form is accepted');
        assert.deepEqual(ours, await busboyParts(body, contentType));
        const now = plain(await outcome(readForm(body, contentType, LIMITS)));
        const before = plain(await outcome(readForm(streamedBody(body), contentType, LIMITS)));
        assert.deepEqual(now, before);
      }),
      { numRuns: RUNS },
    );
  });

  it('fuzz: arbitrary and mutated bodies give an ApiError or parts busboy reads the same way', async () => {
    const typeArb = fc.constantFrom('multipart/form-data; boundary=b', 'multipart/form-data', 'multipart/form-data; boundary="a b"', 'multipart/form-data; boundary=', 'multipart/form-data; boundary="x', 'multipart/mixed; boundary=b');
    const bodies = fc.oneof(
      fc.tuple(fc.uint8Array({ maxLength: 600 }).map((b) => Buffer.from(b)), typeArb),
      fc.tuple(fc.string({ unit: fc.constantFrom('-', '\r', '\n', 'b', ':', ';', ' ', '"', 'a'), maxLength: 300 }).map((s) => Buffer.from(s)), typeArb),
      fc.tuple(formArb, mutationArb).map(([f, m]) => {
        const encoded = encodeForm(f);
        return encoded === undefined ? undefined : ([mutate(encoded.body, m), encoded.contentType] as [Buffer, string]);
      }),
    );
    await fc.assert(
      fc.asyncProperty(bodies, async (input) => {
        fc.pre(input !== undefined);
        const [body, contentType] = input!;
        const form = await outcome(readForm(body, contentType, LIMITS));
        if ('status' in form) assert.ok(form.status === 400 || form.status === 413 || form.status === 415, `status ${form.status}`);
        const ours = splitterParts(body, contentType);
        if (ours !== 'refused') assert.deepEqual(ours, await busboyParts(withoutEpilogue(body, contentType), contentType), 'accepted, so read as busboy reads it');
      }),
      { numRuns: RUNS * 3 },
    );
  });

  it('long adversarial bodies are answered within a time bound, with an ApiError or the right parts', async () => {
    const b70 = `${'a'.repeat(69)}b`;
    const cases: Array<{ body: Buffer; contentType: string; check: (o: Outcome) => void }> = [];
    const refused = (o: Outcome) => assert.ok('status' in o && o.status === 400, JSON.stringify(plain(o)).slice(0, 200));
    // 8 MB of delimiters cut one byte short, inside a file part: read whole.
    const near = Buffer.from(`\r\n--${b70.slice(0, -1)}`.repeat(Math.ceil((8 << 20) / 74))).subarray(0, 8 << 20);
    const big = Buffer.concat([Buffer.from(`--${b70}\r\nContent-Disposition: form-data; name="image"; filename="x"\r\n\r\n`), near, Buffer.from(`\r\n--${b70}--\r\n`)]);
    cases.push({ body: big, contentType: `multipart/form-data; boundary=${b70}`, check: (o) => assert.ok('form' in o && o.form.files.get('image')?.equals(near)) });
    // The same without the closing delimiter, and as the preamble of a body that never has a delimiter.
    cases.push({ body: big.subarray(0, big.length - 80), contentType: `multipart/form-data; boundary=${b70}`, check: refused });
    cases.push({ body: Buffer.alloc(8 << 20, 'a'), contentType: `multipart/form-data; boundary=${b70}`, check: refused });
    // Only dashes and CRLFs.
    for (const body of [Buffer.alloc(8 << 20, '-'), Buffer.from('\r\n'.repeat(4 << 20)), Buffer.from('-\r\n'.repeat(3 << 20)), Buffer.from('\r\n--'.repeat(2 << 20))]) {
      for (const boundary of ['b', '-', '--', '-'.repeat(70)]) cases.push({ body, contentType: `multipart/form-data; boundary="${boundary}"`, check: () => undefined });
    }
    // 10^5 tiny parts: refused past the part limit, without reading the rest.
    const tiny = Buffer.from(`${Array.from({ length: 100_000 }, (_, i) => `--b\r\nContent-Disposition: form-data; name="a${i}"\r\n\r\nv\r\n`).join('')}--b--`);
    cases.push({ body: tiny, contentType: 'multipart/form-data; boundary=b', check: (o) => assert.ok('status' in o && /More than 32 form parts/.test(o.message)) });
    // Headers that never end, and 16 KiB of header lines per part.
    cases.push({ body: Buffer.from(`--b\r\nContent-Disposition: form-data; name="a"${'; x=y'.repeat(1 << 20)}`), contentType: 'multipart/form-data; boundary=b', check: refused });
    cases.push({ body: Buffer.from(`--b\r\n${'X: y\r\n'.repeat(1 << 20)}\r\nv\r\n--b--`), contentType: 'multipart/form-data; boundary=b', check: refused });
    for (const c of cases) {
      const started = performance.now();
      const o = await outcome(readForm(c.body, c.contentType, { maxFileBytes: 16 << 20 }));
      const took = performance.now() - started;
      c.check(o);
      assert.ok(took < 1000, `${took.toFixed(0)} ms for ${c.body.subarray(0, 40).toString('latin1')}…`);
    }
  });

  it('what deepstack-python sends: api_key and min_confidence fields, then the image file', async () => {
    const image = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x0d, 0x0a, 0x2d, 0x2d, 0x00, 0xff, 0xd9]);
    const { body, contentType } = deepstackPython(image, 'secret-key', { min_confidence: '0.45' });
    const form = await readForm(body, contentType, LIMITS);
    assert.equal(textField(form, 'api_key'), 'secret-key');
    assert.equal(textField(form, 'min_confidence'), '0.45');
    assert.deepEqual(imagePart(form), image);
    assert.deepEqual(form.firstFile, image);
    assert.equal(form.fields.size + form.files.size, 3);
  });

  it("curl -F 'image=<file': the image as a plain field, its bytes kept", async () => {
    const image = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0xe9, 0x80, 0xff]);
    const boundary = '------------------------d74496d66958873e';
    const body = Buffer.concat([
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="image"\r\n\r\n`),
      image,
      Buffer.from(`\r\n--${boundary}\r\nContent-Disposition: form-data; name="min_confidence"\r\n\r\n0.6\r\n--${boundary}--\r\n`),
    ]);
    const form = await readForm(body, `multipart/form-data; boundary=${boundary}`, LIMITS);
    assert.equal(form.files.size, 0);
    assert.equal(form.firstFile, undefined);
    assert.deepEqual(imagePart(form), image);
    assert.equal(textField(form, 'min_confidence'), '0.6');
    // Past the image limit it is a 413, as a file would be; any other field past 4096 bytes too.
    await assert.rejects(readForm(body, `multipart/form-data; boundary=${boundary}`, { maxFileBytes: image.length - 1 }), (e: ApiError) => e.status === 413);
  });

  it('malformed bodies and Content-Types are the 400s readForm always gave', async () => {
    const ok = multipartBody([{ name: 'a', value: '1' }], 'b');
    const cut = ok.body.subarray(0, ok.body.indexOf('--b--'));
    for (const body of [cut, Buffer.concat([cut, Buffer.from('--b')]), Buffer.concat([cut, Buffer.from('--b-')])]) {
      await assert.rejects(readForm(body, ok.contentType, LIMITS), (e: ApiError) => e.status === 400 && e.slug === 'invalid-api-params' && e.message === 'Malformed multipart body.');
    }
    for (const type of ['multipart/form-data', 'multipart/form-data; charset=utf-8', 'multipart/form-data; boundary', 'multipart/form-data; boundary="b', 'multipart/form-data; boundary=""', `multipart/form-data; boundary=${'b'.repeat(71)}`]) {
      await assert.rejects(readForm(ok.body, type, LIMITS), (e: ApiError) => e.status === 400 && e.message === 'Malformed multipart Content-Type (no boundary?).');
    }
    // A quoted boundary is the same boundary; parameter names are case-insensitive.
    assert.equal(textField(await readForm(ok.body, 'Multipart/Form-Data; charset=x; BOUNDARY="b"', LIMITS), 'a'), '1');
  });

  it('busboy behaviour copied: filename rules, octet-stream parts, header case and folding, preamble and epilogue', () => {
    const parts = (text: string) => [...multipartParts(Buffer.from(text, 'latin1'), 'b', 32)].map((p) => ({ ...p, data: p.data.toString('latin1') }));
    assert.deepEqual(parts('preamble\r\n--b\r\ncontent-disposition: form-data; name="a"; filename=""\r\n\r\nv\r\n--b--epilogue'), [{ name: 'a', data: 'v' }], 'an empty filename is a field');
    assert.deepEqual(parts('--b\r\nCONTENT-DISPOSITION:form-data;name=a;\r\n\tfilename="C:\\\\dir\\\\x.jpg"\r\n\r\n\r\n--b--'), [{ name: 'a', filename: 'x.jpg', data: '' }]);
    assert.deepEqual(parts(`--b\r\nContent-Disposition: form-data; name="a"; filename="f"; filename*=UTF-8''%E2%82%AC.png\r\n\r\nv\r\n--b--`), [{ name: 'a', filename: '€.png', data: 'v' }]);
    assert.deepEqual(parts('--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: form-data; name="q\\"\\\\\\x"\r\n\r\nv\r\n--b--'), [{ name: 'q"\\\\x', contentType: 'application/octet-stream', data: 'v' }]);
    assert.deepEqual(parts('--b\r\nX: y\r\n\r\nskipped\r\n--b\r\nContent-Disposition: attachment; name=c\r\n\r\nskipped\r\n--b--'), [], 'parts that are not form-data are skipped');
    assert.ok(isFilePart({ name: 'a', contentType: 'application/octet-stream', data: Buffer.alloc(0) }));
  });

  it("busboy behaviour not copied: data it would drop, a nameless part, the 32nd part, a field's charset", async () => {
    const refused = (text: string) => assert.throws(() => [...multipartParts(Buffer.from(text), 'b', 32)], (e: ApiError) => e.status === 400, text);
    // busboy silently skips a part whose delimiter is followed by anything but CRLF (transport padding included).
    refused('--b \r\nContent-Disposition: form-data; name="a"\r\n\r\nv\r\n--b--');
    refused('--b\r\n--b--');
    refused('--b\r\nContent-Disposition: form-data; name="a"\r\n--b\r\n\r\nv\r\n--b--');
    // Two nameless fields: a 400 (busboy's undefined name made readForm throw a TypeError: a 500 in memory, a crash streamed).
    const nameless = Buffer.from('--b\r\nContent-Disposition: form-data\r\n\r\n1\r\n--b\r\nContent-Disposition: form-data; name=""\r\n\r\n2\r\n--b--');
    await assert.rejects(readForm(nameless, 'multipart/form-data; boundary=b', LIMITS), (e: ApiError) => e.status === 400 && /more than once/.test(e.message));
    // The streamed (spooled) path, still busboy's, now answers the same instead of crashing.
    await assert.rejects(readForm(streamedBody(nameless), 'multipart/form-data; boundary=b', LIMITS), (e: ApiError) => e.status === 400 && /more than once/.test(e.message));
    // MAX_PARTS (32) parts are accepted; busboy counted the closing delimiter as a part and refused the 32nd.
    const many = multipartBody(Array.from({ length: 32 }, (_, i) => ({ name: `f${i}`, value: `${i}` })));
    assert.equal((await readForm(many.body, many.contentType, LIMITS)).fields.size, 32);
    const more = multipartBody(Array.from({ length: 33 }, (_, i) => ({ name: `f${i}`, value: `${i}` })));
    await assert.rejects(readForm(more.body, more.contentType, LIMITS), (e: ApiError) => e.status === 400 && /More than 32/.test(e.message));
    // A field's declared charset: busboy decoded the value with it, and readForm then read that string as
    // latin1 bytes, mangling anything non-ASCII (.NET's StringContent declares utf-8); the bytes are kept now.
    const declared = Buffer.from('--b\r\nContent-Disposition: form-data; name="label"\r\nContent-Type: text/plain; charset=utf-8\r\n\r\ncafé ☕\r\n--b--');
    assert.equal(textField(await readForm(declared, 'multipart/form-data; boundary=b', LIMITS), 'label'), 'café ☕');
    assert.notEqual(textField(await readForm(streamedBody(declared), 'multipart/form-data; boundary=b', LIMITS), 'label'), 'café ☕', 'busboy');
  });
});
