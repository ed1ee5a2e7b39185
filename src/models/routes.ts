import { decodeBase64 } from '../http/base64.js';
import type { KernelRegistry } from '../inference/kernels.js';
import type { Keypair } from '../keypairs/keypair.js';
import { ApiError } from '../problems/api-error.js';
import type { GatewayContext } from '../server/context.js';
import type { RouteSpec } from '../server/route.js';
import { actingOwner } from '../sessions/scope.js';
import { modelConfigSchema, parseModelConfig, RESERVED_MODEL_NAMES } from './model-config.js';

export interface ModelRouteDeps {
  kernels: KernelRegistry;
  lookup(accessKey: string): Keypair | undefined;
}

/** The ONNX bytes of an upload (`model`: base64) and its config (every other member). */
function upload(raw: unknown): { config: ReturnType<typeof parseModelConfig>; onnx: Buffer } {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new ApiError(400, 'invalid-api-params', 'Each model must be a JSON object.');
  const { model, sha256: _sha, ...config } = raw as Record<string, unknown>;
  const parsed = parseModelConfig(config);
  const decoded = typeof model === 'string' && model.length > 0 ? decodeBase64(model) : undefined;
  if (!decoded?.ok) {
    throw new ApiError(400, 'invalid-api-params', `"model" must be the ONNX file, base64-encoded${decoded ? ` (${decoded.detail})` : ''}.`);
  }
  return { config: parsed, onnx: decoded.bytes };
}

const uploadSchema = {
  type: 'object',
  required: ['name', 'task', 'input', 'labels', 'model'],
  properties: { ...modelConfigSchema.properties, model: { type: 'string', contentEncoding: 'base64' }, owner_access_key: { type: 'string' } },
};

/** GET /models for everyone; upload, removal, backup and restore for admins. */
export function modelRoutes(deps: ModelRouteDeps): RouteSpec[] {
  // owner_access_key is checked here as on every route (models are global, so it changes nothing).
  const scope = (ctx: GatewayContext) => actingOwner(ctx, deps.lookup);
  const body = (ctx: GatewayContext) => {
    if (ctx.state.body === undefined) throw new ApiError(400, 'invalid-api-params', 'Send a JSON body.');
    const { owner_access_key: _owner, ...rest } = ctx.state.body;
    return rest;
  };
  return [
    {
      method: 'GET',
      path: '/models',
      summary: 'The models sessions can run: the built-in ocr and uploaded ones.',
      access: 'signed',
      responses: { 200: { description: 'Models.' } },
      handler(ctx) {
        scope(ctx);
        ctx.body = { models: deps.kernels.list() };
      },
    },
    {
      method: 'POST',
      path: '/models',
      summary: 'Uploads (or replaces) a custom ONNX model with its config.',
      access: 'admin',
      body: uploadSchema,
      responses: { 201: { description: 'Installed.' }, 200: { description: 'Replaced an existing model of that name.' } },
      async handler(ctx) {
        scope(ctx);
        const { config, onnx } = upload(body(ctx));
        const { model, replaced } = await deps.kernels.install(config, onnx);
        ctx.status = replaced ? 200 : 201;
        ctx.body = { name: config.name, task: config.task, sha256: model.sha256, bytes: model.bytes, labels: config.labels.length, replaced };
      },
    },
    {
      method: 'DELETE',
      path: '/models/:name',
      summary: 'Removes a custom model; sessions that use it answer 404 model-not-found.',
      access: 'admin',
      responses: { 200: { description: 'Removed.' } },
      async handler(ctx) {
        scope(ctx);
        const name = ctx.params.name;
        if (RESERVED_MODEL_NAMES.has(name)) throw new ApiError(400, 'invalid-api-params', `${name} is built in.`);
        if (!(await deps.kernels.remove(name))) throw new ApiError(404, 'model-not-found', `No model named ${JSON.stringify(name.slice(0, 64))}.`);
        ctx.body = { name, deleted: true };
      },
    },
    {
      method: 'GET',
      path: '/models/backup',
      summary: 'Every custom model with its config, for POST /models/restore.',
      access: 'admin',
      responses: { 200: { description: '{"models": [config + "sha256" + "model" (base64)]}' } },
      async handler(ctx) {
        scope(ctx);
        const { readFile } = await import('node:fs/promises');
        const models = await Promise.all(
          deps.kernels.store.list().map(async (m) => ({ ...m.config, sha256: m.sha256, model: (await readFile(m.path)).toString('base64') })),
        );
        ctx.body = { models };
      },
    },
    {
      method: 'POST',
      path: '/models/restore',
      summary: 'Installs every model of a backup: all configs are validated first, then each model is checked as on upload and stored in turn.',
      access: 'admin',
      body: { type: 'object', required: ['models'], properties: { models: { type: 'array', maxItems: 1000 }, owner_access_key: { type: 'string' } } },
      responses: { 200: { description: 'Restored.' } },
      async handler(ctx) {
        scope(ctx);
        const uploads = (body(ctx).models as unknown[]).map(upload);
        const restored: string[] = [];
        for (const { config, onnx } of uploads) {
          await deps.kernels.install(config, onnx);
          restored.push(config.name);
        }
        ctx.body = { restored };
      },
    },
  ];
}
