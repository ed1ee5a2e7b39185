import type { GatewayContext } from './context.js';
import type { HashAlgorithm } from '../signing/algorithms.js';
import { holdBodyMemory } from './body-budget.js';
import { readRawBody } from './raw-body.js';
import { spoolBody } from './spool.js';

const EMPTY = Buffer.alloc(0);

/**
 * Reads a signed request's body once, for its authenticator: into memory within `bodyLimit` (ctx.state.rawBody;
 * every ordinary route, the hot path), or, when the pipeline marked the request as an upload to spool
 * (ctx.state.upload), into a spool file within the upload limit, hashed with `algorithms` on the way
 * (ctx.state.requestBody; rawBody is then empty). Returns what the signature check hashes.
 */
export async function readSignedBody(ctx: GatewayContext, bodyLimit: number, algorithms: readonly HashAlgorithm[]) {
  const upload = ctx.state.upload;
  if (upload === undefined) {
    holdBodyMemory(ctx);
    const bytes = await readRawBody(ctx.req, bodyLimit);
    ctx.state.rawBody = bytes;
    return bytes;
  }
  const body = await spoolBody(ctx.req, upload, algorithms);
  ctx.state.rawBody = EMPTY;
  ctx.state.requestBody = body;
  return body;
}
