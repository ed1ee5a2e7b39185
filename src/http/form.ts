/**
 * A form body: multipart (what every DeepStack client sends: `image`, `min_confidence`,
 * `api_key`, files `model` / `config`) or urlencoded (Python `requests.post(data=...)` without files).
 * Parsed from the body authentication already read: bytes in memory (within the body limit) are split in place
 * (http/multipart.ts: no stream machinery on the hot path, parts are subarrays of the body); a spooled upload's
 * file (within the upload limit) is fed to busboy as a stream. Both are linear in the body. The file parts an
 * upload route names (`toDisk`) are written straight to spool files, never gathered in memory.
 * A field given twice is refused (which one would count?); a part over its limit is a 413.
 */
import busboy from 'busboy';
import { ApiError } from '../problems/api-error.js';
import { canonicalContentType } from '../signing/canonical.js';
import { isFilePart, malformedMultipart, multipartBoundary, multipartParts } from './multipart.js';
import { feedBody, memoryBody, type RequestBody } from './request-body.js';
import { spoolPart, type DiskFile, type RequestFiles } from './spool.js';

export type { DiskFile } from './spool.js';

export interface FormLimits {
  /** Largest file part (and `image` sent as a plain field), bytes. */
  maxFileBytes: number;
  /**
   * A spooled upload's form: file parts named in `names` go to files of the request's spool (removed with
   * it), up to maxFileBytes each; every other part stays in memory, up to `maxMemoryBytes`.
   */
  toDisk?: { names: ReadonlySet<string>; files: RequestFiles; maxMemoryBytes: number };
}

export interface Form {
  /** Text fields, as latin1 strings (bytes kept: `curl -F 'image=<f'` sends the image as a field). */
  fields: Map<string, string>;
  files: Map<string, Buffer>;
  /** The file parts `toDisk` named, as spool files. */
  diskFiles: Map<string, DiskFile>;
  /** The first file part, whatever its name (CodeProject.AI's OCR takes any). */
  firstFile?: Buffer;
}

/** The upload limits of a form of a spooled body (undefined when the body is in memory). */
export function diskLimits(body: RequestBody, state: { upload?: { files: RequestFiles } }, names: string[], maxMemoryBytes: number): FormLimits['toDisk'] {
  if (body.path === undefined || state.upload === undefined) return undefined;
  return { names: new Set(names), files: state.upload.files, maxMemoryBytes };
}

/** Text fields other than an image are short: a name, a number, a key. */
export const MAX_TEXT_FIELD_BYTES = 4096;
const MAX_PARTS = 32;

const twice = (name: string) => new ApiError(400, 'invalid-api-params', `Form field ${JSON.stringify(name.slice(0, 64))} is given more than once.`);
const malformedType = () => new ApiError(400, 'invalid-api-params', 'Malformed multipart Content-Type (no boundary?).');
const tooLarge = (name: string, limit: number) => new ApiError(413, 'request-too-large', `Form part ${JSON.stringify(name.slice(0, 64))} is larger than ${limit} bytes.`);

export async function readForm(raw: Buffer | RequestBody, contentType: string | undefined, limits: FormLimits): Promise<Form> {
  const type = canonicalContentType(contentType);
  const form: Form = { fields: new Map(), files: new Map(), diskFiles: new Map() };
  const body = Buffer.isBuffer(raw) ? memoryBody(raw) : raw;
  if (body.size === 0) return form;
  if (type === 'application/x-www-form-urlencoded') {
    // Never spooled (not an upload type): the bytes are in memory, within the body limit.
    for (const [k, v] of new URLSearchParams((body.bytes ?? Buffer.alloc(0)).toString('latin1'))) {
      if (form.fields.has(k)) throw twice(k);
      if (form.fields.size >= MAX_PARTS) throw new ApiError(400, 'invalid-api-params', `More than ${MAX_PARTS} form fields.`);
      form.fields.set(k, v);
    }
    return form;
  }
  if (type !== 'multipart/form-data') {
    throw new ApiError(415, 'unsupported-media-type', 'Send a multipart/form-data body (fields "image", "min_confidence", ...), as DeepStack clients do.');
  }
  if (body.bytes !== undefined && limits.toDisk === undefined) return readMemoryForm(body.bytes, contentType!, limits, form);
  return readStreamedForm(body, contentType!, limits, form);
}

/**
 * A body in memory, split in place (its file parts are subarrays of it, not copies). The parts are checked in
 * order, so the first refusal is the one busboy's events gave for the same body.
 */
function readMemoryForm(bytes: Buffer, contentType: string, limits: FormLimits, form: Form): Form {
  const boundary = multipartBoundary(contentType);
  if (boundary === undefined) throw malformedType();
  for (const part of multipartParts(bytes, boundary, MAX_PARTS)) {
    const { name, data } = part;
    if (form.fields.has(name) || form.files.has(name)) throw twice(name);
    if (isFilePart(part)) {
      if (data.length > limits.maxFileBytes) throw tooLarge(name, limits.maxFileBytes);
      form.files.set(name, data);
      form.firstFile ??= data;
    } else {
      const limit = name === 'image' ? limits.maxFileBytes : MAX_TEXT_FIELD_BYTES;
      if (data.length > limit) throw tooLarge(name, limit);
      form.fields.set(name, data.toString('latin1'));
    }
  }
  return form;
}

/** A spooled body, or one whose file parts go to disk: streamed through busboy. */
function readStreamedForm(body: RequestBody, contentType: string, limits: FormLimits, form: Form): Promise<Form> {
  const toDisk = limits.toDisk;
  return new Promise((resolve, reject) => {
    let parser: busboy.Busboy;
    try {
      parser = busboy({
        headers: { 'content-type': contentType },
        defCharset: 'latin1',
        defParamCharset: 'utf8',
        // A spooled form's plain fields are held in memory by busboy: bounded by the memory limit, not the upload's.
        limits: { files: MAX_PARTS, fields: MAX_PARTS, parts: MAX_PARTS, fileSize: limits.maxFileBytes + 1, fieldSize: (toDisk?.maxMemoryBytes ?? limits.maxFileBytes) + 1, fieldNameSize: 200 },
      });
    } catch {
      reject(malformedType());
      return;
    }
    let failure: ApiError | undefined;
    const fail = (e: ApiError) => (failure ??= e);
    // Names are taken when a part starts: a file's bytes arrive after busboy may already have emitted the next
    // part, so checking the maps (filled at a file's end) would miss a field of the same name.
    const names = new Set<string>();
    let firstFileName: string | undefined;
    // File parts being written to the spool: the form is complete when busboy is done and they are on disk.
    const writing: Array<Promise<void>> = [];
    // busboy names a part without a name (or with name="") undefined; '' keeps the duplicate check (and its
    // error message) from throwing a TypeError out of busboy's event, which crashed the process on a spooled body.
    parser.on('file', (partName, stream) => {
      const name = partName ?? '';
      stream.on('error', () => fail(malformedMultipart()));
      if (names.has(name)) {
        fail(twice(name));
        stream.resume();
        return;
      }
      names.add(name);
      firstFileName ??= name;
      stream.on('limit', () => fail(tooLarge(name, limits.maxFileBytes)));
      if (toDisk?.names.has(name)) {
        writing.push(
          spoolPart(stream, toDisk.files).then((written) => {
            if (written instanceof ApiError) fail(written);
            else if (written !== undefined && !failure) form.diskFiles.set(name, written);
          }),
        );
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      const memoryLimit = toDisk?.maxMemoryBytes;
      stream.on('data', (c: Buffer) => {
        size += c.length;
        if (memoryLimit !== undefined && size > memoryLimit) return void fail(tooLarge(name, memoryLimit));
        if (!failure) chunks.push(c);
      });
      stream.on('end', () => {
        if (failure) return;
        const data = Buffer.concat(chunks);
        form.files.set(name, data);
        if (name === firstFileName) form.firstFile = data;
      });
    });
    parser.on('field', (partName, value, info) => {
      const name = partName ?? '';
      if (names.has(name)) return void fail(twice(name));
      names.add(name);
      // Only `image` may be large (a file sent without a filename); every other field is short text.
      const limit = name === 'image' ? limits.maxFileBytes : MAX_TEXT_FIELD_BYTES;
      if (info.valueTruncated || Buffer.byteLength(value, 'latin1') > limit) return void fail(tooLarge(name, limit));
      form.fields.set(name, value);
    });
    for (const limit of ['partsLimit', 'filesLimit', 'fieldsLimit'] as const) {
      parser.on(limit, () => fail(new ApiError(400, 'invalid-api-params', `More than ${MAX_PARTS} form parts.`)));
    }
    parser.on('error', () => reject(failure ?? malformedMultipart()));
    parser.on('close', () => {
      void Promise.all(writing).then(() => (failure ? reject(failure) : resolve(form)));
    });
    feedBody(body, parser, () => reject(malformedMultipart()));
  });
}

/** A text field, decoded as UTF-8 (undefined when absent). */
export function textField(form: Form, name: string): string | undefined {
  const v = form.fields.get(name);
  return v === undefined ? undefined : Buffer.from(v, 'latin1').toString('utf8');
}

/** The `image` part: a file, or a plain field holding the bytes. */
export function imagePart(form: Form): Buffer | undefined {
  const file = form.files.get('image');
  if (file !== undefined) return file;
  const field = form.fields.get('image');
  return field === undefined ? undefined : Buffer.from(field, 'latin1');
}
