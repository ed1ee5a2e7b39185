import type { ParameterizedContext } from 'koa';
import type { Principal } from '../auth/principal.js';
import type { Verified } from '../auth/verify.js';
import type { ClientView } from './client-view.js';
import type { Keypair } from '../keypairs/keypair.js';
import type { BodyBudget } from './body-budget.js';
import type { RequestBody } from './request-body.js';
import type { UploadSpool } from './spool.js';

/** What the middleware chain leaves on ctx.state for handlers. */
export interface GatewayState {
  reqId: string;
  client: ClientView;
  /** The body bytes, when read into memory (every route but a spooled upload, whose rawBody is empty). */
  rawBody: Buffer;
  /** A spooled upload's body (http/spool.ts); read it through http/request-body.ts `bodyOf`. */
  requestBody?: RequestBody;
  /** Set by the pipeline on an upload route whose body type is spooled: where and how much to spool. */
  upload?: UploadSpool;
  /** Set by the pipeline: what a body read into memory reserves first (http/body-budget.ts). */
  bodyBudget?: BodyBudget;
  /** Parsed JSON or form body, when there is one. */
  body?: Record<string, unknown>;
  /** Who the request is and who pays: set by the authenticate stage, before anything is charged. */
  principal?: Principal;
  /** A failed authentication, thrown by the rate-limit stage once the address has paid for it. */
  authFailure?: unknown;
  /** What the HMAC signature proved (keypair, and whether it covers the body). */
  auth?: Verified;
  /** An owner named by the credentials themselves (x-api-key next to a bearer token), checked by the owner rules. */
  credentialOwner?: string;
  /** The keypair the request acts for (the requester, or its owner_access_key). */
  owner?: Keypair;
  rateLimited?: boolean;
}

export type GatewayContext = ParameterizedContext<GatewayState>;

/**
 * One step of a route's chain that runs before the next (authenticate, rate limit, authorize,
 * validate, ...): it throws to answer, or returns to go on. Sync stages return nothing, so the
 * chain awaits only what is asynchronous.
 */
export type Stage = (ctx: GatewayContext) => void | Promise<void>;
