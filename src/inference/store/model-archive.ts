import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import yauzl from 'yauzl';
import yazl from 'yazl';
import { ApiError } from '../../problems/api-error.js';
import { MODEL_NAME_FORMAT } from '../../validation/names.js';
import { parseModelConfig, type ModelConfig } from './model-config.js';
import { domainFolder, type StoredModel } from './model-store.js';

/**
 * The zip form of a models backup (README "Model backups as zip files"):
 *
 *   kernelgate-backup.json                 manifest: format, version, created_at, and per model
 *                                          {domain, name, sha256, bytes}
 *   models/<domain folder>/<name>/config.json   the model's config (as uploaded, defaults filled in)
 *   models/<domain folder>/<name>/model.onnx    the ONNX file (stored, not deflated: weights barely compress)
 *
 * `<domain folder>` is the domain percent-encoded as on disk (store/model-store.ts `domainFolder`), so no
 * domain can spell a path. Nothing here touches HTTP; refusals are 400 ApiErrors (the one error type).
 */
export const MANIFEST_NAME = 'kernelgate-backup.json';
export const ARCHIVE_FORMAT = 'kernelgate-models';
export const ARCHIVE_VERSION = 1;

export interface ArchiveLimits {
  /** Entries in the central directory, directories included. */
  maxEntries: number;
  /** Models listed in the manifest. */
  maxModels: number;
  /** Uncompressed bytes of all entries together. */
  maxTotalBytes: number;
  /** Uncompressed / compressed size of one entry, for entries larger than `ratioFloorBytes`. */
  maxRatio: number;
  ratioFloorBytes: number;
  /** One config.json (labels can be long) and the manifest are read into memory: each bounded. */
  maxConfigBytes: number;
  maxManifestBytes: number;
}

const MiB = 1024 * 1024;

/**
 * The limits for an archive of `archiveBytes` (the request body, itself bounded by server.body_limit_bytes):
 * the whole archive may inflate to at most 100 times its size (plus 1 MiB) and never past 4 GiB. Real ONNX
 * weights compress by a few percent; a zip bomb inflates by up to ~1000 (deflate's limit) per entry and far
 * more with overlapping entries, which the total catches because every entry's size is counted.
 */
export function archiveLimits(archiveBytes: number): ArchiveLimits {
  return {
    maxEntries: 4096,
    maxModels: 1000,
    maxTotalBytes: Math.min(4 * 1024 * MiB, 100 * archiveBytes + MiB),
    maxRatio: 100,
    ratioFloorBytes: MiB,
    maxConfigBytes: 16 * MiB,
    maxManifestBytes: 4 * MiB,
  };
}

interface ManifestModel {
  domain: string;
  name: string;
  sha256: string;
  bytes: number;
}

/** A model read from an archive: its config validated, its ONNX file extracted to `path`, hash checked. */
export interface ExtractedModel {
  /** The domain the archive names (the restore decides where it goes). */
  domain: string;
  config: ModelConfig;
  path: string;
  sha256: string;
  bytes: number;
}

const refuse = (why: string) => new ApiError(400, 'invalid-api-params', `The backup archive was refused, and nothing was changed: ${why}.`);
/** Names from the archive are echoed (they are the client's own bytes), clipped and JSON-quoted. */
const quote = (name: string) => JSON.stringify(name.length > 120 ? `${name.slice(0, 120)}…` : name);

function modelPaths(domain: string, name: string): { config: string; model: string } {
  const base = `models/${domainFolder(domain)}/${name}`;
  return { config: `${base}/config.json`, model: `${base}/model.onnx` };
}

/** A domain as the upload routes accept it (non-empty, its folder name at most 200 characters). */
const validDomain = (d: unknown): d is string => typeof d === 'string' && d !== '' && domainFolder(d).length <= 200;

/** Writes the archive of `models` (the caller picked the domain or domains) into memory. */
export async function writeModelArchive(models: StoredModel[], now = new Date()): Promise<Buffer> {
  const zip = new yazl.ZipFile();
  const manifest = {
    format: ARCHIVE_FORMAT,
    version: ARCHIVE_VERSION,
    created_at: now.toISOString(),
    models: models.map((m): ManifestModel & { task: string } => ({ domain: m.domain, name: m.config.name, task: m.config.task, sha256: m.sha256, bytes: m.bytes })),
  };
  zip.addBuffer(Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`), MANIFEST_NAME, { mtime: now, mode: 0o100644 });
  for (const m of models) {
    let onnx: Buffer;
    try {
      onnx = await readFile(m.path);
    } catch {
      // Replaced or removed between the listing and this read (content-hash file names): the client retries.
      throw new ApiError(503, 'service-unavailable', `The model ${quote(m.config.name)} changed while the backup was being written; retry.`, { headers: { 'Retry-After': '1' } });
    }
    const paths = modelPaths(m.domain, m.config.name);
    const mtime = new Date(m.createdAt);
    const time = Number.isNaN(mtime.getTime()) ? now : mtime;
    zip.addBuffer(Buffer.from(`${JSON.stringify(m.config, null, 2)}\n`), paths.config, { mtime: time, mode: 0o100644 });
    zip.addBuffer(onnx, paths.model, { mtime: time, mode: 0o100644, compress: false });
  }
  zip.end();
  const chunks: Buffer[] = [];
  for await (const chunk of zip.outputStream as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/** Unix file types in the high 16 bits of the external attributes (Info-ZIP). */
const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;

type Slot = { kind: 'manifest' } | { kind: 'config' | 'model'; folder: string; name: string } | { kind: 'directory' };

/** What an entry name may be: the manifest, a model's two files, or a directory on the way to them. */
function classify(fileName: string): Slot | undefined {
  if (fileName === MANIFEST_NAME) return { kind: 'manifest' };
  const parts = fileName.split('/');
  if (fileName.endsWith('/')) {
    const dirs = parts.slice(0, -1);
    const ok = dirs.length >= 1 && dirs.length <= 3 && dirs[0] === 'models' && (dirs.length < 2 || /^[A-Za-z0-9%_~!'()-]{1,200}$/.test(dirs[1]!)) && (dirs.length < 3 || MODEL_NAME_FORMAT.test(dirs[2]!));
    return ok ? { kind: 'directory' } : undefined;
  }
  if (parts.length !== 4 || parts[0] !== 'models' || !MODEL_NAME_FORMAT.test(parts[2]!)) return undefined;
  if (parts[3] === 'config.json') return { kind: 'config', folder: parts[1]!, name: parts[2]! };
  if (parts[3] === 'model.onnx') return { kind: 'model', folder: parts[1]!, name: parts[2]! };
  return undefined;
}

function parseManifest(bytes: Buffer, maxModels: number): ManifestModel[] {
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw refuse(`${MANIFEST_NAME} is not valid JSON`);
  }
  const d = doc as { format?: unknown; version?: unknown; models?: unknown };
  if (d === null || typeof d !== 'object' || d.format !== ARCHIVE_FORMAT) throw refuse(`${MANIFEST_NAME} is not a kernelgate models manifest ("format" must be "${ARCHIVE_FORMAT}")`);
  if (d.version !== ARCHIVE_VERSION) throw refuse(`${MANIFEST_NAME} has version ${JSON.stringify(d.version)}; this gateway reads version ${ARCHIVE_VERSION}`);
  if (!Array.isArray(d.models)) throw refuse(`${MANIFEST_NAME} has no "models" list`);
  if (d.models.length > maxModels) throw refuse(`it lists ${d.models.length} models, more than the limit of ${maxModels}`);
  return d.models.map((m: unknown, i: number) => {
    const e = m as Partial<ManifestModel> | null;
    if (e === null || typeof e !== 'object' || !validDomain(e.domain) || typeof e.name !== 'string' || !MODEL_NAME_FORMAT.test(e.name)
      || typeof e.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(e.sha256) || !Number.isSafeInteger(e.bytes) || e.bytes! < 0) {
      throw refuse(`${MANIFEST_NAME} model #${i + 1} needs "domain", "name" (a model name), "sha256" (64 lower-case hex digits) and "bytes"`);
    }
    return { domain: e.domain, name: e.name, sha256: e.sha256, bytes: e.bytes! };
  });
}

/** Counts and hashes what flows through, refusing past `max` bytes (yauzl's size check is the first guard). */
function meter(max: number): Transform & { bytes: number; hash: ReturnType<typeof createHash> } {
  const hash = createHash('sha256');
  const t = new Transform({
    transform(chunk: Buffer, _enc, done) {
      t.bytes += chunk.length;
      if (t.bytes > max) return done(refuse('an entry inflates past its declared size'));
      hash.update(chunk);
      done(null, chunk);
    },
  }) as Transform & { bytes: number; hash: ReturnType<typeof createHash> };
  t.bytes = 0;
  t.hash = hash;
  return t;
}

/**
 * Reads a backup archive, checking every entry before trusting any: yauzl validates names (no absolute
 * paths, no `..`, no backslashes: `strictFileNames`) and that each entry inflates to exactly its declared
 * size (`validateEntrySizes`), one entry at a time (`lazyEntries`). On top: the entry count and the declared
 * uncompressed total within `limits` (checked before a byte is inflated), no entry with a compression ratio
 * past `maxRatio`, no links or special files (Unix type in the external attributes), no encrypted entries,
 * no name twice (also ignoring case), nothing outside the layout, and the manifest, every config and every
 * model hash in agreement. Model files are streamed into `extractDir` under names of our own (never the
 * entry's). Anything wrong: one 400 ApiError, and only files inside `extractDir` were written.
 */
export async function extractModelArchive(
  zipSource: Buffer | { path: string; size: number },
  extractDir: string,
  limits: ArchiveLimits = archiveLimits(Buffer.isBuffer(zipSource) ? zipSource.length : zipSource.size),
): Promise<ExtractedModel[]> {
  let zip: yauzl.ZipFile;
  const options = { lazyEntries: true, decodeStrings: true, validateEntrySizes: true, strictFileNames: true, autoClose: false };
  try {
    zip = await new Promise<yauzl.ZipFile>((resolve, reject) => {
      const done = (err: Error | null, z?: yauzl.ZipFile) => (err ? reject(err) : resolve(z!));
      // A spooled archive is read where it lies (yauzl reads the central directory and each entry by offset).
      if (Buffer.isBuffer(zipSource)) yauzl.fromBuffer(zipSource, options, done);
      else yauzl.open(zipSource.path, options, done);
    });
  } catch (error) {
    throw refuse(`it is not a readable zip file (${zipReason(error, Buffer.isBuffer(zipSource) ? undefined : zipSource.path)})`);
  }
  try {
    return await extractEntries(zip, extractDir, limits);
  } finally {
    // Closes the spool file's descriptor (autoClose is off: the end of the entries is not the end of the reads).
    try {
      zip.close();
    } catch {
      // already closed after a refusal
    }
  }
}

async function extractEntries(zip: yauzl.ZipFile, extractDir: string, limits: ArchiveLimits): Promise<ExtractedModel[]> {
  if (zip.entryCount > limits.maxEntries) throw refuse(`it has ${zip.entryCount} entries, more than the limit of ${limits.maxEntries}`);

  let manifest: Buffer | undefined;
  const configs = new Map<string, Buffer>();
  const files = new Map<string, { path: string; sha256: string; bytes: number }>();
  const seen = new Set<string>();
  let total = 0;
  let count = 0;

  const read = async (entry: yauzl.Entry): Promise<void> => {
    const name = entry.fileName;
    if (++count > limits.maxEntries) throw refuse(`it has more than ${limits.maxEntries} entries`);
    const key = name.normalize('NFC').toLowerCase().replace(/\/+$/, '');
    if (seen.has(key)) throw refuse(`the entry ${quote(name)} appears twice (names are compared ignoring case)`);
    seen.add(key);
    const type = (entry.externalFileAttributes >>> 16) & S_IFMT;
    if (type !== 0 && type !== S_IFREG && type !== S_IFDIR) throw refuse(`the entry ${quote(name)} is a link or a special file, not a regular file`);
    if (entry.isEncrypted()) throw refuse(`the entry ${quote(name)} is encrypted`);
    if (entry.compressionMethod !== 0 && entry.compressionMethod !== 8) throw refuse(`the entry ${quote(name)} uses compression method ${entry.compressionMethod}; only stored and deflate are read`);
    const slot = classify(name);
    if (slot === undefined) throw refuse(`the entry ${quote(name)} is not part of a kernelgate backup (expected ${MANIFEST_NAME} and models/<domain>/<name>/config.json, model.onnx)`);
    const size = entry.uncompressedSize;
    if (slot.kind === 'directory') {
      if (size !== 0) throw refuse(`the directory entry ${quote(name)} carries data`);
      return;
    }
    if (size > limits.ratioFloorBytes && size > limits.maxRatio * Math.max(entry.compressedSize, 1)) {
      throw refuse(`the entry ${quote(name)} would inflate ${Math.round(size / Math.max(entry.compressedSize, 1))} times (at most ${limits.maxRatio} is accepted)`);
    }
    total += size;
    if (total > limits.maxTotalBytes) throw refuse(`its entries would inflate past ${limits.maxTotalBytes} bytes, the limit for an archive of this size`);
    if (slot.kind === 'manifest' && size > limits.maxManifestBytes) throw refuse(`${MANIFEST_NAME} is larger than ${limits.maxManifestBytes} bytes`);
    if (slot.kind === 'config' && size > limits.maxConfigBytes) throw refuse(`the entry ${quote(name)} is larger than ${limits.maxConfigBytes} bytes`);

    let stream: Readable;
    try {
      stream = await new Promise<Readable>((resolve, reject) => zip.openReadStream(entry, (err, s) => (err ? reject(err) : resolve(s))));
    } catch (error) {
      throw refuse(`the entry ${quote(name)} cannot be read (${zipReason(error)})`);
    }
    let readFailed: unknown;
    stream.on('error', (e) => (readFailed ??= e));
    if (slot.kind === 'model') {
      const path = join(extractDir, `${files.size}.onnx`);
      const m = meter(size);
      try {
        await pipeline(stream, m, createWriteStream(path, { flags: 'wx', mode: 0o600 }));
      } catch (error) {
        if (error instanceof ApiError) throw error;
        if (readFailed !== undefined) throw refuse(`the entry ${quote(name)} is corrupt (${zipReason(readFailed)})`);
        throw error; // our own disk: a server fault, not the client's
      }
      files.set(`${slot.folder}/${slot.name}`, { path, sha256: m.hash.digest('hex'), bytes: m.bytes });
      return;
    }
    const chunks: Buffer[] = [];
    try {
      await pipeline(stream, meter(size), async (source: AsyncIterable<Buffer>) => {
        for await (const chunk of source) chunks.push(chunk);
      });
    } catch (error) {
      if (error instanceof ApiError) throw error;
      throw refuse(`the entry ${quote(name)} is corrupt (${zipReason(readFailed ?? error)})`);
    }
    if (slot.kind === 'manifest') manifest = Buffer.concat(chunks);
    else configs.set(`${slot.folder}/${slot.name}`, Buffer.concat(chunks));
  };

  await new Promise<void>((resolve, reject) => {
    let failed = false;
    const fail = (error: unknown) => {
      if (failed) return;
      failed = true;
      try {
        zip.close();
      } catch {
        // already closed by yauzl after its own error
      }
      reject(error instanceof ApiError ? error : refuse(`it is not a valid zip file (${zipReason(error)})`));
    };
    zip.on('error', fail);
    zip.on('entry', (entry: yauzl.Entry) => read(entry).then(() => !failed && zip.readEntry(), fail));
    zip.on('end', () => {
      if (!failed) resolve();
    });
    zip.readEntry();
  });

  if (manifest === undefined) throw refuse(`it has no ${MANIFEST_NAME}`);
  const listed = parseManifest(manifest, limits.maxModels);
  const out: ExtractedModel[] = [];
  const claimed = new Set<string>();
  for (const m of listed) {
    const key = `${domainFolder(m.domain)}/${m.name}`;
    if (claimed.has(key)) throw refuse(`${MANIFEST_NAME} lists ${quote(`${m.domain}/${m.name}`)} twice`);
    claimed.add(key);
    const paths = modelPaths(m.domain, m.name);
    const configBytes = configs.get(key);
    const file = files.get(key);
    if (configBytes === undefined) throw refuse(`${paths.config} is missing`);
    if (file === undefined) throw refuse(`${paths.model} is missing`);
    if (file.sha256 !== m.sha256 || file.bytes !== m.bytes) throw refuse(`${paths.model} does not match the sha256 and size in ${MANIFEST_NAME}`);
    let raw: unknown;
    try {
      raw = JSON.parse(configBytes.toString('utf8'));
    } catch {
      throw refuse(`${paths.config} is not valid JSON`);
    }
    let config: ModelConfig;
    try {
      config = parseModelConfig(raw);
    } catch (error) {
      throw refuse(`${paths.config}: ${(error as Error).message.replace(/\.$/, '')}`);
    }
    if (config.name !== m.name) throw refuse(`${paths.config} names the model ${quote(config.name)}, not ${quote(m.name)}`);
    out.push({ domain: m.domain, config, path: file.path, sha256: file.sha256, bytes: file.bytes });
  }
  const stray = [...new Set([...configs.keys(), ...files.keys()])].find((k) => !claimed.has(k));
  if (stray !== undefined) throw refuse(`models/${stray}/ is not listed in ${MANIFEST_NAME}`);
  return out;
}

/** yauzl's and zlib's messages, first line, clipped: they describe the client's bytes; a spool file's path is taken out. */
function zipReason(error: unknown, path?: string): string {
  let message = error instanceof Error ? error.message : String(error);
  if (path !== undefined) message = message.split(path).join('the archive');
  return message.split('\n')[0]!.slice(0, 160);
}
