import type { Registry } from 'prom-client';
import type { RouteSpec } from '../route.js';
import { GATEWAY_VERSION } from './basics.js';

export type HealthSection = () => Promise<Record<string, unknown>> | Record<string, unknown>;

export interface OperationalDeps {
  apiVersion: string;
  /** Each returns `{ name: { status?, ... } }`; any `status: "degraded"` degrades the whole. */
  health: HealthSection[];
  metrics: Registry;
  openapi(): Record<string, unknown>;
}

/**
 * /health, /metrics and /openapi.json. Health answers 200 with "degraded" rather
 * than 503 when a shared store is down: the replicas still serve what they can,
 * and a readiness probe that pulled every replica at once would take all down.
 */
export function operationalRoutes(deps: OperationalDeps): RouteSpec[] {
  return [
    {
      method: 'GET',
      path: '/health',
      summary: 'Readiness: rate-limit store, keypairs, sessions, inference providers.',
      access: 'operational',
      responses: { 200: { description: 'Ready; `status` is "ok" or "degraded" with the reason in its section.' } },
      async handler(ctx) {
        const sections = Object.assign({}, ...(await Promise.all(deps.health.map((h) => h())))) as Record<string, unknown>;
        const degraded = Object.values(sections).some((s) => (s as { status?: string } | undefined)?.status === 'degraded');
        ctx.body = { status: degraded ? 'degraded' : 'ok', gateway: GATEWAY_VERSION, version: deps.apiVersion, ...sections };
      },
    },
    {
      method: 'GET',
      path: '/metrics',
      summary: 'Prometheus metrics.',
      access: 'operational',
      responses: { 200: { description: 'Prometheus text format.' } },
      async handler(ctx) {
        ctx.type = deps.metrics.contentType;
        ctx.body = await deps.metrics.metrics();
      },
    },
    {
      method: 'GET',
      path: '/openapi.json',
      summary: 'This document.',
      access: 'public',
      responses: { 200: { description: 'OpenAPI 3.1.' } },
      handler(ctx) {
        ctx.body = deps.openapi();
      },
    },
  ];
}
