/** Unit specs of the pure stage functions (src/pipeline.ts lists the stages in request order). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { anonymous, authenticate, type Authenticator } from '../src/auth/authenticate.js';
import { ownerScope, requireRole } from '../src/auth/authorize.js';
import { ADMIN_OWNER_FORBIDDEN } from '../src/auth/owner.js';
import { anonymousPrincipal } from '../src/auth/principal.js';
import { bodyStage } from '../src/http/body.js';
import type { GatewayContext } from '../src/http/context.js';
import { validate } from '../src/http/validate.js';
import type { Keypair } from '../src/keypairs/keypair.js';
import { ApiError } from '../src/problems/api-error.js';
import { addressPayer, keypairPayer } from '../src/ratelimit/payer.js';

const limits = { anonymous: 10, keypair: 100 };
const keypair = (accessKey: string, role: Keypair['role'], extra: Partial<Keypair> = {}): Keypair =>
  ({ accessKey, secretKey: 'x'.repeat(40), role, domain: 'default', user: '', isActive: true, ...extra }) as Keypair;
const USER = keypair('AKIAUSER000000000001', 'user');
const ADMIN = keypair('AKIAADMIN00000000002', 'admin');
const OTHER = keypair('AKIAOTHER00000000003', 'user');
const FOREIGN_ADMIN_TARGET = keypair('AKIAFOREIGN000000004', 'user', { domain: 'elsewhere' });
const lookup = (ak: string) => [USER, ADMIN, OTHER, FOREIGN_ADMIN_TARGET].find((k) => k.accessKey === ak);

const fakeCtx = (state: Partial<GatewayContext['state']>, query: Record<string, unknown> = {}) =>
  ({ state: { client: { address: '192.0.2.7', host: 'h', viaTrustedProxy: false }, ...state }, query }) as unknown as GatewayContext;

const throwsProblem = (fn: () => unknown, status: number, detail?: string | RegExp) =>
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ApiError);
    assert.equal(e.status, status);
    if (typeof detail === 'string') assert.equal(e.message, detail);
    else if (detail) assert.match(e.message, detail);
    return true;
  });

describe('payer selection (src/ratelimit/payer.ts)', () => {
  it('an address pays per bucket (IPv6 per /64) at the anonymous limit', () => {
    assert.deepEqual(addressPayer('192.0.2.7', limits), { key: 'ip:192.0.2.7', limit: 10, policy: 'anonymous' });
    assert.equal(addressPayer('2001:db8:1:2:aaaa::1', limits).key, addressPayer('2001:db8:1:2:bbbb::9', limits).key);
    assert.notEqual(addressPayer('2001:db8:1:2::1', limits).key, addressPayer('2001:db8:1:3::1', limits).key);
  });
  it("a keypair pays its own rate_limit, else the default", () => {
    assert.deepEqual(keypairPayer(USER, limits), { key: `ak:${USER.accessKey}`, limit: 100, policy: 'keypair' });
    assert.equal(keypairPayer(keypair('AKIALIMITED000000005', 'user', { rateLimit: 3 }), limits).limit, 3);
  });
  it('the anonymous principal is the address', () => {
    const p = anonymousPrincipal('192.0.2.7', limits);
    assert.equal(p.keypair, undefined);
    assert.equal(p.scheme, 'anonymous');
    assert.deepEqual(p.payer, addressPayer('192.0.2.7', limits));
  });
});

describe('authenticate stage (src/auth/authenticate.ts)', () => {
  const principal = { keypair: USER, scheme: 'test', credentialId: USER.accessKey, payer: keypairPayer(USER, limits) };
  const ok: Authenticator = { scheme: 'test', claims: () => true, authenticate: async () => principal };
  const failing: Authenticator = { scheme: 'test', claims: () => true, authenticate: async () => { throw new ApiError(401, 'auth-failed', 'no'); } };
  it('leaves the principal on ctx.state', async () => {
    const ctx = fakeCtx({});
    await authenticate([ok], limits)(ctx);
    assert.equal(ctx.state.principal, principal);
    assert.equal(ctx.state.authFailure, undefined);
  });
  it('a failure leaves the address as principal (it pays) and defers the error to the rate-limit stage', async () => {
    const ctx = fakeCtx({});
    await authenticate([failing], limits)(ctx);
    assert.deepEqual(ctx.state.principal, anonymousPrincipal('192.0.2.7', limits));
    assert.ok(ctx.state.authFailure instanceof ApiError);
  });
  it('picks the authenticator that claims the request; the first answers the unclaimed', async () => {
    const other = { ...principal, scheme: 'other' };
    const second: Authenticator = { scheme: 'other', claims: (ctx) => ctx.query.other === '1', authenticate: async () => other };
    const first: Authenticator = { ...ok, claims: () => false };
    const claimed = fakeCtx({}, { other: '1' });
    await authenticate([first, second], limits)(claimed);
    assert.equal(claimed.state.principal, other);
    const unclaimed = fakeCtx({});
    await authenticate([first, second], limits)(unclaimed);
    assert.equal(unclaimed.state.principal, principal);
  });
  it('public routes: the address is the principal', () => {
    const ctx = fakeCtx({});
    anonymous(limits)(ctx);
    assert.equal(ctx.state.principal!.payer.key, 'ip:192.0.2.7');
  });
});

describe('authorize stage (src/auth/authorize.ts)', () => {
  const signedBy = (k: Keypair, query: Record<string, unknown> = {}, body?: Record<string, unknown>, bodySigned = true) =>
    fakeCtx({ principal: { keypair: k, scheme: 'backendai', credentialId: k.accessKey, payer: keypairPayer(k, limits) }, auth: { keypair: k, bodySigned } as never, body }, query);
  it('only admin routes get a role check; users get 403 there', () => {
    assert.equal(requireRole({ access: 'signed' }), undefined);
    assert.equal(requireRole({ access: 'public' }), undefined);
    const admin = requireRole({ access: 'admin' })!;
    throwsProblem(() => admin(signedBy(USER)), 403, 'This operation needs an admin keypair.');
    assert.doesNotThrow(() => admin(signedBy(ADMIN)));
  });
  it('owner-scoped routes resolve owner_access_key into ctx.state.owner; others get no stage', () => {
    assert.equal(ownerScope({}, lookup), undefined);
    const scope = ownerScope({ owner: 'query+body' }, lookup)!;
    const self = signedBy(USER);
    scope(self);
    assert.equal(self.state.owner, USER);
    const forAnother = signedBy(ADMIN, { owner_access_key: USER.accessKey });
    scope(forAnother);
    assert.equal(forAnother.state.owner, USER);
    throwsProblem(() => scope(signedBy(USER, { owner_access_key: OTHER.accessKey })), 403, 'Only admins may act on behalf of another keypair.');
    throwsProblem(() => scope(signedBy(ADMIN, { owner_access_key: FOREIGN_ADMIN_TARGET.accessKey })), 403, ADMIN_OWNER_FORBIDDEN);
    throwsProblem(() => scope(signedBy(ADMIN, { owner_access_key: 'not a key!' })), 400, 'owner_access_key must be an access key.');
  });
  it('the body is read only for query+body, and never when the signature does not cover it', () => {
    const body = { owner_access_key: USER.accessKey };
    const fromBody = signedBy(ADMIN, {}, body);
    ownerScope({ owner: 'query+body' }, lookup)!(fromBody);
    assert.equal(fromBody.state.owner, USER);
    const queryOnly = signedBy(ADMIN, {}, body);
    ownerScope({ owner: 'query' }, lookup)!(queryOnly);
    assert.equal(queryOnly.state.owner, ADMIN);
    throwsProblem(() => ownerScope({ owner: 'query+body' }, lookup)!(signedBy(ADMIN, {}, body, false)), 400, /signature does not cover/);
  });
});

describe('validate and body stages (src/http/validate.ts, src/http/body.ts)', () => {
  it('no schema, no stage; the first error names its place', () => {
    assert.equal(validate({}), undefined);
    const stage = validate({ query: { type: 'object', properties: { echo: { type: 'string', maxLength: 2 } } } })!;
    throwsProblem(() => stage(fakeCtx({}, { echo: 'long' })), 400, 'Invalid query parameter "echo": must NOT have more than 2 characters.');
    assert.doesNotThrow(() => stage(fakeCtx({}, { echo: 'ok' })));
  });
  it('a signed GET or HEAD gets no body stage; a public route reads, a signed POST parses', () => {
    assert.equal(bodyStage(true, 'GET', 1024), undefined);
    assert.equal(bodyStage(true, 'HEAD', 1024), undefined);
    assert.equal(bodyStage(true, 'POST', 1024)!.name, 'parse');
    assert.equal(bodyStage(false, 'GET', 1024)!.name, 'readBody');
  });
});
