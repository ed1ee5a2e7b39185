import type { GatewayContext } from './context.js';
import { ApiError } from '../problems/api-error.js';

/** Node's own check is off (it would answer a bare 400): a missing Host gets a problem document. */
export function missingHost(ctx: GatewayContext): boolean {
  return ctx.req.headers.host === undefined && ctx.req.httpVersion === '1.1';
}

export function hostRequired(): ApiError {
  return new ApiError(400, 'generic-bad-request', 'HTTP/1.1 requests need a Host header.');
}
