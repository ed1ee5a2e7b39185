import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import Router from '@koa/router';
import { Ajv, type ValidateFunction } from 'ajv';
import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import { publicRequest, signedRequest } from '../auth/middleware.js';
import type { VerifyPolicy } from '../auth/verify.js';
import { answerClientErrors } from '../http/client-error.js';
import { addressBucket, resolveClient, TrustedProxies } from '../http/client-view.js';
import { KeypairStore } from '../keypairs/keypair-store.js';
import { ApiError } from '../problems/api-error.js';
import { problemMiddleware } from '../problems/middleware.js';
import { charge, rateLimitHeaders, refuseIfOver, type Payer } from '../ratelimit/charge.js';
import { isUsable } from '../keypairs/keypair.js';
import { requestHasBody } from '../http/raw-body.js';
import { lingerOnClose } from '../http/linger.js';
import type { RateLimitStore } from '../ratelimit/types.js';
import { SigningDateCache } from '../signing/dates.js';
import { SigningKeyCache } from '../signing/signing-key.js';
import type { GatewayContext, GatewayState } from './context.js';
import { createAccessLogger, createLogger } from './logger.js';
import { createMetrics } from './metrics.js';
import type { RouteSpec } from './route.js';
import { basicRoutes } from './routes/basics.js';
import { buildOpenApi } from './routes/openapi.js';
import { operationalRoutes } from './routes/operational.js';
import { createStores } from './stores.js';
import { idempotency } from '../idempotency/middleware.js';
import { KernelRegistry } from '../inference/registry.js';
import { sessionRoutes } from '../sessions/routes.js';
import { modelRoutes } from '../models/routes.js';
import type { SessionStore } from '../sessions/types.js';

export interface Gateway {
  app: Koa<GatewayState>;
  server: Server;
  config: Config;
  log: Logger;
  keypairs: KeypairStore;
  rateLimits: RateLimitStore;
  sessions: SessionStore;
  kernels: KernelRegistry;
  listen(): Promise<AddressInfo>;
  close(): Promise<void>;
}

export interface GatewayOptions {
  log?: Logger;
}

const ajv = new Ajv({ allErrors: false, coerceTypes: false, strict: false });

function validator(schema: Record<string, unknown> | undefined): ValidateFunction | undefined {
  return schema === undefined ? undefined : ajv.compile(schema);
}

function invalid(where: string, v: ValidateFunction): ApiError {
  const e = v.errors?.[0];
  const path = e?.instancePath ? e.instancePath.slice(1).replace(/\//g, '.') : '';
  return new ApiError(400, 'invalid-api-params', `Invalid ${where}${path ? ` "${path}"` : ''}: ${e?.message ?? 'invalid'}.`);
}

export async function createGateway(config: Config, opts: GatewayOptions = {}): Promise<Gateway> {
  const log = opts.log ?? createLogger(config.log.level);
  const metrics = createMetrics();
  const keypairs = new KeypairStore(config.keypairs.dir, log);
  keypairs.start();
  const stores = await createStores(config, log);
  const rateLimits = stores.rateLimits;
  const kernels = new KernelRegistry(config.inference, log);
  const trusted = new TrustedProxies(config.server.trusted_proxies);
  const metricsAllow = (() => {
    try {
      return new TrustedProxies(config.server.metrics_allow);
    } catch (error) {
      throw new Error(String((error as Error).message).replace('trusted_proxies', 'server.metrics_allow'));
    }
  })();
  metrics.observe({
    queues: () => kernels.queues(),
    degraded: () => ({ ratelimit: rateLimits.health().status !== 'ok' }),
  });
  const policy: VerifyPolicy = {
    algorithms: new Set(config.auth.algorithms),
    skewMs: config.auth.skew_seconds * 1000,
    bodyHashMode: config.auth.body_hash,
    apiVersions: new Set(config.auth.api_versions),
  };
  const keyCache = new SigningKeyCache();
  const dateCache = new SigningDateCache();
  const windowSeconds = config.ratelimit.window_seconds;

  const chargeAnonymous = (ctx: GatewayContext) =>
    charge(ctx, rateLimits, { key: `ip:${addressBucket(ctx.state.client.address)}`, limit: config.ratelimit.anonymous_limit, policy: 'anonymous' }, windowSeconds);
  const chargeKeypair = (ctx: GatewayContext) => {
    const k = ctx.state.auth!.keypair;
    return charge(ctx, rateLimits, { key: `ak:${k.accessKey}`, limit: k.rateLimit ?? config.ratelimit.default_limit, policy: 'keypair' }, windowSeconds);
  };
  const refuseBeforeBody = (ctx: GatewayContext, claimed: string) => {
    const payers: Payer[] = [];
    const k = keypairs.get(claimed);
    if (k !== undefined && isUsable(k, Date.now())) {
      payers.push({ key: `ak:${k.accessKey}`, limit: k.rateLimit ?? config.ratelimit.default_limit, policy: 'keypair' });
    }
    payers.push({ key: `ip:${addressBucket(ctx.state.client.address)}`, limit: config.ratelimit.anonymous_limit, policy: 'anonymous' });
    return refuseIfOver(ctx, rateLimits, payers, windowSeconds);
  };
  const authDeps = {
    policy,
    bodyLimit: config.server.body_limit_bytes,
    verifyContext: () => ({ lookup: (ak: string) => keypairs.get(ak), keys: keyCache, dates: dateCache, now: Date.now() }),
    chargeAnonymous,
    chargeKeypair,
    refuseBeforeBody,
  };
  const signed = signedRequest(authDeps);
  const unsigned = publicRequest(authDeps);
  // Health and metrics must reach the operator even when a fail-closed limiter refuses everything else.
  const operational = publicRequest({
    ...authDeps,
    chargeAnonymous: (ctx) =>
      chargeAnonymous(ctx).catch((error: unknown) => {
        if (!(error instanceof ApiError && error.status === 503)) throw error;
      }),
  });

  const latest = config.auth.api_versions[config.auth.api_versions.length - 1];
  const routes: RouteSpec[] = [
    ...basicRoutes(latest),
    ...sessionRoutes({ store: stores.sessions, kernels, lookup: (ak) => keypairs.get(ak), config }),
    ...modelRoutes({ kernels, lookup: (ak) => keypairs.get(ak) }),
  ];
  const idempotent = idempotency(stores.idempotency, config.idempotency.ttl_seconds, config.auth.problem_base_uri, log);
  routes.push(
    ...operationalRoutes({
      apiVersion: latest,
      health: [
        () => ({ ratelimit: rateLimits.health() }),
        () => ({ keypairs: { loaded: keypairs.size } }),
        (scope) => kernels.health(scope.domain),
        async () => ({ sessions: await stores.sessions.health() }),
      ],
      metrics: metrics.registry,
      metricsAllowed: (address) => metricsAllow.has(address),
      openapi: () => openapi,
    }),
  );
  const openapi = buildOpenApi(routes);

  const router = new Router<GatewayState>();
  for (const route of routes) {
    const query = validator(route.query);
    const body = validator(route.body);
    const isAdmin = route.access === 'admin';
    const validate = async (ctx: GatewayContext, next: () => Promise<unknown>) => {
      if (isAdmin && ctx.state.auth!.keypair.role === 'user') {
        throw new ApiError(403, 'generic-forbidden', 'This operation needs an admin keypair.');
      }
      if (query && !query(ctx.query)) throw invalid('query parameter', query);
      if (body && ctx.state.body !== undefined && !body(ctx.state.body)) throw invalid('request body', body);
      await next();
    };
    const isSigned = route.access === 'signed' || isAdmin;
    // Each route gets only the stages it needs: the hot GET /auth/test path stays short.
    const stages: unknown[] = [isSigned ? signed : route.access === 'operational' ? operational : unsigned];
    if (query || body || isAdmin) stages.push(validate);
    if (isSigned && route.method !== 'GET') stages.push(idempotent);
    router.register(route.path, [route.method], [...stages, (ctx: GatewayContext) => route.handler(ctx)] as never, {
      name: `${route.method} ${route.path}`,
    });
  }

  const app = new Koa<GatewayState>();
  let requestCounter = 0;
  const idPrefix = `${process.pid.toString(36)}-${Date.now().toString(36)}-`;
  const accessLog = createAccessLogger(config.log.access ? config.log.level : 'silent');
  app.use(async (ctx, next) => {
    const started = process.hrtime.bigint();
    ctx.state.reqId = idPrefix + (requestCounter++).toString(36);
    ctx.state.client = resolveClient(ctx.req.socket.remoteAddress, ctx.req.headers, trusted);
    try {
      await next();
    } finally {
      // Answered without reading the whole body (refused early): close rather than drain it all.
      if (!ctx.req.complete && requestHasBody(ctx.req) && !ctx.headerSent) {
        ctx.set('Connection', 'close');
        lingerOnClose(ctx.req.socket);
      }
      const route = (ctx as unknown as { _matchedRoute?: string })._matchedRoute ?? 'unmatched';
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      metrics.record(ctx.method, route, ctx.status, seconds);
      accessLog.info({
        reqId: ctx.state.reqId,
        method: ctx.method,
        route,
        status: ctx.status,
        ms: Math.round(seconds * 10000) / 10,
        client: ctx.state.client.address,
        accessKey: ctx.state.auth?.keypair.accessKey,
        owner: ctx.state.owner?.accessKey,
      }, 'request');
    }
  });
  app.use(problemMiddleware(config.auth.problem_base_uri, log));
  app.use(async (ctx, next) => {
    if (ctx.req.headers.host === undefined && ctx.req.httpVersion === '1.1') {
      await chargeAnonymous(ctx);
      throw new ApiError(400, 'generic-bad-request', 'HTTP/1.1 requests need a Host header.');
    }
    await next();
  });
  // Matched routes run their own chain (auth first); only what no route takes falls through.
  app.use(router.routes());
  app.use(async (ctx) => {
    await chargeAnonymous(ctx);
    const match = router.match(ctx.path, ctx.method);
    if (match.path.length > 0) {
      const allowed = [...new Set(match.path.flatMap((layer) => layer.methods))].join(', ');
      throw new ApiError(405, 'method-not-allowed', `${ctx.method} is not allowed on ${ctx.path}.`, { headers: { Allow: allowed } });
    }
    throw new ApiError(404, 'url-not-found', `No route for ${ctx.path}.`);
  });

  const server = createServer(
    {
      maxHeaderSize: config.server.header_limit_bytes,
      requestTimeout: config.server.request_timeout_ms,
      headersTimeout: Math.min(config.server.request_timeout_ms, 20_000),
      // Node enforces both timeouts on a sweep, every 30 s by default: sweep often enough that a slow
      // client is cut off within half a second of its deadline.
      connectionsCheckingInterval: Math.min(500, Math.floor(config.server.request_timeout_ms / 4)),
      keepAliveTimeout: 5_000,
      // Node would answer a missing Host with a bare 400; we answer it with a problem document.
      requireHostHeader: false,
    },
    app.callback(),
  );
  // Past this many open connections new ones are closed at accept, before any byte is read.
  server.maxConnections = config.server.max_connections;
  server.on(
    'clientError',
    answerClientErrors({
      headerLimitBytes: config.server.header_limit_bytes,
      problemBaseUri: config.auth.problem_base_uri,
      // No headers were parsed, so X-Forwarded-For is unknown: the peer itself pays (behind a
      // proxy that is the proxy's own bucket, which forwarded requests never spend).
      async chargePeer(socket) {
        const peer = resolveClient(socket.remoteAddress, {}, trusted);
        const decision = await rateLimits.consume(`ip:${addressBucket(peer.address)}`, config.ratelimit.anonymous_limit, windowSeconds);
        return rateLimitHeaders(decision, 'anonymous');
      },
    }),
  );

  return {
    app,
    server,
    config,
    log,
    keypairs,
    rateLimits,
    sessions: stores.sessions,
    kernels,
    listen: () =>
      new Promise((resolveListen, reject) => {
        server.once('error', reject);
        server.listen(config.server.port, config.server.host, () => resolveListen(server.address() as AddressInfo));
      }),
    async close() {
      keypairs.stop();
      accessLog.flush();
      // Custom models' processes stop first, so that no stuck model run holds a request (and server.close) open.
      await kernels.close();
      await new Promise<void>((r) => server.close(() => r()));
      server.closeAllConnections();
      await Promise.allSettled([rateLimits.close(), stores.idempotency.close(), stores.sessions.close()]);
    },
  };
}

