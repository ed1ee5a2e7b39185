import { decodeBase64 } from '../http/base64.js';
import type { KernelRegistry } from '../inference/registry.js';
import type { Keypair } from '../keypairs/keypair.js';
import { ApiError } from '../problems/api-error.js';
import type { GatewayContext } from '../http/context.js';
import type { RouteSpec } from '../http/route.js';
import { linkNext, pageOf, pageQueryProperties, readPage, type CursorScope } from '../http/pagination.js';
import { domainFolder } from '../inference/store/model-store.js';
import { modelConfigSchema, parseModelConfig, RESERVED_MODEL_NAMES } from '../inference/store/model-config.js';

export interface ModelRouteDeps {
  kernels: KernelRegistry;
}

/** The ONNX bytes of an upload (`model`: base64), its config (every other member) and its `domain`, if named. */
function upload(raw: unknown): { config: ReturnType<typeof parseModelConfig>; onnx: Buffer; domain?: string } {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new ApiError(400, 'invalid-api-params', 'Each model must be a JSON object.');
  const { model, sha256: _sha, domain, ...config } = raw as Record<string, unknown>;
  if (domain !== undefined && (typeof domain !== 'string' || domain === '' || domainFolder(domain).length > 200)) {
    throw new ApiError(400, 'invalid-api-params', '"domain" must be a domain name (at most 128 characters).');
  }
  const parsed = parseModelConfig(config);
  const decoded = typeof model === 'string' && model.length > 0 ? decodeBase64(model) : undefined;
  if (!decoded?.ok) {
    throw new ApiError(400, 'invalid-api-params', `"model" must be the ONNX file, base64-encoded${decoded ? ` (${decoded.detail})` : ''}.`);
  }
  return { config: parsed, onnx: decoded.bytes, domain: domain as string | undefined };
}

/**
 * The domain a model request works on. Custom models belong to a domain: a
 * superadmin names any with `domain` (query string, or the signed JSON body of
 * an upload), everyone else works on its own (naming another → 403, which says
 * nothing about that domain's models). Default: the acting owner's domain, so
 * `owner_access_key` also selects it. `undefined` = every domain (a superadmin
 * listing or backing up without naming one).
 */
function targetDomain(ctx: GatewayContext, owner: Keypair, opts: { allDomains?: boolean; body?: Record<string, unknown> } = {}): string | undefined {
  const requester = ctx.state.auth!.keypair;
  const q = ctx.query.domain;
  if (q !== undefined && (typeof q !== 'string' || q === '')) throw new ApiError(400, 'invalid-api-params', '"domain" must be given once, as a domain name.');
  let b = opts.body?.domain;
  if (b !== undefined && (typeof b !== 'string' || b === '')) throw new ApiError(400, 'invalid-api-params', '"domain" must be a domain name.');
  if (b !== undefined && !ctx.state.auth!.bodySigned) {
    throw new ApiError(400, 'invalid-api-params', '"domain" in a body the signature does not cover (empty-body hash) is not honoured; send it in the signed query string.');
  }
  if (q !== undefined && b !== undefined && q !== b) throw new ApiError(400, 'invalid-api-params', '"domain" differs between query and body.');
  const named = (q ?? b) as string | undefined;
  if (named !== undefined && domainFolder(named).length > 200) throw new ApiError(400, 'invalid-api-params', '"domain" is too long.');
  if (requester.role === 'superadmin') {
    if (named !== undefined) return named;
    const ownerNamed = owner.accessKey !== requester.accessKey;
    return opts.allDomains && !ownerNamed ? undefined : owner.domain;
  }
  if (named !== undefined && named !== owner.domain) {
    throw new ApiError(403, 'generic-forbidden', 'Only a superadmin may work on the models of another domain.');
  }
  return owner.domain;
}

/**
 * `?owner_access_key=` (whose domain is the default) and `?domain=` (superadmins: any domain). Every
 * model route is owner-scoped (`owner: 'query+body'`): the authorize stage resolves the owner.
 */
const modelQuery = {
  type: 'object',
  properties: { owner_access_key: { type: 'string', maxLength: 128 }, domain: { type: 'string', minLength: 1, maxLength: 128 } },
};

/** GET /models pages by (domain, name): built-in models (no domain) first. */
const listQuery = { type: 'object', properties: { ...modelQuery.properties, ...pageQueryProperties } };
const modelCursor = (ctx: GatewayContext, domain: string | undefined): CursorScope => ({
  collection: 'models',
  scope: domain === undefined ? '' : `domain:${domain}`,
  secret: ctx.state.auth!.keypair.secretKey,
  arity: 2,
});

const uploadSchema = {
  type: 'object',
  required: ['name', 'task', 'input', 'labels', 'model'],
  properties: { ...modelConfigSchema.properties, model: { type: 'string', contentEncoding: 'base64' }, owner_access_key: { type: 'string' }, domain: { type: 'string', minLength: 1, maxLength: 128 } },
};

/** GET /models for everyone; upload, removal, backup and restore for admins. */
export function modelRoutes(deps: ModelRouteDeps): RouteSpec[] {
  const body = (ctx: GatewayContext) => {
    if (ctx.state.body === undefined) throw new ApiError(400, 'invalid-api-params', 'Send a JSON body.');
    const { owner_access_key: _owner, domain: _domain, ...rest } = ctx.state.body;
    return rest;
  };
  const notFound = (name: string) => new ApiError(404, 'model-not-found', `No model named ${JSON.stringify(name.slice(0, 64))}.`);
  return [
    {
      method: 'GET',
      path: '/models',
      summary: "The models sessions can run: the built-in ocr and the domain's uploaded ones (a superadmin: every domain's, or ?domain=), a page at a time by (domain, name).",
      access: 'signed',
      owner: 'query+body',
      query: listQuery,
      responses: { 200: { description: 'Models.' } },
      handler(ctx) {
        const domain = targetDomain(ctx, ctx.state.owner!, { allDomains: true });
        const scope = modelCursor(ctx, domain);
        const page = pageOf(deps.kernels.list(domain), (m) => [m.domain ?? '', m.name], readPage(ctx, scope));
        linkNext(ctx, scope, page.next);
        ctx.body = { models: page.items };
      },
    },
    {
      method: 'POST',
      path: '/models',
      summary: 'Uploads (or replaces) a custom ONNX model with its config.',
      access: 'admin',
      owner: 'query+body',
      query: modelQuery,
      body: uploadSchema,
      responses: { 201: { description: 'Installed.' }, 200: { description: 'Replaced an existing model of that name.' } },
      async handler(ctx) {
        const domain = targetDomain(ctx, ctx.state.owner!, { body: ctx.state.body })!;
        const { config, onnx } = upload(body(ctx));
        const { model, replaced } = await deps.kernels.install(domain, config, onnx);
        ctx.status = replaced ? 200 : 201;
        ctx.body = { name: config.name, domain, task: config.task, sha256: model.sha256, bytes: model.bytes, labels: config.labels.length, replaced };
      },
    },
    {
      method: 'DELETE',
      path: '/models/:name',
      summary: 'Removes a custom model; sessions that use it answer 404 model-not-found.',
      access: 'admin',
      owner: 'query+body',
      query: modelQuery,
      responses: { 200: { description: 'Removed.' } },
      async handler(ctx) {
        const domain = targetDomain(ctx, ctx.state.owner!)!;
        const name = ctx.params.name;
        if (RESERVED_MODEL_NAMES.has(name)) throw new ApiError(400, 'invalid-api-params', `${name} is built in.`);
        // Another domain's model is simply not there: 404, as for a name nobody uses.
        if (!(await deps.kernels.remove(domain, name))) throw notFound(name);
        ctx.body = { name, domain, deleted: true };
      },
    },
    {
      method: 'GET',
      path: '/models/backup',
      summary: "The domain's custom models (a superadmin: every domain's, or ?domain=) with their configs, for POST /models/restore.",
      access: 'admin',
      owner: 'query+body',
      query: modelQuery,
      responses: { 200: { description: '{"models": [config + "domain" + "sha256" + "model" (base64)]}' } },
      async handler(ctx) {
        const domain = targetDomain(ctx, ctx.state.owner!, { allDomains: true });
        const { readFile } = await import('node:fs/promises');
        const models = await Promise.all(
          deps.kernels.store.list(domain).map(async (m) => ({ ...m.config, domain: m.domain, sha256: m.sha256, model: (await readFile(m.path)).toString('base64') })),
        );
        ctx.body = { models };
      },
    },
    {
      method: 'POST',
      path: '/models/restore',
      summary: "Installs every model of a backup into the caller's domain (a superadmin: each entry's `domain`, unless ?domain= names one): all configs are validated first, then each model is checked as on upload and stored in turn.",
      access: 'admin',
      owner: 'query+body',
      query: modelQuery,
      body: { type: 'object', required: ['models'], properties: { models: { type: 'array', maxItems: 1000 }, owner_access_key: { type: 'string' }, domain: { type: 'string', minLength: 1, maxLength: 128 } } },
      responses: { 200: { description: 'Restored.' } },
      async handler(ctx) {
        const owner = ctx.state.owner!;
        const domain = targetDomain(ctx, owner, { body: ctx.state.body })!;
        // Only a superadmin's signed document may place models in the domains it names.
        const perEntry = ctx.state.auth!.keypair.role === 'superadmin' && ctx.query.domain === undefined && ctx.state.body?.domain === undefined
          && owner === ctx.state.auth!.keypair && ctx.state.auth!.bodySigned;
        const uploads = (body(ctx).models as unknown[]).map(upload);
        const restored: string[] = [];
        for (const entry of uploads) {
          await deps.kernels.install(perEntry ? entry.domain ?? domain : domain, entry.config, entry.onnx);
          restored.push(entry.config.name);
        }
        ctx.body = { restored };
      },
    },
  ];
}
