import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import type { Logger } from 'pino';
import type { Config } from './config/config.js';
import { hmacAuthenticator } from './auth/authenticators/hmac.js';
import { apiKeyAuthenticator, checkApiKey } from './auth/authenticators/apikey.js';
import { oidcAuthenticator } from './auth/authenticators/oidc.js';
import { refusedScheme, type ApiKeyResolver } from './auth/authenticate.js';
import type { VerifyPolicy } from './auth/verify.js';
import type { Authenticator } from './auth/authenticate.js';
import { answerClientErrors, requestTimedOut } from './http/client-error.js';
import { TrustedProxies } from './http/client-view.js';
import type { GatewayState } from './http/context.js';
import type { RouteSpec } from './http/route.js';
import { idempotency } from './idempotency/middleware.js';
import { KernelRegistry } from './inference/registry.js';
import { KeypairStore } from './keypairs/keypair-store.js';
import { modelRoutes } from './models/routes.js';
import { backupRoutes } from './vision/backup-routes.js';
import { visionRoutes } from './vision/routes.js';
import { createAccessLogger, createLogger } from './observability/logger.js';
import { createMetrics } from './observability/metrics.js';
import { mountPipeline } from './pipeline.js';
import { rateLimiting } from './ratelimit/middleware.js';
import type { PayerLimits } from './ratelimit/payer.js';
import type { RateLimitStore } from './ratelimit/types.js';
import { basicRoutes } from './routes/basics.js';
import { buildOpenApi } from './routes/openapi.js';
import { operationalRoutes } from './routes/operational.js';
import { sessionRoutes } from './sessions/routes.js';
import type { SessionStore } from './sessions/types.js';
import { SigningDateCache } from './signing/dates.js';
import { SigningKeyCache } from './signing/signing-key.js';
import { createStores } from './stores.js';
import { docsRoutes } from './docs/routes.js';
import { createSpoolDir } from './http/spool.js';
import { currentOwner } from './http/spool-owner.js';
import { sweepAtStart } from './http/spool-sweep.js';

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

export async function createGateway(config: Config, opts: GatewayOptions = {}): Promise<Gateway> {
  const log = opts.log ?? createLogger(config.log.level);
  const metrics = createMetrics();
  const keypairs = new KeypairStore(config.keypairs.dir, log);
  // Upload bodies (models, backups) stream into this private folder, never into memory (http/spool.ts).
  // Its owner marker lets a later gateway remove it if this one is killed; this one removes dead ones' now.
  const spoolOwner = currentOwner();
  const spoolDir = createSpoolDir(undefined, spoolOwner);
  await sweepAtStart(spoolDir, spoolOwner, log);
  keypairs.start();
  const stores = await createStores(config, log);
  const rateLimits = stores.rateLimits;
  const kernels = new KernelRegistry(config.inference, log, metrics.registry);
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
  const lookup = (accessKey: string) => keypairs.get(accessKey);
  const keyCache = new SigningKeyCache();
  const dateCache = new SigningDateCache();
  const limits: PayerLimits = { anonymous: config.ratelimit.anonymous_limit, keypair: config.ratelimit.default_limit };
  const limiter = rateLimiting(rateLimits, limits, config.ratelimit.window_seconds, trusted);
  // Credential schemes: the first also answers requests that carry no credentials.
  const hmac = hmacAuthenticator({
    policy,
    bodyLimit: config.server.body_limit_bytes,
    limits,
    verifyContext: () => ({ lookup, keys: keyCache, dates: dateCache, now: Date.now() }),
    refuseBeforeBody: limiter.refuseBeforeBody,
  });
  const schemes = new Set(config.auth.schemes);
  // The HMAC authenticator stays first (it answers requests with no credentials); without "backendai"
  // in the schemes it still claims BackendAI headers, only to refuse them.
  const authenticators: Authenticator[] = [schemes.has('backendai') ? hmac : refusedScheme(hmac.scheme, hmac.claims)];

  const latest = config.auth.api_versions[config.auth.api_versions.length - 1]!;
  // A bearer token next to x-api-key is a combination the OIDC authenticator resolves (the key's keypair
  // becomes the acting owner), so it comes before the API key authenticator.
  const apiKeys: ApiKeyResolver | undefined = schemes.has('apikey')
    ? {
        resolve(key) {
          try {
            const found = checkApiKey(key, false, (hash) => keypairs.byApiKeyHash(hash), Date.now());
            return { keypair: found.keypair, id: found.key.id, scope: found.key.scope };
          } catch {
            return undefined;
          }
        },
      }
    : undefined;
  if (schemes.has('oidc')) {
    authenticators.push(
      oidcAuthenticator({
        apiKeys,
        issuers: config.auth.oidc,
        bySubject: (subject) => keypairs.bySubject(subject),
        bodyLimit: config.server.body_limit_bytes,
        limits,
        apiVersion: latest,
        log,
        refuseBeforeBody: limiter.refuseBeforeBody,
      }),
    );
  }
  if (schemes.has('apikey')) {
    authenticators.push(
      apiKeyAuthenticator({
        lookup: (hash) => keypairs.byApiKeyHash(hash),
        bodyLimit: config.server.body_limit_bytes,
        limits,
        apiVersion: latest,
        refuseBeforeBody: limiter.refuseBeforeBody,
      }),
    );
  }
  const routes: RouteSpec[] = [
    ...basicRoutes(latest),
    ...sessionRoutes({ store: stores.sessions, kernels, config }),
    ...modelRoutes({ kernels, maxModelBytes: config.server.upload_limit_bytes, maxMemoryBytes: config.server.body_limit_bytes }),
    ...(config.vision.enabled ? [...visionRoutes({ kernels, sessions: stores.sessions, config }), ...backupRoutes({ kernels, maxModelBytes: config.server.upload_limit_bytes, maxMemoryBytes: config.server.body_limit_bytes })] : []),
    ...(config.docs.enabled ? docsRoutes() : []),
  ];
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
  const openapi = buildOpenApi(routes, { schemes: config.auth.schemes });

  const app = new Koa<GatewayState>();
  const accessLogger = createAccessLogger(config.log.access ? config.log.level : 'silent');
  const clientErrors = answerClientErrors({
    headerLimitBytes: config.server.header_limit_bytes,
    problemBaseUri: config.auth.problem_base_uri,
    // No headers were parsed, so X-Forwarded-For is unknown: the peer itself pays.
    chargePeer: limiter.chargePeer,
  });
  mountPipeline(app, routes, {
    trusted,
    problemBaseUri: config.auth.problem_base_uri,
    log,
    accessLogger,
    metrics,
    authenticators,
    limits,
    rateLimiting: limiter,
    bodyLimit: config.server.body_limit_bytes,
    bodyMemory: config.server.body_memory_bytes,
    spool: { dir: spoolDir.path, limit: config.server.upload_limit_bytes, maxConcurrent: config.server.max_concurrent_uploads },
    receiveDeadline: {
      ms: config.server.request_timeout_ms,
      // Answered as Node answers its own requestTimeout: a raw 408 problem document, then the connection closes.
      expire: (req, res) => (res.headersSent ? req.socket.destroy() : clientErrors(requestTimedOut(), req.socket)),
    },
    idempotency: idempotency(stores.idempotency, config.idempotency.ttl_seconds, config.auth.problem_base_uri, log),
    lookup,
  });

  const server = createServer(
    {
      maxHeaderSize: config.server.header_limit_bytes,
      // The longest any request may take to arrive: an upload's; every other body is held to
      // request_timeout_ms by the pipeline (http/receive-deadline.ts).
      requestTimeout: Math.max(config.server.request_timeout_ms, config.server.upload_timeout_ms),
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
  server.on('clientError', clientErrors);

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
      accessLogger.flush();
      // Custom models' processes stop first, so that no stuck model run holds a request (and server.close) open.
      await kernels.close();
      await new Promise<void>((r) => server.close(() => r()));
      server.closeAllConnections();
      await Promise.allSettled([rateLimits.close(), stores.idempotency.close(), stores.sessions.close()]);
      spoolDir.close();
    },
  };
}

