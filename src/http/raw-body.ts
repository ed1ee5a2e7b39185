import getRawBody from 'raw-body';
import type { IncomingMessage } from 'node:http';
import { ApiError } from '../problems/api-error.js';

const EMPTY = Buffer.alloc(0);

/** Whether the request announces a body (a non-zero Content-Length or any Transfer-Encoding). */
export function requestHasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/** The body size the request announces (Content-Length), or undefined (none, chunked, or not a number). */
export function announcedLength(req: IncomingMessage): number | undefined {
  const length = req.headers['content-length'];
  return length !== undefined && /^\d+$/.test(length) ? Number(length) : undefined;
}

/**
 * Reads the request body once, as bytes, within `limit`. The signature covers
 * these exact bytes whatever the content type; parsers work from this buffer.
 */
export async function readRawBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const length = req.headers['content-length'];
  if (!requestHasBody(req)) return EMPTY;
  if (length !== undefined && Number(length) > limit) {
    // Refuse before reading a byte; Node closes the connection after the reply.
    throw tooLarge(limit);
  }
  try {
    return await getRawBody(req, { limit, length });
  } catch (error) {
    const type = (error as { type?: string }).type;
    if (type === 'entity.too.large') throw tooLarge(limit);
    if (type === 'request.size.invalid') throw new ApiError(400, 'generic-bad-request', 'Request body length does not match Content-Length.');
    throw new ApiError(400, 'generic-bad-request', 'The request body could not be read.');
  }
}

function tooLarge(limit: number): ApiError {
  return new ApiError(
    413,
    'request-too-large',
    `Request body is larger than ${limit} bytes, the gateway's limit (config key server.body_limit_bytes); send a smaller body or ask the operator to raise the limit.`,
  );
}
