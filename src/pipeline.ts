import Router from '@koa/router';
import type Koa from 'koa';
import type { Next } from 'koa';
import type { Logger } from 'pino';
import { anonymous, authenticate, type Authenticator } from './auth/authenticate.js';
import { ownerScope, requireRole, requireScope } from './auth/authorize.js';
import { bodyStage } from './http/body.js';
import { clientView } from './http/client-view-stage.js';
import type { TrustedProxies } from './http/client-view.js';
import type { GatewayContext, GatewayState, Stage } from './http/context.js';
import { hostRequired, missingHost } from './http/host.js';
import { closeIfUnread } from './http/linger.js';
import { announcedLength } from './http/raw-body.js';
import { receiveDeadline, type ExpireRequest } from './http/receive-deadline.js';
import type { RouteSpec } from './http/route.js';
import { BodyBudget } from './http/body-budget.js';
import { RequestFiles, spoolsBody } from './http/spool.js';
import { UploadSlots } from './http/upload-slots.js';
import { unmatched } from './http/unmatched.js';
import { validate } from './http/validate.js';
import type { Keypair } from './keypairs/keypair.js';
import { accessLog } from './observability/access-log.js';
import type { GatewayMetrics } from './observability/metrics.js';
import { problemMiddleware } from './problems/middleware.js';
import type { RateLimiting } from './ratelimit/middleware.js';
import type { PayerLimits } from './ratelimit/payer.js';

/** A stage that wraps the rest of the route's chain (idempotency: it may answer from a stored response). */
export type AroundStage = (ctx: GatewayContext, next: () => Promise<void>) => Promise<void>;

export interface PipelineParts {
  trusted: TrustedProxies;
  problemBaseUri: string;
  log: Logger;
  accessLogger: Logger;
  metrics: GatewayMetrics;
  authenticators: readonly Authenticator[];
  limits: PayerLimits;
  rateLimiting: RateLimiting;
  bodyLimit: number;
  /** Bytes of bodies read into memory at once, all requests together (a quarter per client address). */
  bodyMemory: number;
  /** Every body but a spooled upload's must arrive within `ms` (uploads have the server's longer requestTimeout). */
  receiveDeadline: { ms: number; expire: ExpireRequest };
  /** Upload routes (RouteSpec.upload): the spool folder and the limit of a spooled body. */
  spool: { dir: string; limit: number; maxConcurrent: number };
  idempotency: AroundStage;
  lookup(accessKey: string): Keypair | undefined;
}

/**
 * The request's path, in the order its stages run:
 *
 *  1. client view       request id, client address and host;       http/client-view-stage.ts
 *                       Content-Language: en on every answer
 *  2. problems          every error becomes a problem document     problems/middleware.ts
 *  3. limits            Host header required (HTTP/1.1)            http/host.ts
 *     routing           404/405 for what no route takes            http/unmatched.ts
 *  4. authenticate      a principal; signed routes read the body   auth/authenticate.ts,
 *                       here, since the signature covers its bytes auth/authenticators/hmac.ts
 *                       (upload routes: multipart/zip bodies go   http/spool.ts
 *                       to a spool file, removed when the chain ends)
 *  5. rate limit        the principal's payer is charged           ratelimit/middleware.ts
 *  6. parse             body read (public) or parsed (signed)      http/body.ts
 *  7. authorize         route-declared role (admin)                auth/authorize.ts
 *  8. validate          route's query and body schemas             http/validate.ts
 *  9. idempotency       replays a stored answer, or records it     idempotency/middleware.ts
 * 10. authorize         owner_access_key -> ctx.state.owner        auth/authorize.ts, auth/owner.ts
 * 11. handler           the route                                  routes/, sessions/, models/
 * 12. access log        metrics and one log line (always)          observability/access-log.ts
 *
 * Stages 1-3 and 12 run for every request (three app middlewares). Stages 4-11 are composed per
 * route from only what the route needs, into one router middleware: signed GET /auth/test runs
 * authenticate, rate limit, validate and its handler, nothing else. Owner scoping comes after
 * validation (it reads the validated owner_access_key) and inside idempotency (its 400/403 answers
 * are replayed like the handler's, as they were when handlers resolved owners themselves).
 */
export function mountPipeline(app: Koa<GatewayState>, routes: readonly RouteSpec[], parts: PipelineParts): void {
  const { rateLimiting } = parts;
  const identify = clientView(parts.trusted);
  const record = accessLog(parts.metrics, parts.accessLogger);
  const deadline = receiveDeadline(parts.receiveDeadline.ms, parts.receiveDeadline.expire);
  const budget = new BodyBudget({ total: parts.bodyMemory, bodyLimit: parts.bodyLimit });
  const slots = new UploadSlots({ max: parts.spool.maxConcurrent, limit: parts.spool.limit, dir: parts.spool.dir });
  const anonymousPrincipal = anonymous(parts.limits);
  const signedPrincipal = authenticate(parts.authenticators, parts.limits);

  const router = new Router<GatewayState>();
  for (const route of routes) {
    const signed = route.access === 'signed' || route.access === 'admin';
    const before = [
      signed ? signedPrincipal : anonymousPrincipal,
      route.access === 'operational' ? rateLimiting.rateLimitOperational : rateLimiting.rateLimit,
      bodyStage(signed, route.method, parts.bodyLimit),
      requireRole(route),
      requireScope(route),
      validate(route),
    ].filter((s): s is Stage => s !== undefined);
    const around = signed && route.method !== 'GET' ? parts.idempotency : undefined;
    const after = [ownerScope(route, parts.lookup)].filter((s): s is Stage => s !== undefined);
    const chain = routeChain(before, around, after, route.handler);
    router.register(route.path, [route.method], [route.upload ? spooling(parts.spool, slots, chain) : chain] as never, {
      name: `${route.method} ${route.path}`,
    });
  }

  app.use(async (ctx, next) => {
    const started = process.hrtime.bigint();
    // Every answer (problem documents and 404s included) is written in English; said once, here.
    ctx.set('Content-Language', 'en');
    identify(ctx);
    deadline(ctx);
    ctx.state.bodyBudget = budget;
    try {
      await next();
    } finally {
      closeIfUnread(ctx);
      record(ctx, started);
    }
  });
  app.use(problemMiddleware(parts.problemBaseUri, parts.log));
  app.use(async (ctx, next) => {
    if (missingHost(ctx)) {
      anonymousPrincipal(ctx);
      await rateLimiting.rateLimit(ctx);
      throw hostRequired();
    }
    await next();
  });
  // Matched routes run their own chain; only what no route takes falls through.
  app.use(router.routes());
  app.use(async (ctx) => {
    anonymousPrincipal(ctx);
    await rateLimiting.rateLimit(ctx);
    throw unmatched(router, ctx);
  });
}

/**
 * An upload route's chain: a body of a spooled type (multipart, zip) is marked for the authenticator to
 * stream into the spool folder (http/spool.ts), and every file the request made there is removed when the
 * chain ends, whatever the outcome (answered, refused, failed, or the client gone mid-body).
 */
function spooling(spool: { dir: string; limit: number }, slots: UploadSlots, chain: (ctx: GatewayContext, next: Next) => Promise<void>) {
  return async function upload(ctx: GatewayContext, next: Next): Promise<void> {
    if (!spoolsBody(ctx.get('content-type'))) return chain(ctx, next);
    // Before a byte is read (the signature that covers the body cannot be checked before): bounded disk use.
    const release = slots.acquire(ctx.state.client.address, announcedLength(ctx.req));
    const files = new RequestFiles(spool.dir);
    ctx.state.upload = { limit: spool.limit, files };
    try {
      await chain(ctx, next);
    } finally {
      await files.cleanup();
      release();
    }
  };
}

/** One router middleware for a route: its stages in order, awaiting only those that return a promise. */
function routeChain(before: Stage[], around: AroundStage | undefined, after: Stage[], handler: RouteSpec['handler']) {
  const last =
    after.length === 0
      ? handler
      : async (ctx: GatewayContext) => {
          for (const stage of after) {
            const pending = stage(ctx);
            if (pending !== undefined) await pending;
          }
          await handler(ctx);
        };
  const rest = around === undefined ? last : (ctx: GatewayContext) => around(ctx, async () => last(ctx));
  return async function route(ctx: GatewayContext, _next: Next): Promise<void> {
    for (let i = 0; i < before.length; i++) {
      const pending = before[i]!(ctx);
      if (pending !== undefined) await pending;
    }
    await rest(ctx);
  };
}
