import type Router from '@koa/router';
import { ApiError } from '../problems/api-error.js';
import type { GatewayContext, GatewayState } from './context.js';

/** What no route takes: 405 with `Allow` when the path exists for other methods, else 404. */
export function unmatched(router: Router<GatewayState>, ctx: GatewayContext): ApiError {
  const match = router.match(ctx.path, ctx.method);
  if (match.path.length > 0) {
    const allowed = [...new Set(match.path.flatMap((layer) => layer.methods))].join(', ');
    return new ApiError(405, 'method-not-allowed', `${ctx.method} is not allowed on ${ctx.path}.`, { headers: { Allow: allowed } });
  }
  return new ApiError(404, 'url-not-found', `No route for ${ctx.path}.`);
}
