/**
 * DeepStack clients create no session: each call runs in an implicit compute session of its keypair for
 * the model it uses, named `vision.<model>` (a hash for names too long for a session name). It is a real
 * session of the store: listed by GET /session, counted against the keypair's max_sessions (412 when
 * full, as POST /session), its idle timer restarted by each successful call, expired like any other.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Keypair } from '../keypairs/keypair.js';
import { ApiError } from '../problems/api-error.js';
import type { SessionRecord, SessionStore } from '../sessions/types.js';

export const IMPLICIT_PREFIX = 'vision.';

export function implicitSessionName(model: string): string {
  const name = `${IMPLICIT_PREFIX}${model}`;
  return name.length <= 64 ? name : `${IMPLICIT_PREFIX}${createHash('sha256').update(model).digest('hex').slice(0, 32)}`;
}

export interface ImplicitSessions {
  /** The owner's session for `model`, created on first use. */
  enter(owner: Keypair, createdBy: string, model: string): Promise<SessionRecord>;
  /** After a successful call: the idle timer restarts. */
  used(session: SessionRecord): Promise<void>;
}

export function implicitSessions(store: SessionStore, idleMs: number, defaultMaxSessions: number): ImplicitSessions {
  return {
    async enter(owner, createdBy, model) {
      const now = Date.now();
      const max = owner.maxSessions ?? defaultMaxSessions;
      const outcome = await store.create(
        { sessionId: randomUUID(), sessionName: implicitSessionName(model), owner: owner.accessKey, image: model, status: 'RUNNING', createdBy, createdAt: now, lastUsedAt: now, config: { implicit: true } },
        max,
        idleMs,
      );
      if (outcome.state === 'quota') {
        throw new ApiError(412, 'quota-exceeded', `The keypair already has ${outcome.active} of its ${max} concurrent sessions; DeepStack calls run in a session per model (vision.<model>): delete one.`);
      }
      if (outcome.session.image !== model) {
        // Someone created a session of that name by hand for another model.
        throw new ApiError(400, 'invalid-api-params', `Session ${outcome.session.sessionName} exists and runs ${outcome.session.image}; delete it.`);
      }
      return outcome.session;
    },
    used: (session) => store.touch(session.owner, session.sessionName, Date.now()),
  };
}
