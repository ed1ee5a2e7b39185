import type { ParameterizedContext } from 'koa';
import type { Verified } from '../auth/verify.js';
import type { ClientView } from '../http/client-view.js';
import type { Keypair } from '../keypairs/keypair.js';

/** What the middleware chain leaves on ctx.state for handlers. */
export interface GatewayState {
  reqId: string;
  client: ClientView;
  rawBody: Buffer;
  /** Parsed JSON or form body, when there is one. */
  body?: Record<string, unknown>;
  auth?: Verified;
  /** The keypair the request acts for (the requester, or its owner_access_key). */
  owner?: Keypair;
  rateLimited?: boolean;
}

export type GatewayContext = ParameterizedContext<GatewayState>;
