import { readFileSync } from 'node:fs';
import type { RouteSpec } from '../route.js';

const pkg = JSON.parse(readFileSync(new URL('../../../../package.json', import.meta.url), 'utf8')) as { version: string };
export const GATEWAY_VERSION = pkg.version;

const echoSchema = {
  type: 'object',
  properties: { echo: { type: 'string', maxLength: 4096 } },
} as const;

export function basicRoutes(latestApiVersion: string): RouteSpec[] {
  const authTest = (method: 'GET' | 'POST'): RouteSpec => ({
    method,
    path: '/auth/test',
    summary: 'Checks a signed request and echoes the `echo` parameter.',
    access: 'signed',
    query: echoSchema,
    ...(method === 'POST' ? { body: echoSchema } : {}),
    responses: {
      200: {
        description: 'The signature is valid.',
        schema: { type: 'object', properties: { authorized: { const: 'yes' }, echo: { type: 'string' } } },
      },
    },
    handler(ctx) {
      const fromBody = ctx.state.body?.echo;
      const fromQuery = ctx.query.echo;
      const echo = typeof fromBody === 'string' ? fromBody : typeof fromQuery === 'string' ? fromQuery : null;
      ctx.body = { authorized: 'yes', echo };
    },
  });
  return [
    {
      method: 'GET',
      path: '/',
      summary: 'API and gateway versions.',
      access: 'public',
      responses: {
        200: {
          description: 'Versions.',
          schema: { type: 'object', properties: { version: { type: 'string' }, gateway: { type: 'string' } } },
        },
      },
      handler(ctx) {
        ctx.body = { version: latestApiVersion, gateway: GATEWAY_VERSION };
      },
    },
    authTest('GET'),
    authTest('POST'),
    {
      method: 'GET',
      path: '/auth/role',
      summary: "The keypair's role and domain.",
      access: 'signed',
      responses: {
        200: {
          description: 'Role.',
          schema: {
            type: 'object',
            properties: {
              global_role: { type: 'string' },
              domain_role: { type: 'string' },
              group_role: { type: 'string' },
              role: { type: 'string' },
              domain: { type: 'string' },
              access_key: { type: 'string' },
            },
          },
        },
      },
      handler(ctx) {
        const k = ctx.state.auth!.keypair;
        // Backend.AI answers global_role/domain_role/group_role; role and domain are ours.
        ctx.body = {
          global_role: k.role === 'superadmin' ? 'superadmin' : 'user',
          domain_role: k.role === 'user' ? 'user' : 'admin',
          group_role: 'user',
          role: k.role,
          domain: k.domain,
          access_key: k.accessKey,
        };
      },
    },
  ];
}
