/**
 * Upload bodies (models, backups) spooled to disk instead of memory. A route marked `upload` in its RouteSpec
 * has a body of a spoolable type (multipart, zip) read once from the socket into a file of the gateway's
 * private spool folder, with the digests the signature needs computed while it is written and
 * `server.upload_limit_bytes` enforced as it streams. Every file a request creates there (the body, form parts
 * written out by the form parser) is removed when the request's chain ends, whatever the outcome.
 */
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { chmodSync, createWriteStream, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiError } from '../problems/api-error.js';
import type { HashAlgorithm } from '../signing/algorithms.js';
import { canonicalContentType } from '../signing/canonical.js';
import { requestHasBody } from './raw-body.js';
import { currentOwner, type SpoolOwner } from './spool-owner.js';
import { MARKER_SUFFIX, openSpoolParent } from './spool-sweep.js';
import { memoryBody, spooledBody, type RequestBody } from './request-body.js';

/** Body types an upload route spools; anything else (JSON with base64, urlencoded) is read into memory as usual. */
export const SPOOLED_TYPES = new Set(['multipart/form-data', 'application/zip', 'application/x-zip-compressed']);

/**
 * The gateway's spool folder: created private (0700) at start, removed at close. It lives under the user's
 * spool parent in the OS temp folder, beside an owner marker, so that a later gateway can remove it if this
 * one is killed (http/spool-sweep.ts). Where that parent is refused, a private folder of the temp folder.
 */
export interface SpoolDir {
  readonly path: string;
  /** The user's spool parent, where the start-up sweep looks. */
  readonly parent: string;
  /** Why the parent was refused (then `path` is a private folder directly under the temp folder). */
  readonly refused?: string;
  close(): void;
}

export function createSpoolDir(base = tmpdir(), owner: SpoolOwner = currentOwner()): SpoolDir {
  const parent = openSpoolParent(base);
  if ('refused' in parent) {
    const path = mkdtempSync(join(base, 'kernelgate-spool-'));
    chmodSync(path, 0o700);
    return { path, parent: parent.path, refused: parent.refused, close: () => rmSync(path, { recursive: true, force: true }) };
  }
  const name = `${owner.pid}-${randomBytes(8).toString('hex')}`;
  const path = join(parent.path, name);
  const marker = `${path}${MARKER_SUFFIX}`;
  // The marker first: a folder never exists without the marker that lets a sweep judge it.
  writeFileSync(marker, JSON.stringify(owner), { flag: 'wx', mode: 0o600 });
  mkdirSync(path, { mode: 0o700 });
  chmodSync(path, 0o700);
  return {
    path,
    parent: parent.path,
    close: () => {
      rmSync(path, { recursive: true, force: true });
      rmSync(marker, { force: true });
    },
  };
}

/** The files one request created in the spool folder, removed together when the request ends. */
export class RequestFiles {
  private readonly paths: string[] = [];
  constructor(private readonly dir: string) {}

  /** A fresh path in the spool folder (the caller creates the file with mode 0600). */
  newPath(suffix: string): string {
    const path = join(this.dir, `${randomBytes(12).toString('hex')}${suffix}`);
    this.paths.push(path);
    return path;
  }

  async cleanup(): Promise<void> {
    const paths = this.paths.splice(0);
    await Promise.all(paths.map((p) => rm(p, { force: true })));
  }
}

/** A multipart file part written to the spool folder, with its SHA-256 (hex) taken as it was written. */
export interface DiskFile {
  path: string;
  size: number;
  sha256: string;
}

/**
 * Writes one multipart file part's stream to a new spool file (0600) of the request. Resolves the file when
 * it is written; the 503 to answer when the spool folder cannot be written (the rest of the part is
 * discarded); undefined when the part was cut short (a malformed body, which the parser reports; the
 * request's cleanup removes the file).
 */
export function spoolPart(stream: NodeJS.ReadableStream, files: RequestFiles): Promise<DiskFile | ApiError | undefined> {
  return new Promise((done) => {
    const path = files.newPath('.part');
    const out = createWriteStream(path, { flags: 'wx', mode: 0o600 });
    let size = 0;
    const hash = createHash('sha256');
    stream.on('data', (c: Buffer) => {
      size += c.length;
      hash.update(c);
    });
    stream.on('error', () => {
      out.destroy();
      done(undefined);
    });
    out.on('error', () => {
      stream.resume();
      done(new ApiError(503, 'service-unavailable', 'The upload could not be written to the spool folder; retry later.'));
    });
    out.on('finish', () => done({ path, size, sha256: hash.digest('hex') }));
    stream.pipe(out);
  });
}

/** What the pipeline gives an upload route's request whose body is to be spooled. */
export interface UploadSpool {
  limit: number;
  files: RequestFiles;
}

/** Whether an upload route's request spools its body (by its content type). */
export function spoolsBody(contentType: string | undefined): boolean {
  return SPOOLED_TYPES.has(canonicalContentType(contentType));
}

export function uploadTooLarge(limit: number): ApiError {
  return new ApiError(
    413,
    'request-too-large',
    `Upload is larger than ${limit} bytes, the gateway's limit for uploads (config key server.upload_limit_bytes); send a smaller file or ask the operator to raise the limit.`,
  );
}

const unreadable = () => new ApiError(400, 'generic-bad-request', 'The request body could not be read.');

/**
 * Reads the body once from the socket into a new spool file (mode 0600), hashing it with each of
 * `algorithms` as it goes and stopping at `limit` (413; the rest stays unread and the answer closes the
 * connection). On any failure the file is removed before the error is thrown.
 */
export function spoolBody(req: IncomingMessage, spool: UploadSpool, algorithms: readonly HashAlgorithm[]): Promise<RequestBody> {
  const { limit, files } = spool;
  const length = req.headers['content-length'];
  if (length !== undefined && Number(length) > limit) return Promise.reject(uploadTooLarge(limit));
  // No body announced: nothing to spool (an empty body in memory reads and hashes the same).
  if (!requestHasBody(req)) return Promise.resolve(memoryBody(Buffer.alloc(0)));
  const path = files.newPath('.body');
  const hashes = new Map<HashAlgorithm, Hash>(algorithms.map((a) => [a, createHash(a)]));
  return new Promise((resolve, reject) => {
    const out = createWriteStream(path, { flags: 'wx', mode: 0o600 });
    let size = 0;
    let settled = false;
    const detach = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onFail);
      req.off('close', onClose);
    };
    const fail = (error: ApiError) => {
      if (settled) return;
      settled = true;
      detach();
      // Stop reading: what is left of the body stays in the socket, and the answer closes it (http/linger.ts).
      req.pause();
      out.destroy();
      rm(path, { force: true }).then(() => reject(error), () => reject(error));
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) return fail(uploadTooLarge(limit));
      for (const h of hashes.values()) h.update(chunk);
      if (!out.write(chunk)) {
        req.pause();
        out.once('drain', () => settled || req.resume());
      }
    };
    const onEnd = () => {
      if (settled) return;
      detach();
      out.end(() => {
        if (settled) return;
        settled = true;
        resolve(spooledBody(path, size, new Map([...hashes].map(([a, h]) => [a, h.digest('hex')]))));
      });
    };
    const onFail = () => fail(unreadable());
    // A client gone mid-body: the request closes before it completed.
    const onClose = () => req.complete || fail(unreadable());
    out.on('error', () => fail(new ApiError(503, 'service-unavailable', 'The upload could not be written to the spool folder; retry later.')));
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('error', onFail);
    req.once('close', onClose);
  });
}
