import type { Socket } from 'node:net';
import type { GatewayContext } from '../http/context.js';
import { resolveClient, type TrustedProxies } from '../http/client-view.js';
import type { Keypair } from '../keypairs/keypair.js';
import { ApiError } from '../problems/api-error.js';
import { charge, rateLimitHeaders, refuseIfOver } from './charge.js';
import { addressPayer, keypairPayer, type Payer, type PayerLimits } from './payer.js';
import type { RateLimitStore } from './types.js';

/**
 * The one place requests are charged: every request pays once, to the payer of the principal
 * authentication left on ctx.state (a keypair, or the client address for unsigned requests and
 * failed authentications). Charging twice is a no-op.
 */
export interface RateLimiting {
  /**
   * The rate-limit stage: charges `ctx.state.principal`'s payer (429 when over), then throws the
   * deferred authentication failure, if any, now that its address has paid for it.
   */
  rateLimit(ctx: GatewayContext): Promise<void>;
  /** The same for health and metrics: served even when a fail-closed limiter refuses everything else (503). */
  rateLimitOperational(ctx: GatewayContext): Promise<void>;
  /**
   * Before a body is read: 429 when the claimed keypair (if it exists and is usable) or the client
   * address is already over its limit. Spends nothing (the keypair is not verified yet).
   */
  refuseBeforeBody(ctx: GatewayContext, claimed: Keypair | undefined): Promise<void>;
  /** For Node's `clientError` path: no headers were parsed, so the peer itself pays. */
  chargePeer(socket: Socket): Promise<Record<string, string>>;
}

export function rateLimiting(store: RateLimitStore, limits: PayerLimits, windowSeconds: number, trusted: TrustedProxies): RateLimiting {
  const rateLimit = async (ctx: GatewayContext): Promise<void> => {
    await charge(ctx, store, ctx.state.principal!.payer, windowSeconds);
    if (ctx.state.authFailure !== undefined) throw ctx.state.authFailure;
  };
  return {
    rateLimit,
    rateLimitOperational: (ctx) =>
      rateLimit(ctx).catch((error: unknown) => {
        if (!(error instanceof ApiError && error.status === 503)) throw error;
      }),
    refuseBeforeBody(ctx, claimed) {
      const payers: Payer[] = [];
      if (claimed !== undefined) payers.push(keypairPayer(claimed, limits));
      payers.push(addressPayer(ctx.state.client.address, limits));
      return refuseIfOver(ctx, store, payers, windowSeconds);
    },
    async chargePeer(socket) {
      // Behind a proxy that is the proxy's own bucket, which forwarded requests never spend.
      const payer = addressPayer(resolveClient(socket.remoteAddress, {}, trusted).address, limits);
      const decision = await store.consume(payer.key, payer.limit, windowSeconds);
      return rateLimitHeaders(decision, payer.policy);
    },
  };
}
