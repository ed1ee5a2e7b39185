import type { RouteSpec } from '../http/route.js';
import { GATEWAY_VERSION } from './basics.js';

const problemSchema = {
  type: 'object',
  required: ['type', 'title', 'status', 'detail'],
  properties: {
    type: { type: 'string', format: 'uri' },
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string' },
    msg: { type: 'string' },
    instance: { type: 'string' },
  },
};

/** `/session/:name` -> `/session/{name}` */
const openApiPath = (path: string) => path.replace(/:([A-Za-z_]+)/g, '{$1}');

/** The OpenAPI 3.1 document, generated from the same RouteSpecs that validate requests. */
export function buildOpenApi(routes: readonly RouteSpec[]): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    const path = openApiPath(route.path);
    const parameters: unknown[] = [...route.path.matchAll(/:([A-Za-z_]+)/g)].map((m) => ({
      name: m[1],
      in: 'path',
      required: true,
      schema: { type: 'string' },
    }));
    const queryProps = (route.query?.properties ?? {}) as Record<string, unknown>;
    const required = new Set((route.query?.required as string[] | undefined) ?? []);
    for (const [name, schema] of Object.entries(queryProps)) {
      parameters.push({ name, in: 'query', required: required.has(name), schema });
    }
    const responses: Record<string, unknown> = {};
    for (const [status, r] of Object.entries(route.responses)) {
      responses[status] = {
        description: r.description,
        ...(r.schema ? { content: { 'application/json': { schema: r.schema } } } : {}),
      };
    }
    responses.default = {
      description: 'An RFC 9457 problem document.',
      content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
    };
    const content: Record<string, unknown> = {};
    if (route.body) content['application/json'] = { schema: route.body };
    for (const type of route.bodyTypes ?? []) content[type] = { schema: { type: 'string', format: 'binary' } };
    (paths[path] ??= {})[route.method.toLowerCase()] = {
      summary: route.summary,
      ...(route.access === 'public' || route.access === 'operational' ? { security: [] } : {}),
      ...(route.access === 'admin' ? { 'x-kernelgate-role': 'admin' } : {}),
      parameters,
      ...(Object.keys(content).length > 0 ? { requestBody: { required: false, content } } : {}),
      responses,
    };
  }
  return {
    openapi: '3.1.0',
    info: { title: 'kernelgate', version: GATEWAY_VERSION },
    paths,
    components: {
      schemas: { Problem: problemSchema },
      securitySchemes: {
        BackendAI: {
          type: 'apiKey',
          in: 'header',
          name: 'Authorization',
          description: 'BackendAI signMethod=HMAC-SHA256, credential=<access key>:<signature>',
        },
      },
    },
    security: [{ BackendAI: [] }],
  };
}
