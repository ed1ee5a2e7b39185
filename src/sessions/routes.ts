import { randomUUID } from 'node:crypto';
import type { Config } from '../config/config.js';
import { extractImage } from '../inference/image-input.js';
import type { KernelRegistry } from '../inference/kernels.js';
import type { Keypair } from '../keypairs/keypair.js';
import { ApiError } from '../problems/api-error.js';
import type { GatewayContext } from '../server/context.js';
import type { RouteSpec } from '../server/route.js';
import { actingOwner } from './scope.js';
import type { SessionRecord, SessionStore } from './types.js';

export const SESSION_NAME = '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$';
const NAME_RE = new RegExp(SESSION_NAME);

const ownerQuery = {
  type: 'object',
  properties: { owner_access_key: { type: 'string', maxLength: 128 } },
};

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

export interface SessionDeps {
  store: SessionStore;
  kernels: KernelRegistry;
  lookup(accessKey: string): Keypair | undefined;
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

  const owner = (ctx: GatewayContext): Keypair => actingOwner(ctx, deps.lookup);

  /** Another owner's session is 404, never 403: names must not leak across tenants. */
  const findSession = async (ctx: GatewayContext): Promise<SessionRecord> => {
    const acting = owner(ctx);
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
      responses: {
        201: { description: 'Created.', schema: sessionSchema },
        200: { description: 'A session of that name already exists for the owner.', schema: sessionSchema },
      },
      async handler(ctx) {
        const body = ctx.state.body;
        if (body === undefined) throw new ApiError(400, 'invalid-api-params', 'Send a JSON body with "name" and "image".');
        const acting = owner(ctx);
        const image = body.image as string;
        if (!deps.kernels.has(image)) throw new ApiError(404, 'model-not-found', `No model named ${JSON.stringify(image)}.`);
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
      summary: "Lists the owner's sessions.",
      access: 'signed',
      query: ownerQuery,
      responses: { 200: { description: 'Sessions.', schema: { type: 'object', properties: { sessions: { type: 'array', items: sessionSchema } } } } },
      async handler(ctx) {
        const acting = owner(ctx);
        ctx.body = { sessions: (await deps.store.list(acting.accessKey, idleMs)).map(view) };
      },
    },
    {
      method: 'GET',
      path: '/session/:name',
      summary: 'One session.',
      access: 'signed',
      query: ownerQuery,
      responses: { 200: { description: 'The session.', schema: sessionSchema } },
      async handler(ctx) {
        ctx.body = view(await findSession(ctx));
      },
    },
    {
      method: 'DELETE',
      path: '/session/:name',
      summary: 'Destroys a session.',
      access: 'signed',
      query: ownerQuery,
      responses: { 200: { description: 'Destroyed.' } },
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
      query: ownerQuery,
      bodyTypes: ['image/*', 'multipart/form-data', 'application/octet-stream'],
      body: { type: 'object', properties: { image: { type: 'string' }, owner_access_key: { type: 'string' } } },
      responses: {
        200: {
          description: 'Model output.',
          schema: {
            type: 'object',
            properties: { predictions: { type: 'array' }, duration_ms: { type: 'number' }, provider: { type: 'string' } },
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
          ctx.body = await deps.kernels.infer(session.image, image, gone.signal, session.owner);
        } finally {
          ctx.res.off('close', onClose);
        }
        // Only a successful use restarts the idle timer.
        await deps.store.touch(session.owner, session.sessionName, Date.now());
      },
    },
  ];
}
