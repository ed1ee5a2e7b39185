import { parseBody } from './body-parsers.js';
import type { GatewayContext, Stage } from './context.js';
import { holdBodyMemory } from './body-budget.js';
import { readRawBody } from './raw-body.js';

/**
 * The body stage, after the request is charged. Signed requests had their bytes read by
 * authentication (the signature covers them): only parse them. Public ones read them here,
 * size-limited, and never parse them. None for a signed GET or HEAD: a body there has no
 * meaning, so nothing in it is honoured.
 */
export function bodyStage(signed: boolean, method: string, bodyLimit: number): Stage | undefined {
  if (!signed) {
    return async function readBody(ctx: GatewayContext): Promise<void> {
      holdBodyMemory(ctx);
      ctx.state.rawBody = await readRawBody(ctx.req, bodyLimit);
    };
  }
  if (method === 'GET' || method === 'HEAD') return undefined;
  return function parse(ctx: GatewayContext): void {
    ctx.state.body = parseBody(ctx.state.rawBody, ctx.get('content-type'));
  };
}
