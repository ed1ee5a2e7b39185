import type { Registry } from 'prom-client';
import { ApiError } from '../problems/api-error.js';
import type { GatewayContext } from '../http/context.js';
import type { RouteSpec } from '../http/route.js';
import { GATEWAY_VERSION } from './basics.js';

/** Whose detail a section may show: one domain's, or every domain's (undefined). */
export interface HealthScope {
  domain?: string;
}

export type HealthSection = (scope: HealthScope) => Promise<Record<string, unknown>> | Record<string, unknown>;

export interface OperationalDeps {
  apiVersion: string;
  /** Each returns `{ name: { status?, ... } }`; any `status: "degraded"` degrades the whole. */
  health: HealthSection[];
  metrics: Registry;
  /** Whether a client address (after trusted_proxies) may read /metrics (`server.metrics_allow`). */
  metricsAllowed(address: string): boolean;
  openapi(): Record<string, unknown>;
}

/**
 * /health, /metrics and /openapi.json. Health answers 200 with "degraded" rather
 * than 503 when a shared store is down: the replicas still serve what they can,
 * and a readiness probe that pulled every replica at once would take all down.
 */
export function operationalRoutes(deps: OperationalDeps): RouteSpec[] {
  const collect = async (scope: HealthScope) => {
    const sections = Object.assign({}, ...(await Promise.all(deps.health.map((h) => h(scope))))) as Record<string, unknown>;
    const degraded = Object.values(sections).some((s) => (s as { status?: string } | undefined)?.status === 'degraded');
    return { status: degraded ? 'degraded' : 'ok', sections };
  };
  return [
    {
      method: 'GET',
      path: '/health',
      summary: 'Readiness: "ok" or "degraded" overall and per part (rate-limit store, keypairs, sessions, inference). The detail is at GET /health/detail.',
      access: 'operational',
      responses: {
        200: {
          description: 'Ready; `status` is "ok" or "degraded", and so is each part\'s.',
          example: { status: 'ok', gateway: '0.1.0', version: 'v8.20240915', ratelimit: { status: 'ok', store: 'memory' }, keypairs: { status: 'ok' }, inference: { status: 'ok' }, sessions: { status: 'ok', store: 'memory' } },
        },
      },
      async handler(ctx) {
        // Public: each part's state (and, for a shared store, which store and why it is degraded);
        // no model names, counts or queue figures, which would show other tenants' activity.
        const { status, sections } = await collect({});
        const parts = Object.fromEntries(
          Object.entries(sections).map(([name, raw]) => {
            const s = (raw ?? {}) as { status?: string; store?: unknown; reason?: unknown };
            const part: Record<string, unknown> = { status: s.status === 'degraded' ? 'degraded' : 'ok' };
            if (typeof s.store === 'string') part.store = s.store;
            if (s.status === 'degraded' && typeof s.reason === 'string') part.reason = s.reason;
            return [name, part];
          }),
        );
        ctx.body = { status, gateway: GATEWAY_VERSION, version: deps.apiVersion, ...parts };
      },
    },
    {
      method: 'GET',
      path: '/health/detail',
      summary: "Operators' health: every part's detail (models, providers, queues). Admins see their own domain's models, superadmins every domain's.",
      access: 'admin',
      responses: {
        200: {
          description: 'As GET /health, with each part\'s detail.',
          example: { status: 'ok', gateway: '0.1.0', version: 'v8.20240915', keypairs: { loaded: 3 }, inference: { providers: ['cuda', 'cpu'], models: { ocr: { provider: 'cpu', running: 0, queued: 0 } } } },
        },
      },
      async handler(ctx) {
        const keypair = ctx.state.auth!.keypair;
        const { status, sections } = await collect(keypair.role === 'superadmin' ? {} : { domain: keypair.domain });
        ctx.body = { status, gateway: GATEWAY_VERSION, version: deps.apiVersion, ...sections };
      },
    },
    {
      method: 'GET',
      path: '/metrics',
      summary: 'Prometheus metrics, for client addresses in server.metrics_allow (default: loopback).',
      access: 'operational',
      responses: {
        200: { description: 'Prometheus text format, e.g. `kernelgate_http_requests_total{method="GET",route="/auth/test",status="200"} 42`.' },
        403: { description: 'The client address is not in server.metrics_allow.', example: { type: 'https://api.backend.ai/probs/generic-forbidden', title: 'Forbidden operation.', status: 403, detail: 'GET /metrics is served only to the addresses in server.metrics_allow.' } },
      },
      async handler(ctx: GatewayContext) {
        if (!deps.metricsAllowed(ctx.state.client.address)) {
          throw new ApiError(403, 'generic-forbidden', 'GET /metrics is served only to the addresses in server.metrics_allow.');
        }
        ctx.type = deps.metrics.contentType;
        ctx.body = await deps.metrics.metrics();
      },
    },
    {
      method: 'GET',
      path: '/openapi.json',
      summary: 'This document.',
      access: 'public',
      responses: { 200: { description: 'OpenAPI 3.1.', example: { openapi: '3.1.0', info: { title: 'kernelgate', version: '0.1.0' }, paths: {} } } },
      handler(ctx) {
        ctx.body = deps.openapi();
      },
    },
  ];
}
