import type { RouteSpec } from '../http/route.js';
import { GATEWAY_VERSION } from './basics.js';

const PROBLEM_EXAMPLE_BASE = 'https://api.backend.ai/probs/';

/** An example problem document, as the problem middleware writes them. */
const problem = (status: number, slug: string, title: string, detail: string) => ({
  type: `${PROBLEM_EXAMPLE_BASE}${slug}`,
  title,
  status,
  detail,
  msg: detail,
  instance: 'req-4f1c2a9e',
});

const problemSchema = {
  type: 'object',
  description: 'RFC 9457 problem details. `msg` repeats `detail` for Backend.AI SDKs; `instance` is the request id in the log.',
  required: ['type', 'title', 'status', 'detail'],
  properties: {
    type: { type: 'string', format: 'uri' },
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string' },
    msg: { type: 'string' },
    instance: { type: 'string' },
  },
  example: problem(400, 'invalid-api-params', 'Missing or invalid API parameters.', 'Invalid request body "name": must match pattern.'),
};

/** One documented error answer: what causes it, and an example problem document. */
const errorAnswer = (description: string, example: unknown) => ({
  description,
  content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' }, example } },
});

/** Errors every route of a kind can answer, each with an example document. */
function errorResponses(route: RouteSpec): Record<string, unknown> {
  const errors: Record<string, unknown> = {};
  const signed = route.access === 'signed' || route.access === 'admin';
  if (signed) {
    errors[400] = errorAnswer(
      'Malformed credentials or parameters (`invalid-auth-params`, `invalid-api-params`, `generic-bad-request`).',
      problem(400, 'invalid-auth-params', 'Missing or invalid authorization parameters.', 'The request date is outside the allowed clock skew (±900 s).'),
    );
    errors[401] = errorAnswer('No credentials, an unknown or inactive key, or a signature mismatch (`auth-failed`).', problem(401, 'auth-failed', 'Credential/signature mismatch.', 'Authentication failed.'));
    errors[403] = errorAnswer(
      route.access === 'admin' ? 'Not an admin keypair, or an owner it may not act for (`generic-forbidden`).' : 'An owner_access_key this keypair may not act for (`generic-forbidden`).',
      problem(403, 'generic-forbidden', 'Forbidden operation.', 'A user may act only for itself.'),
    );
  }
  if (route.path.includes(':')) {
    errors[404] = errorAnswer(
      'No such session or model (`session-not-found`, `model-not-found`).',
      route.path.startsWith('/models')
        ? problem(404, 'model-not-found', 'No such model.', 'No model named "plates".')
        : problem(404, 'session-not-found', 'No such session.', 'No session named "ocr1".'),
    );
  }
  if (route.upload) {
    errors[408] = errorAnswer(
      'The upload did not arrive within `server.upload_timeout_ms` (any other body: `server.request_timeout_ms`).',
      problem(408, 'generic-bad-request', 'Bad request.', 'The request was not completed in time.'),
    );
    errors[413] = errorAnswer(
      'A multipart or zip body over `server.upload_limit_bytes` (any other body: `server.body_limit_bytes`).',
      problem(413, 'request-too-large', 'Request too large.', "Upload is larger than 268435456 bytes, the gateway's limit for uploads (config key server.upload_limit_bytes)."),
    );
  }
  errors[429] = errorAnswer('Rate limit exceeded (`rate-limit-exceeded`); `Retry-After` says when to retry.', problem(429, 'rate-limit-exceeded', 'Rate limit exceeded.', 'Rate limit exceeded: 10000 requests per 900 s.'));
  return errors;
}

/** `/session/:name` -> `/session/{name}` */
const openApiPath = (path: string) => path.replace(/:([A-Za-z_]+)/g, '{$1}');

const PATH_EXAMPLES: Record<string, string> = { name: 'ocr1' };

/** Operations grouped by their first path segment; the gateway's own endpoints together. */
function tagOf(path: string): string {
  const first = path.split('/')[1] ?? '';
  if (first === '') return 'gateway';
  if (first === 'health' || first === 'metrics' || first === 'openapi.json') return 'operations';
  return first;
}

const DESCRIPTION =
  'Every route but the public ones is signed in the Backend.AI scheme: ' +
  '`Authorization: BackendAI signMethod=HMAC-SHA256, credential=<access key>:<signature>` over the method, the request ' +
  'target, the date, the host, the content type, the API version and the hash of the body. Errors are RFC 9457 problem ' +
  'documents (`application/problem+json`). At /docs, "Try it out" signs in the browser; the secret key stays in the tab.';

export interface OpenApiOptions {
  /** `[auth] schemes`: each enabled scheme is documented as a security scheme (and offered by /docs). */
  schemes?: readonly string[];
}

function securitySchemes(schemes: readonly string[]): Record<string, unknown> {
  const all: Record<string, Record<string, unknown>> = {
    backendai: {
      BackendAI: {
        type: 'apiKey',
        in: 'header',
        name: 'Authorization',
        description:
          'Backend.AI HMAC signature: `BackendAI signMethod=HMAC-SHA256, credential=<access key>:<signature>` with `Date` ' +
          '(or `X-BackendAI-Date`) and `X-BackendAI-Version`. /docs signs "Try it out" requests in the browser.',
      },
    },
    apikey: { ApiKey: { type: 'apiKey', in: 'header', name: 'x-api-key', description: 'A static API key of a keypair (`kg_…`).' } },
    oidc: { Bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'An access or ID token of a trusted OpenID Provider.' } },
  };
  const enabled = schemes.length > 0 ? schemes : ['backendai'];
  return Object.assign({}, ...enabled.map((s) => all[s] ?? {}));
}

/** The OpenAPI 3.1 document, generated from the same RouteSpecs that validate requests. */
export function buildOpenApi(routes: readonly RouteSpec[], opts: OpenApiOptions = {}): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    if (route.hidden) continue;
    const path = openApiPath(route.path);
    const parameters: unknown[] = [...route.path.matchAll(/:([A-Za-z_]+)/g)].map((m) => ({
      name: m[1],
      in: 'path',
      required: true,
      schema: { type: 'string' },
      ...(PATH_EXAMPLES[m[1]!] !== undefined ? { example: PATH_EXAMPLES[m[1]!] } : {}),
    }));
    const queryProps = (route.query?.properties ?? {}) as Record<string, unknown>;
    const required = new Set((route.query?.required as string[] | undefined) ?? []);
    for (const [name, schema] of Object.entries(queryProps)) {
      parameters.push({ name, in: 'query', required: required.has(name), schema });
    }
    const responses: Record<string, unknown> = {};
    for (const [status, r] of Object.entries(route.responses)) {
      const media = r.schema !== undefined || r.example !== undefined;
      responses[status] = {
        description: r.description,
        ...(media
          ? { content: { 'application/json': { ...(r.schema ? { schema: r.schema } : {}), ...(r.example !== undefined ? { example: r.example } : {}) } } }
          : {}),
      };
    }
    for (const [status, r] of Object.entries(errorResponses(route))) responses[status] ??= r;
    responses.default = {
      description: 'An RFC 9457 problem document.',
      content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
    };
    const content: Record<string, unknown> = {};
    if (route.body) content['application/json'] = { schema: route.body, ...(route.bodyExample !== undefined ? { example: route.bodyExample } : {}) };
    for (const type of route.bodyTypes ?? []) content[type] = { schema: route.bodySchemas?.[type] ?? { type: 'string', format: 'binary' } };
    (paths[path] ??= {})[route.method.toLowerCase()] = {
      summary: route.summary,
      tags: [tagOf(route.path)],
      ...(route.access === 'public' || route.access === 'operational' ? { security: [] } : {}),
      ...(route.access === 'admin' ? { 'x-kernelgate-role': 'admin' } : {}),
      parameters,
      ...(Object.keys(content).length > 0
        ? {
            requestBody: {
              required: false,
              content,
              // Upload routes stream a multipart or zip body to a spool file, under their own limit and deadline.
              ...(route.upload ? { description: 'Multipart and zip bodies are streamed to disk, up to `server.upload_limit_bytes` arriving within `server.upload_timeout_ms`; JSON bodies stay under `server.body_limit_bytes`.' } : {}),
            },
          }
        : {}),
      responses,
    };
  }
  const schemes = securitySchemes(opts.schemes ?? ['backendai']);
  return {
    openapi: '3.1.0',
    info: { title: 'kernelgate', version: GATEWAY_VERSION, description: DESCRIPTION },
    paths,
    components: {
      schemas: { Problem: problemSchema },
      securitySchemes: schemes,
    },
    // Any one of the enabled schemes.
    security: Object.keys(schemes).map((name) => ({ [name]: [] })),
  };
}
