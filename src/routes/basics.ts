import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RouteSpec } from '../http/route.js';

/** The nearest package.json above this module: the same file whether it runs from src/ (tests) or dist/src/. */
function packageVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('kernelgate: package.json not found above ' + fileURLToPath(import.meta.url));
    dir = parent;
  }
  return (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version: string }).version;
}

export const GATEWAY_VERSION = packageVersion();

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
    ...(method === 'POST' ? { body: echoSchema, bodyExample: { echo: 'hello' } } : {}),
    responses: {
      200: {
        description: 'The signature is valid.',
        example: { authorized: 'yes', echo: 'hello' },
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
          example: { version: 'v8.20240915', gateway: '0.1.0' },
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
          example: { global_role: 'user', domain_role: 'user', group_role: 'user', role: 'user', domain: 'default', access_key: 'AKIAIOSFODNN7EXAMPLE' },
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
