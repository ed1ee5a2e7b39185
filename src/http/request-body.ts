/**
 * A request body as the stages after authentication see it: bytes in memory (every ordinary route, the hot
 * path) or a spool file (upload routes, http/spool.ts). Signature verification, idempotency and form parsing
 * read it through this one type and do not care which.
 */
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { bodyHash, type HashAlgorithm } from '../signing/algorithms.js';

export interface RequestBody {
  readonly size: number;
  /** The bytes, when the body is held in memory; undefined when it was spooled to a file. */
  readonly bytes: Buffer | undefined;
  /** The spool file of a spooled body (removed when the request ends). */
  readonly path: string | undefined;
  /**
   * Hex digest of the body. A spooled body has the digests computed while it was written (the signature's
   * algorithm and sha256); asking it for another is a programming error.
   */
  digest(algorithm: HashAlgorithm): string;
  /** The bytes from the start, as a stream (a spooled body: read from its file). */
  stream(): Readable;
}

export function memoryBody(bytes: Buffer): RequestBody {
  return {
    size: bytes.length,
    bytes,
    path: undefined,
    digest: (algorithm) => bodyHash(algorithm, bytes),
    stream: () => Readable.from([bytes]),
  };
}

export function spooledBody(path: string, size: number, digests: ReadonlyMap<HashAlgorithm, string>): RequestBody {
  return {
    size,
    bytes: undefined,
    path,
    digest(algorithm) {
      const d = size === 0 ? bodyHash(algorithm, undefined) : digests.get(algorithm);
      if (d === undefined) throw new Error(`spooled body: no ${algorithm} digest was computed`);
      return d;
    },
    stream: () => createReadStream(path),
  };
}

/** Feeds the body to a stream parser (busboy): its bytes at once, or its spool file streamed; `onReadError` if that read fails. */
export function feedBody(body: RequestBody, parser: NodeJS.WritableStream, onReadError: () => void): void {
  if (body.bytes !== undefined) {
    parser.end(body.bytes);
    return;
  }
  const source = body.stream();
  source.on('error', onReadError);
  source.pipe(parser);
}

/** The request's body, whichever way it was read (an empty one when none was). */
export function bodyOf(state: { requestBody?: RequestBody; rawBody?: Buffer }): RequestBody {
  return state.requestBody ?? memoryBody(state.rawBody ?? Buffer.alloc(0));
}
