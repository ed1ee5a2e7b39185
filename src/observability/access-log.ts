import type { Logger } from 'pino';
import type { GatewayContext } from '../http/context.js';
import type { GatewayMetrics } from './metrics.js';

/**
 * The last stage, run when the response is settled (errors included): the request's duration
 * into the metrics and one access-log line of fixed fields that never hold secrets.
 */
export function accessLog(metrics: GatewayMetrics, log: Logger): (ctx: GatewayContext, started: bigint) => void {
  return function record(ctx: GatewayContext, started: bigint): void {
    const route = (ctx as unknown as { _matchedRoute?: string })._matchedRoute ?? 'unmatched';
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    metrics.record(ctx.method, route, ctx.status, seconds);
    const principal = ctx.state.principal;
    if (principal?.keypair !== undefined && principal.scheme !== 'backendai') metrics.recordCredential(principal.scheme, principal.credentialId);
    log.info({
      reqId: ctx.state.reqId,
      method: ctx.method,
      route,
      status: ctx.status,
      ms: Math.round(seconds * 10000) / 10,
      client: ctx.state.client.address,
      accessKey: ctx.state.auth?.keypair.accessKey,
      // The scheme and credential id (token subject), never the credential itself.
      ...(ctx.state.principal !== undefined && ctx.state.principal.scheme !== 'backendai' && ctx.state.principal.scheme !== 'anonymous'
        ? { scheme: ctx.state.principal.scheme, credentialId: ctx.state.principal.credentialId }
        : {}),
      owner: ctx.state.owner?.accessKey,
    }, 'request');
  };
}
