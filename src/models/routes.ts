import { decodeBase64 } from '../http/base64.js';
import type { KernelRegistry } from '../inference/registry.js';
import type { Keypair } from '../keypairs/keypair.js';
import { ApiError } from '../problems/api-error.js';
import type { GatewayContext } from '../http/context.js';
import type { RouteSpec } from '../http/route.js';
import { linkNext, pageOf, pageQueryProperties, readPage, type CursorScope } from '../http/pagination.js';
import { domainFolder } from '../inference/store/model-store.js';
import { diskLimits, readForm } from '../http/form.js';
import { bodyOf, type RequestBody } from '../http/request-body.js';
import { canonicalContentType } from '../signing/canonical.js';
import { UPLOAD_DISK_PARTS, uploadFromForm } from './form-upload.js';
import { modelConfigSchema, parseModelConfig, RESERVED_MODEL_NAMES } from '../inference/store/model-config.js';
import { extractModelArchive, writeModelArchive } from '../inference/store/model-archive.js';
import { restoreModels, writeDecodedModels } from '../inference/store/model-restore.js';

export interface ModelRouteDeps {
  kernels: KernelRegistry;
  /** Largest model file a multipart upload may carry (server.upload_limit_bytes: the spooled body's limit). */
  maxModelBytes: number;
  /** Largest part of a spooled form held in memory (a config, a field): server.body_limit_bytes. */
  maxMemoryBytes: number;
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
export function targetDomain(ctx: GatewayContext, owner: Keypair, opts: { allDomains?: boolean; body?: Record<string, unknown> } = {}): string | undefined {
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

/** Media types of a zip backup sent to POST /models/restore (Windows browsers say x-zip-compressed). */
export const ZIP_TYPES = new Set(['application/zip', 'application/x-zip-compressed']);

/**
 * Whether a superadmin's restore places each model in the domain the backup names: only when it names no
 * domain or owner, and only from a body its signature covers (a replayed request could carry any backup).
 */
export function restoresPerEntry(ctx: GatewayContext, owner: Keypair): boolean {
  const auth = ctx.state.auth!;
  return auth.keypair.role === 'superadmin' && ctx.query.domain === undefined && ctx.state.body?.domain === undefined && owner === auth.keypair && auth.bodySigned;
}

/** A zip backup of `domain`'s models (every domain's when undefined) as a download (Content-Length set: a Buffer). */
export async function sendZipBackup(ctx: GatewayContext, deps: ModelRouteDeps, domain: string | undefined, filename: string, type: string): Promise<void> {
  const zip = await writeModelArchive(deps.kernels.store.list(domain));
  ctx.status = 200;
  ctx.type = type;
  ctx.set('Content-Disposition', `attachment; filename=${filename}`);
  ctx.body = zip;
}

/**
 * Restores a zip backup, all or nothing (store/model-restore.ts); `domain` undefined: each model into the domain
 * it names. The zip: bytes, or a spool file (a spooled body, or a multipart part written out), opened in place.
 */
export function restoreZip(deps: ModelRouteDeps, zip: Buffer | RequestBody | { path: string; size: number }, domain: string | undefined) {
  const source = Buffer.isBuffer(zip) ? zip : zip.path !== undefined ? { path: zip.path, size: zip.size } : (zip as RequestBody).bytes!;
  return restoreModels(deps.kernels, (dir) => extractModelArchive(source, dir), domain);
}

/**
 * The multipart form of a model upload (POST /models, /v1/vision/addmodel). A spooled body's `model` part is
 * written to a spool file; the rest stays in memory within the body limit.
 */
export function uploadForm(ctx: GatewayContext, deps: Pick<ModelRouteDeps, 'maxModelBytes' | 'maxMemoryBytes'>) {
  const body = bodyOf(ctx.state);
  return readForm(body, ctx.get('content-type') || undefined, { maxFileBytes: deps.maxModelBytes, toDisk: diskLimits(body, ctx.state, UPLOAD_DISK_PARTS, deps.maxMemoryBytes) });
}

/** `20261202T104500Z`: a timestamp for file names (no colons, which Windows refuses). */
export const fileStamp = (d = new Date()) => d.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');

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
      responses: {
        200: {
          description: 'Models.',
          example: {
            models: [
              { name: 'ocr', task: 'ocr', builtin: true, loaded: true, provider: 'cpu' },
              { name: 'flowers', domain: 'default', task: 'classify', builtin: false, loaded: false, provider: null, input: { width: 224, height: 224 }, labels: 5, sha256: '3b0c…', bytes: 9134080, created_at: '2026-12-01T09:30:00.000Z' },
            ],
          },
        },
      },
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
      summary: 'Uploads (or replaces) a custom ONNX model with its config: JSON with the model in base64, or multipart files `model` (ONNX) and `config` (JSON).',
      access: 'admin',
      owner: 'query+body',
      query: modelQuery,
      body: uploadSchema,
      bodyTypes: ['multipart/form-data'],
      upload: true,
      bodyExample: {
        name: 'flowers',
        task: 'classify',
        input: { width: 224, height: 224, color: 'RGB' },
        normalize: { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
        labels: ['daisy', 'dandelion', 'rose', 'sunflower', 'tulip'],
        model: '<the ONNX file, base64>',
      },
      responses: {
        201: { description: 'Installed.', example: { name: 'flowers', domain: 'default', task: 'classify', sha256: '3b0c…', bytes: 9134080, labels: 5, replaced: false } },
        200: { description: 'Replaced an existing model of that name.', example: { name: 'flowers', domain: 'default', task: 'classify', sha256: '9f2e…', bytes: 9134112, labels: 5, replaced: true } },
      },
      async handler(ctx) {
        const domain = targetDomain(ctx, ctx.state.owner!, { body: ctx.state.body })!;
        // Multipart: the model travels as bytes, so models the base64 JSON form cannot carry fit the body limit.
        const { config, onnx } = canonicalContentType(ctx.get('content-type')) === 'multipart/form-data'
          ? uploadFromForm(await uploadForm(ctx, deps))
          : upload(body(ctx));
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
      responses: { 200: { description: 'Removed.', example: { name: 'flowers', domain: 'default', deleted: true } } },
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
      summary: "The domain's custom models (a superadmin: every domain's, or ?domain=) with their configs, for POST /models/restore: JSON with base64 models, or a zip with `Accept: application/zip`.",
      access: 'admin',
      owner: 'query+body',
      query: modelQuery,
      responses: {
        200: {
          description: '{"models": [config + "domain" + "sha256" + "model" (base64)]}, or the zip backup (README "Model backups as zip files").',
          example: { models: [{ name: 'flowers', task: 'classify', input: { width: 224, height: 224, color: 'RGB' }, labels: ['daisy', 'rose'], domain: 'default', sha256: '3b0c…', model: '<base64>' }] },
        },
      },
      async handler(ctx) {
        const domain = targetDomain(ctx, ctx.state.owner!, { allDomains: true });
        if (ctx.accepts('application/json', 'application/zip') === 'application/zip') {
          await sendZipBackup(ctx, deps, domain, `kernelgate-models-${fileStamp()}.zip`, 'application/zip');
          return;
        }
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
      summary: "Installs every model of a backup (the JSON of GET /models/backup, or its zip as application/zip) into the caller's domain (a superadmin: each entry's `domain`, unless ?domain= names one). All or nothing: every entry is checked and every model loaded before the store changes in one commit.",
      access: 'admin',
      owner: 'query+body',
      query: modelQuery,
      body: { type: 'object', required: ['models'], properties: { models: { type: 'array', maxItems: 1000 }, owner_access_key: { type: 'string' }, domain: { type: 'string', minLength: 1, maxLength: 128 } } },
      bodyTypes: [...ZIP_TYPES],
      upload: true,
      bodyExample: { models: [{ name: 'flowers', task: 'classify', input: { width: 224, height: 224, color: 'RGB' }, labels: ['daisy', 'rose'], model: '<base64>' }] },
      responses: { 200: { description: 'Restored.', example: { restored: ['flowers'] } } },
      async handler(ctx) {
        const owner = ctx.state.owner!;
        const domain = targetDomain(ctx, owner, { body: ctx.state.body })!;
        const perEntry = restoresPerEntry(ctx, owner);
        if (ZIP_TYPES.has(canonicalContentType(ctx.get('content-type')))) {
          const restored = await restoreZip(deps, bodyOf(ctx.state), perEntry ? undefined : domain);
          ctx.body = { restored: restored.map((m) => m.name) };
          return;
        }
        const uploads = (body(ctx).models as unknown[]).map(upload).map((u) => ({ domain: perEntry ? u.domain ?? domain : domain, config: u.config, onnx: u.onnx }));
        const restored = await restoreModels(deps.kernels, async (dir) => writeDecodedModels(dir, uploads), undefined);
        ctx.body = { restored: restored.map((m) => m.name) };
      },
    },
  ];
}
