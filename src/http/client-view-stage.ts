import type { GatewayContext } from './context.js';
import { resolveClient, type TrustedProxies } from './client-view.js';

/**
 * The first stage: a request id (for the access log and problem documents' `instance`) and the
 * client's address and host as far as `trusted_proxies` lets us believe X-Forwarded-*.
 */
export function clientView(trusted: TrustedProxies): (ctx: GatewayContext) => void {
  let requestCounter = 0;
  const idPrefix = `${process.pid.toString(36)}-${Date.now().toString(36)}-`;
  return function identify(ctx: GatewayContext): void {
    ctx.state.reqId = idPrefix + (requestCounter++).toString(36);
    ctx.state.client = resolveClient(ctx.req.socket.remoteAddress, ctx.req.headers, trusted);
  };
}
