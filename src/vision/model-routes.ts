/**
 * DeepStack's model management (admin): addmodel (files `model` ONNX + `config` JSON, field `name`),
 * listmodels, deletemodel. The models are the admin's domain's custom models, the same ones GET /models
 * lists and sessions run; an upload is checked exactly as on POST /models (a real run, output vs labels).
 */
import { readForm, textField } from '../http/form.js';
import { uploadForm } from '../models/routes.js';
import type { GatewayContext } from '../http/context.js';
import type { RouteSpec } from '../http/route.js';
import type { KernelRegistry } from '../inference/registry.js';
import { uploadFromForm } from '../models/form-upload.js';
import { ApiError } from '../problems/api-error.js';
import { durationSince } from './answers.js';

export interface VisionModelDeps {
  kernels: KernelRegistry;
  maxModelBytes: number;
  /** Largest part of a spooled form held in memory: server.body_limit_bytes. */
  maxMemoryBytes: number;
}

import { VISION_EXAMPLES } from './examples.js';

const adminRoute = (path: string, summary: string, handler: RouteSpec['handler'], upload = false): RouteSpec => ({
  method: 'POST',
  path,
  summary,
  access: 'admin',
  owner: 'query',
  bodyTypes: ['multipart/form-data', 'application/x-www-form-urlencoded'],
  ...(upload ? { upload: true } : {}),
  responses: { 200: { description: 'DeepStack answer: {"success": true, ...}.', example: VISION_EXAMPLES[path] } },
  handler,
});

export function visionModelRoutes(deps: VisionModelDeps): RouteSpec[] {
  const form = (ctx: GatewayContext) => readForm(ctx.state.rawBody, ctx.get('content-type') || undefined, { maxFileBytes: deps.maxModelBytes });
  return [
    adminRoute('/v1/vision/addmodel', 'Adds or replaces a custom model of your domain (files "model" and "config", field "name").', async (ctx) => {
      const started = performance.now();
      const { config, onnx } = uploadFromForm(await uploadForm(ctx, deps));
      const { replaced } = await deps.kernels.install(ctx.state.owner!.domain, config, onnx);
      ctx.body = { success: true, message: replaced ? 'model updated' : 'model registered', duration: durationSince(started) };
    }, true),
    adminRoute('/v1/vision/listmodels', "Your domain's custom models: name, dateupdated, size (MB).", async (ctx) => {
      await form(ctx);
      ctx.body = {
        success: true,
        models: deps.kernels.store.list(ctx.state.owner!.domain).map((m) => ({ name: m.config.name, dateupdated: m.createdAt, size: Math.round(m.bytes / 10_000) / 100 })),
      };
    }),
    adminRoute('/v1/vision/deletemodel', 'Removes a custom model of your domain (field "name").', async (ctx) => {
      const started = performance.now();
      const name = textField(await form(ctx), 'name');
      if (name === undefined || name === '') throw new ApiError(400, 'invalid-api-params', 'Send the model\'s "name".');
      if (!(await deps.kernels.remove(ctx.state.owner!.domain, name))) throw new ApiError(404, 'model-not-found', `No custom model named ${JSON.stringify(name.slice(0, 64))}.`);
      ctx.body = { success: true, message: 'Model removed', duration: durationSince(started) };
    }),
  ];
}
