import { randomUUID } from 'node:crypto';
import type { Config } from '../config/config.js';
import { extractImage } from '../inference/image-input.js';
import type { KernelRegistry } from '../inference/registry.js';
import { SESSION_NAME, SESSION_NAME_FORMAT as NAME_RE } from '../validation/names.js';
import { ApiError } from '../problems/api-error.js';
import type { GatewayContext } from '../http/context.js';
import type { RouteSpec } from '../http/route.js';
import { linkNext, pageQueryProperties, readPage, type CursorScope } from '../http/pagination.js';
import type { SessionRecord, SessionStore } from './types.js';


/** Bounds of a session's `config` (README "Sessions"): kept small so every store handles it cheaply. */
export const MAX_CONFIG_BYTES = 64 * 1024;
export const MAX_CONFIG_DEPTH = 32;

/**
 * Refuses a `config` nested deeper than MAX_CONFIG_DEPTH (objects and arrays; the config object itself
 * is level 1) or larger than MAX_CONFIG_BYTES as JSON. The depth walk is iterative, so no nesting can
 * overflow the stack, and it runs before anything serializes the value (JSON.stringify recurses).
 */
export function checkSessionConfig(config: unknown): void {
  const stack: Array<[unknown, number]> = [[config, 1]];
  let visited = 0;
  while (stack.length > 0) {
    const [value, depth] = stack.pop()!;
    if (value === null || typeof value !== 'object') continue;
    if (depth > MAX_CONFIG_DEPTH) {
      throw new ApiError(400, 'invalid-api-params', `Invalid request body "config": nested deeper than ${MAX_CONFIG_DEPTH} levels.`);
    }
    // Every object or array takes at least 2 bytes of JSON: past this many the size limit is exceeded.
    if (++visited > MAX_CONFIG_BYTES / 2) throw configTooLarge(`more than ${MAX_CONFIG_BYTES / 2} objects and arrays`);
    for (const child of Object.values(value)) if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
  }
  const bytes = Buffer.byteLength(JSON.stringify(config));
  if (bytes > MAX_CONFIG_BYTES) throw configTooLarge(`${bytes} bytes as JSON`);
}

const configTooLarge = (what: string) =>
  new ApiError(400, 'invalid-api-params', `Invalid request body "config": ${what}; the limit is ${MAX_CONFIG_BYTES} bytes as JSON.`);

const ownerQuery = {
  type: 'object',
  properties: { owner_access_key: { type: 'string', maxLength: 128 } },
};

/** The infer route's query: the owner, and the confidence threshold of the tasks that score boxes (face, detect). */
const inferQuery = {
  type: 'object',
  properties: {
    ...ownerQuery.properties,
    min_confidence: {
      type: 'string',
      pattern: '^(0|1|0?\\.[0-9]{1,6}|0\\.|1\\.0{0,6})$',
      description: 'Face and detect models: leave out predictions below this confidence, 0 to 1 (default 0.55).',
    },
  },
};

const listQuery = { type: 'object', properties: { ...ownerQuery.properties, ...pageQueryProperties } };

/** GET /session pages by (created, name): zero-padded so that the cursor's strings sort as the numbers do. */
const CREATED_DIGITS = 16;
const sessionCursor = (ctx: GatewayContext, owner: string): CursorScope => ({
  collection: 'session',
  scope: owner,
  secret: ctx.state.auth!.keypair.secretKey,
  arity: 2,
  valid: ([created, name]) => /^[0-9]{16}$/.test(created!) && NAME_RE.test(name!),
});

const sessionSchema = {
  type: 'object',
  properties: {
    sessionId: { type: 'string' },
    sessionName: { type: 'string' },
    owner_access_key: { type: 'string' },
    image: { type: 'string' },
    status: { type: 'string' },
    created_at: { type: 'string', format: 'date-time' },
    last_used_at: { type: 'string', format: 'date-time' },
    idle_expires_at: { type: 'string', format: 'date-time' },
  },
};

const SESSION_EXAMPLE = {
  sessionId: '0b6f8a52-1c1e-4b3f-9d55-2f0d7c0c1a77',
  sessionName: 'ocr1',
  owner_access_key: 'AKIAIOSFODNN7EXAMPLE',
  image: 'ocr',
  status: 'RUNNING',
  created_at: '2026-12-02T10:00:00.000Z',
  last_used_at: '2026-12-02T10:00:00.000Z',
  idle_expires_at: '2026-12-02T11:00:00.000Z',
};

export interface SessionDeps {
  store: SessionStore;
  kernels: KernelRegistry;
  config: Config;
}

export function sessionRoutes(deps: SessionDeps): RouteSpec[] {
  const idleMs = deps.config.sessions.idle_timeout_seconds * 1000;
  const view = (s: SessionRecord) => ({
    sessionId: s.sessionId,
    sessionName: s.sessionName,
    owner_access_key: s.owner,
    image: s.image,
    status: s.status,
    created_at: new Date(s.createdAt).toISOString(),
    last_used_at: new Date(s.lastUsedAt).toISOString(),
    idle_expires_at: new Date(s.lastUsedAt + idleMs).toISOString(),
  });

  /** Another owner's session is 404, never 403: names must not leak across tenants. */
  const findSession = async (ctx: GatewayContext): Promise<SessionRecord> => {
    const acting = ctx.state.owner!;
    const name = ctx.params.name;
    const session = NAME_RE.test(name) ? await deps.store.get(acting.accessKey, name, idleMs) : undefined;
    if (!session) throw new ApiError(404, 'session-not-found', `No session named ${JSON.stringify(name.slice(0, 64))}.`);
    return session;
  };

  return [
    {
      method: 'POST',
      path: '/session',
      summary: 'Creates a compute session (or returns the existing one of that name).',
      access: 'signed',
      owner: 'query+body',
      query: ownerQuery,
      body: {
        type: 'object',
        required: ['name', 'image'],
        properties: {
          name: { type: 'string', pattern: SESSION_NAME },
          image: { type: 'string', minLength: 1, maxLength: 128 },
          owner_access_key: { type: 'string', maxLength: 128 },
          config: { type: 'object' },
        },
      },
      bodyExample: { name: 'ocr1', image: 'ocr' },
      responses: {
        201: { description: 'Created.', schema: sessionSchema, example: { ...SESSION_EXAMPLE, created: true } },
        200: { description: 'A session of that name already exists for the owner.', schema: sessionSchema, example: { ...SESSION_EXAMPLE, created: false } },
      },
      async handler(ctx) {
        const body = ctx.state.body;
        if (body === undefined) throw new ApiError(400, 'invalid-api-params', 'Send a JSON body with "name" and "image".');
        if (body.config !== undefined) checkSessionConfig(body.config);
        const acting = ctx.state.owner!;
        const image = body.image as string;
        // Custom models are looked up in the owner's domain; another domain's is simply not there.
        if (!deps.kernels.has(acting.domain, image)) throw new ApiError(404, 'model-not-found', `No model named ${JSON.stringify(image)}.`);
        const now = Date.now();
        const max = acting.maxSessions ?? deps.config.sessions.default_max_sessions;
        const outcome = await deps.store.create(
          {
            sessionId: randomUUID(),
            sessionName: body.name as string,
            owner: acting.accessKey,
            image,
            status: 'RUNNING',
            createdBy: ctx.state.auth!.keypair.accessKey,
            createdAt: now,
            lastUsedAt: now,
            config: (body.config as Record<string, unknown> | undefined) ?? {},
          },
          max,
          idleMs,
        );
        if (outcome.state === 'quota') {
          throw new ApiError(412, 'quota-exceeded', `The keypair already has ${outcome.active} of its ${max} concurrent sessions.`);
        }
        if (outcome.state === 'exists' && outcome.session.image !== image) {
          throw new ApiError(400, 'invalid-api-params', `Session ${outcome.session.sessionName} exists and runs ${outcome.session.image}.`);
        }
        ctx.status = outcome.state === 'created' ? 201 : 200;
        ctx.body = { ...view(outcome.session), created: outcome.state === 'created' };
      },
    },
    {
      method: 'GET',
      path: '/session',
      summary: "Lists the owner's sessions, oldest first, a page at a time (`Link: <...>; rel=\"next\"` while more remain).",
      access: 'signed',
      owner: 'query+body',
      query: listQuery,
      responses: {
        200: { description: 'Sessions.', schema: { type: 'object', properties: { sessions: { type: 'array', items: sessionSchema } } }, example: { sessions: [SESSION_EXAMPLE] } },
      },
      async handler(ctx) {
        const acting = ctx.state.owner!;
        const scope = sessionCursor(ctx, acting.accessKey);
        const { limit, after } = readPage(ctx, scope);
        const from = after && { createdAt: Number(after[0]), name: after[1]! };
        const { sessions, more } = await deps.store.page(acting.accessKey, idleMs, from, limit);
        const last = sessions[sessions.length - 1];
        linkNext(ctx, scope, more && last ? [String(last.createdAt).padStart(CREATED_DIGITS, '0'), last.sessionName] : undefined);
        ctx.body = { sessions: sessions.map(view) };
      },
    },
    {
      method: 'GET',
      path: '/session/:name',
      summary: 'One session.',
      access: 'signed',
      owner: 'query+body',
      query: ownerQuery,
      responses: { 200: { description: 'The session.', schema: sessionSchema, example: SESSION_EXAMPLE } },
      async handler(ctx) {
        ctx.body = view(await findSession(ctx));
      },
    },
    {
      method: 'DELETE',
      path: '/session/:name',
      summary: 'Destroys a session.',
      access: 'signed',
      owner: 'query+body',
      query: ownerQuery,
      responses: { 200: { description: 'Destroyed.', example: { ...SESSION_EXAMPLE, status: 'TERMINATED', deleted: true } } },
      async handler(ctx) {
        const session = await findSession(ctx);
        await deps.store.delete(session.owner, session.sessionName);
        ctx.body = { ...view(session), status: 'TERMINATED', deleted: true };
      },
    },
    {
      method: 'POST',
      path: '/session/:name/infer',
      summary: "Runs the session's model on an image.",
      access: 'signed',
      owner: 'query+body',
      query: inferQuery,
      bodyTypes: ['image/*', 'multipart/form-data', 'application/octet-stream'],
      bodySchemas: {
        'multipart/form-data': {
          type: 'object',
          required: ['image'],
          properties: { image: { type: 'string', format: 'binary', description: 'The image file (PNG, JPEG, WebP, GIF, TIFF).' } },
        },
      },
      body: { type: 'object', properties: { image: { type: 'string' }, owner_access_key: { type: 'string' } } },
      bodyExample: { image: 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGP4z8DwHwAFAAH/iZk9HQAAAABJRU5ErkJggg==' },
      responses: {
        200: {
          description: 'Model output.',
          schema: {
            type: 'object',
            properties: { predictions: { type: 'array' }, duration_ms: { type: 'number' }, provider: { type: 'string' } },
          },
          example: {
            predictions: [{ text: 'Hello kernelgate', confidence: 0.98, box: [[24, 20], [298, 20], [298, 58], [24, 58]], x_min: 24, y_min: 20, x_max: 298, y_max: 58 }],
            duration_ms: 182.4,
            provider: 'cpu',
          },
        },
      },
      async handler(ctx) {
        const session = await findSession(ctx);
        const image = await extractImage(ctx.state.rawBody, ctx.get('content-type') || undefined, ctx.state.body, deps.config.inference.max_image_bytes);
        // A client that disconnects stops waiting for a model slot (and its job stops at the next stage).
        const gone = new AbortController();
        const onClose = () => {
          if (!ctx.res.writableFinished) gone.abort();
        };
        ctx.res.once('close', onClose);
        try {
          const minConfidence = typeof ctx.query.min_confidence === 'string' ? Number(ctx.query.min_confidence) : undefined;
          ctx.body = await deps.kernels.infer(ctx.state.owner!.domain, session.image, image, gone.signal, session.owner, { minConfidence });
        } finally {
          ctx.res.off('close', onClose);
        }
        // Only a successful use restarts the idle timer.
        await deps.store.touch(session.owner, session.sessionName, Date.now());
      },
    },
  ];
}
