/**
 * The DeepStack-compatible API (DESIGN.md "DeepStack-compatible API"): what Home Assistant, Blue Iris and
 * Agent DVR call, unmodified. Every route is a POST with a multipart form, authenticated like any signed
 * route (Backend.AI signature, or api_key / admin_key / x-api-key with "apikey" in [auth] schemes),
 * charged to the credential's keypair by the rate-limit stage, and run in the keypair's implicit session
 * for the model (implicit-session.ts). Errors are the gateway's problem documents with DeepStack's members
 * added (problems/middleware.ts) and real status codes; Koa sends every JSON answer with Content-Length.
 */
import type { Config } from '../config/config.js';
import { imagePart, readForm, textField, type Form } from '../http/form.js';
import type { GatewayContext } from '../http/context.js';
import type { RouteSpec } from '../http/route.js';
import { inspectImage, orientedSize } from '../inference/image.js';
import type { InferenceResult } from '../inference/kernel.js';
import type { KernelRegistry } from '../inference/registry.js';
import type { StoredModel } from '../inference/store/model-store.js';
import type { SessionStore } from '../sessions/types.js';
import { ApiError } from '../problems/api-error.js';
import { classes, detections, durationSince, faces, textLines } from './answers.js';
import { implicitSessions } from './implicit-session.js';
import { parseMinConfidence } from './min-confidence.js';
import { visionModelRoutes } from './model-routes.js';

export interface VisionDeps {
  kernels: KernelRegistry;
  sessions: SessionStore;
  config: Config;
}

/** DeepStack's defaults. */
export const DETECTION_MIN_CONFIDENCE = 0.4;
export const FACE_MIN_CONFIDENCE = 0.55;
export const FACE_KERNEL = 'face';
export const OCR_KERNEL = 'ocr';

const notActivated = (what: string, why: string) => new ApiError(403, 'generic-forbidden', `${what} endpoint not activated: ${why}`);

import { VISION_EXAMPLES } from './examples.js';

const FORM_TYPES = ['multipart/form-data', 'application/x-www-form-urlencoded'];

/** Every inference route: a read-scoped key may call it (it is inference, not a change). */
const inferenceRoute = (path: string, summary: string, handler: RouteSpec['handler']): RouteSpec => ({
  method: 'POST',
  path,
  summary,
  access: 'signed',
  owner: 'query',
  readScope: true,
  bodyTypes: FORM_TYPES,
  responses: { 200: { description: 'DeepStack answer: {"success": true, ..., "duration"}.', example: VISION_EXAMPLES[path] } },
  handler,
});

export function visionRoutes(deps: VisionDeps): RouteSpec[] {
  const { kernels, config } = deps;
  const implicit = implicitSessions(deps.sessions, config.sessions.idle_timeout_seconds * 1000, config.sessions.default_max_sessions);
  const maxImage = config.inference.max_image_bytes;

  const form = (ctx: GatewayContext) => readForm(ctx.state.rawBody, ctx.get('content-type') || undefined, { maxFileBytes: maxImage });

  const image = (f: Form, anyFile = false): Buffer => {
    const found = imagePart(f) ?? (anyFile ? f.firstFile : undefined);
    if (found === undefined || found.length === 0) throw new ApiError(400, 'invalid-image', `No image: send it as the multipart file ${anyFile ? 'part' : 'field "image"'}.`);
    return found;
  };

  /** Runs `model` in the owner's implicit session for it; the session's idle timer restarts on success. */
  const run = async (ctx: GatewayContext, model: string, picture: Buffer, minConfidence?: number): Promise<InferenceResult> => {
    const owner = ctx.state.owner!;
    const session = await implicit.enter(owner, ctx.state.auth!.keypair.accessKey, model);
    const gone = new AbortController();
    const onClose = () => {
      if (!ctx.res.writableFinished) gone.abort();
    };
    ctx.res.once('close', onClose);
    try {
      const result = await kernels.infer(owner.domain, model, picture, gone.signal, owner.accessKey, minConfidence === undefined ? {} : { minConfidence });
      await implicit.used(session);
      return result;
    } finally {
      ctx.res.off('close', onClose);
    }
  };

  /** A custom model of the owner's domain named by the config, of the task the route needs. */
  const configured = (ctx: GatewayContext, what: string, key: 'detection_model' | 'scene_model', task: 'detect' | 'classify'): StoredModel => {
    const name = config.vision[key];
    if (name === '') throw notActivated(what, `no model is configured ([vision] ${key}).`);
    const model = kernels.store.get(ctx.state.owner!.domain, name);
    if (model === undefined) throw notActivated(what, `model ${JSON.stringify(name)} ([vision] ${key}) is not installed in your domain; an admin uploads it with /v1/vision/addmodel.`);
    if (model.config.task !== task) throw notActivated(what, `model ${JSON.stringify(name)} ([vision] ${key}) is a ${model.config.task} model, not ${task}.`);
    return model;
  };

  /** Width and height of the image as the models see it (EXIF orientation applied); the kernel has accepted it. */
  const uprightSize = async (picture: Buffer) => orientedSize(await inspectImage(picture, { maxBytes: maxImage, maxPixels: config.inference.max_image_pixels }));

  return [
    inferenceRoute('/v1/vision/detection', 'DeepStack object detection, by the [vision] detection_model of your domain.', async (ctx) => {
      const started = performance.now();
      const f = await form(ctx);
      const min = parseMinConfidence(textField(f, 'min_confidence'), DETECTION_MIN_CONFIDENCE);
      const picture = image(f);
      const model = configured(ctx, 'Detection', 'detection_model', 'detect');
      const result = await run(ctx, model.config.name, picture, min);
      ctx.body = { success: true, predictions: detections(result.predictions, min), duration: durationSince(started) };
    }),
    inferenceRoute('/v1/vision/scene', 'DeepStack scene recognition, by the [vision] scene_model of your domain.', async (ctx) => {
      const started = performance.now();
      const picture = image(await form(ctx));
      const model = configured(ctx, 'Scene', 'scene_model', 'classify');
      const best = (await run(ctx, model.config.name, picture)).predictions[0] as { label?: unknown; confidence?: unknown } | undefined;
      ctx.body = { success: true, label: String(best?.label ?? ''), confidence: typeof best?.confidence === 'number' ? best.confidence : 0, duration: durationSince(started) };
    }),
    inferenceRoute('/v1/vision/custom/list', "DeepStack's list of custom models (Blue Iris): your domain's.", async (ctx) => {
      await form(ctx); // a malformed body is still a 400
      ctx.body = { success: true, models: kernels.store.list(ctx.state.owner!.domain).map((m) => m.config.name) };
    }),
    inferenceRoute('/v1/vision/custom/:name', 'A custom model of your domain: detect (boxes) or classify (labels over the whole image).', async (ctx) => {
      const started = performance.now();
      const f = await form(ctx);
      const min = parseMinConfidence(textField(f, 'min_confidence'), DETECTION_MIN_CONFIDENCE);
      const picture = image(f);
      const name = ctx.params.name!;
      const model = kernels.store.get(ctx.state.owner!.domain, name);
      if (model === undefined) throw new ApiError(404, 'model-not-found', `No custom model named ${JSON.stringify(name.slice(0, 64))}.`);
      const result = await run(ctx, model.config.name, picture, min);
      const predictions = model.config.task === 'detect' ? detections(result.predictions, min) : classes(result.predictions, min, await uprightSize(picture));
      ctx.body = { success: true, predictions, duration: durationSince(started) };
    }),
    inferenceRoute('/v1/vision/face', 'DeepStack face detection, by the built-in face kernel.', async (ctx) => {
      const started = performance.now();
      const f = await form(ctx);
      const min = parseMinConfidence(textField(f, 'min_confidence'), FACE_MIN_CONFIDENCE);
      const picture = image(f);
      if (!kernels.isBuiltin(FACE_KERNEL)) throw notActivated('Face', 'this gateway has no face kernel.');
      const result = await run(ctx, FACE_KERNEL, picture, min);
      ctx.body = { success: true, predictions: faces(result.predictions, min), duration: durationSince(started) };
    }),
    ...['/v1/vision/ocr', '/v1/image/ocr'].map((path) =>
      inferenceRoute(path, 'OCR (CodeProject.AI): the first file part, whatever its name; each line of text is a prediction whose label is the text.', async (ctx) => {
        const started = performance.now();
        const picture = image(await form(ctx), true);
        const result = await run(ctx, OCR_KERNEL, picture);
        ctx.body = { success: true, predictions: textLines(result.predictions), duration: durationSince(started) };
      }),
    ),
    ...visionModelRoutes({ kernels, maxModelBytes: config.server.upload_limit_bytes, maxMemoryBytes: config.server.body_limit_bytes }),
  ];
}
