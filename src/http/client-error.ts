import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import { ApiError } from '../problems/api-error.js';
import { problemDocument } from '../problems/middleware.js';

export interface ClientErrorDeps {
  headerLimitBytes: number;
  problemBaseUri: string;
  /** Charges the peer and returns its rate-limit headers, or none when there is no decision to report. */
  chargePeer(socket: Socket): Promise<Record<string, string>>;
}

function problemFor(error: NodeJS.ErrnoException, headerLimitBytes: number): ApiError {
  if (error.code === 'HPE_HEADER_OVERFLOW') {
    return new ApiError(431, 'request-header-fields-too-large', `Request headers exceed ${headerLimitBytes} bytes.`);
  }
  if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') return new ApiError(408, 'generic-bad-request', 'The request was not completed in time.');
  return new ApiError(400, 'generic-bad-request', 'Malformed HTTP request.');
}

/** The error Node raises at its requestTimeout, for the same answer when the pipeline's own deadline passes. */
export function requestTimedOut(): NodeJS.ErrnoException {
  return Object.assign(new Error('request timed out'), { code: 'ERR_HTTP_REQUEST_TIMEOUT' });
}

/**
 * The `clientError` handler: what Node's HTTP parser refuses never reaches Koa,
 * yet it still gets a problem document and rate-limit headers, written raw.
 */
export function answerClientErrors(deps: ClientErrorDeps) {
  return (error: NodeJS.ErrnoException, socket: Socket): void => {
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    void (async () => {
      const limitHeaders = await deps.chargePeer(socket).catch(() => ({}));
      if (!socket.writable) return socket.destroy();
      const problem = problemFor(error, deps.headerLimitBytes);
      const body = JSON.stringify(problemDocument(problem, deps.problemBaseUri));
      const extra = Object.entries(limitHeaders).map(([k, v]) => `${k}: ${v}\r\n`).join('');
      socket.end(
        `HTTP/1.1 ${problem.status} ${STATUS_CODES[problem.status]}\r\nContent-Type: application/problem+json\r\n` +
          `${extra}Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      );
    })();
  };
}
