/**
 * Issue 10: the three instyle-style roles end to end on one gateway with every scheme enabled, against an
 * OpenID Provider the test controls (discovery document + JWKS over HTTP):
 * - service: x-api-key of scope read alone lists and infers, cannot create (403 naming the scope);
 * - admin: x-api-key + its own token (Bearer access token, or a bare id token) acts for the key's customer;
 * - superuser: its own API key + its own token + x-selected-customer acts for any one customer;
 * a customer's admin cannot reach another domain's customer (403); x-selected-customer and
 * owner_access_key that differ are a 400; every scheme charges the right keypair, and a wrong API key
 * or token is charged to the address.
 * Also: a discovery document whose `issuer` is not the configured issuer is not used (OIDC Discovery §4.3).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatKeypair, type Keypair } from '../src/keypairs/keypair.js';
import { startGateway, type Response, type TestGateway, type TestKeypair } from './helpers/gateway.js';
import { accessToken, idToken, makeSigningKey, startJwksProvider, type JwksProvider, type SigningKey } from './helpers/jwks-provider.js';
import { assertProblem } from './helpers/problems.js';
import { renderText } from './helpers/render-text.js';

const CLIENT = 'instyle-app-client';
const ANONYMOUS_LIMIT = 50;

/** Distinct limits, so X-RateLimit-Limit says which keypair (or the address) paid. */
const CUSTOMER: TestKeypair = { accessKey: 'AKIAKGATEACMECUST001', secretKey: 'acmeCustomerSecret000000000000000000C01', role: 'user', domain: 'acme', user: 'customer@acme.example', rateLimit: 501 };
const ACME_ADMIN: TestKeypair = { accessKey: 'AKIAKGATEACMEADMN002', secretKey: 'acmeAdminSecret0000000000000000000000A02', role: 'admin', domain: 'acme', user: 'admin@acme.example', rateLimit: 502, oidcSubjects: ['acme-admin-sub'] };
const GLOBEX: TestKeypair = { accessKey: 'AKIAKGATEGLOBEXCU003', secretKey: 'globexCustomerSecret0000000000000000G03', role: 'user', domain: 'globex', user: 'customer@globex.example', rateLimit: 503 };
const SUPERUSER: TestKeypair = { accessKey: 'AKIAKGATESUPERUSR004', secretKey: 'superuserSecret0000000000000000000000S04', role: 'superadmin', domain: 'ops', user: 'ops@kernelgate.example', rateLimit: 504, oidcSubjects: ['superuser-sub'] };

const BASE62 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
/** A key in the `kg_` format and its keypair-file entry (the file holds only the hash). */
function newApiKey(id: string, scope: 'read' | 'full') {
  const key = `kg_${[...randomBytes(32)].map((b) => BASE62[b % 62]).join('')}`;
  return { key, entry: { id, sha256: createHash('sha256').update(key).digest('hex'), scope, createdAt: Date.now() } };
}

function writeWithKeys(dir: string, k: TestKeypair, keys: ReturnType<typeof newApiKey>[]): void {
  const keypair: Keypair = {
    accessKey: k.accessKey, secretKey: k.secretKey, role: k.role ?? 'user', domain: k.domain ?? 'default', user: k.user ?? '',
    rateLimit: k.rateLimit, isActive: true, oidcSubjects: k.oidcSubjects, apiKeys: keys.map((x) => x.entry),
  };
  writeFileSync(join(dir, `${k.accessKey}.toml`), formatKeypair(keypair), { mode: 0o600 });
}

const limitOf = (r: Response) => Number(r.headers['x-ratelimit-limit']);
const remainingOf = (r: Response) => Number(r.headers['x-ratelimit-remaining']);

describe('instyle-style roles on one gateway (HMAC, API keys and OIDC enabled)', () => {
  let provider: JwksProvider;
  let key: SigningKey;
  let gw: TestGateway;
  const service = newApiKey('svc001', 'read'); // the customer's service key
  const globexKey = newApiKey('glx001', 'full');
  const superKey = newApiKey('sup001', 'full');
  let png: Buffer;

  const adminAccess = () => accessToken(key, provider.url, CLIENT, 'acme-admin-sub');
  const superAccess = () => accessToken(key, provider.url, CLIENT, 'superuser-sub');
  const call = (method: string, target: string, headers: Record<string, string>, body?: Buffer | string, contentType = 'application/json') =>
    gw.request({ method, target, headers: body === undefined ? headers : { ...headers, 'content-type': contentType }, body });
  const createSession = (headers: Record<string, string>, name: string, target = '/session') => call('POST', target, headers, JSON.stringify({ name, image: 'ocr' }));

  before(async () => {
    provider = await startJwksProvider();
    key = await makeSigningKey('k1');
    provider.keys = [key.publicJwk];
    gw = await startGateway({
      config: `[log]\nlevel = "info"\n[ratelimit]\nanonymous_limit = ${ANONYMOUS_LIMIT}\n[auth]\nschemes = ["backendai", "apikey", "oidc"]\n
[[auth.oidc]]
issuer = ${JSON.stringify(provider.url)}
client_ids = [${JSON.stringify(CLIENT)}]
token_use = "any"
`,
      keypairs: [CUSTOMER, ACME_ADMIN, GLOBEX, SUPERUSER],
    });
    writeWithKeys(gw.keypairDir, CUSTOMER, [service]);
    writeWithKeys(gw.keypairDir, GLOBEX, [globexKey]);
    writeWithKeys(gw.keypairDir, SUPERUSER, [superKey]);
    // The folder is watched: wait until the keys are live.
    for (const k of [service, globexKey, superKey]) {
      for (let i = 0; i < 200 && (await call('GET', '/auth/test', { 'x-api-key': k.key })).status !== 200; i++) await new Promise((r) => setTimeout(r, 25));
    }
    png = await renderText(['Service role']);
  });
  after(async () => {
    const log = gw.output.join('\n');
    for (const k of [service, globexKey, superKey]) assert.ok(!log.includes(k.key), 'an API key in the gateway log');
    await gw.stop();
    await provider.close();
  });

  it('service role: a read key alone lists sessions and infers on an existing one, but cannot create one (403 naming the scope)', async () => {
    // The customer's session, made with its HMAC keypair.
    assert.equal((await gw.signed({ method: 'POST', target: '/session', as: CUSTOMER, body: JSON.stringify({ name: 'svc-ocr', image: 'ocr' }) })).status, 201);
    const list = await call('GET', '/session', { 'x-api-key': service.key });
    assert.equal(list.status, 200, list.text);
    assert.deepEqual(list.json.sessions.map((s: { sessionName: string }) => s.sessionName), ['svc-ocr']);
    assert.equal(limitOf(list), CUSTOMER.rateLimit, 'charged to the key\'s keypair');
    const infer = await call('POST', '/session/svc-ocr/infer', { 'x-api-key': service.key }, png, 'image/png');
    assert.equal(infer.status, 200, infer.text);
    assert.match(infer.json.predictions.map((p: { text: string }) => p.text).join(' '), /Service/);
    const create = await createSession({ 'x-api-key': service.key }, 'svc-new');
    assertProblem(create, 403, 'generic-forbidden');
    assert.match(create.json.detail, /scope read/);
    const remove = await call('DELETE', '/session/svc-ocr', { 'x-api-key': service.key });
    assertProblem(remove, 403, 'generic-forbidden');
  });

  it('admin role: the customer\'s x-api-key + the admin\'s Bearer access token creates a session for the customer', async () => {
    const r = await createSession({ 'x-api-key': service.key, authorization: `Bearer ${await adminAccess()}` }, 'by-admin');
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json.owner_access_key, CUSTOMER.accessKey, 'the customer owns it');
    assert.equal(limitOf(r), ACME_ADMIN.rateLimit, 'charged to the admin who acted');
    // A bare id token as the whole Authorization value works the same.
    const id = await idToken(key, provider.url, CLIENT, 'acme-admin-sub');
    const list = await call('GET', '/session', { 'x-api-key': service.key, authorization: id });
    assert.equal(list.status, 200, list.text);
    assert.ok(list.json.sessions.some((s: { sessionName: string }) => s.sessionName === 'by-admin'));
    // The customer sees it as its own.
    const own = await gw.signed({ method: 'GET', target: '/session/by-admin', as: CUSTOMER });
    assert.equal(own.status, 200, own.text);
  });

  it("a customer's admin cannot reach another domain's customer (403), by x-selected-customer or by that customer's API key", async () => {
    const token = await adminAccess();
    assertProblem(await createSession({ authorization: `Bearer ${token}`, 'x-selected-customer': GLOBEX.accessKey }, 'stolen'), 403, 'generic-forbidden');
    assertProblem(await createSession({ authorization: `Bearer ${token}`, 'x-api-key': globexKey.key }, 'stolen'), 403, 'generic-forbidden');
    assertProblem(await call('GET', '/session', { authorization: `Bearer ${token}`, 'x-selected-customer': SUPERUSER.accessKey }), 403, 'generic-forbidden');
    const globex = await gw.signed({ method: 'GET', target: '/session', as: GLOBEX });
    assert.deepEqual(globex.json.sessions, [], 'nothing was created for globex');
  });

  it('superuser role: its API key + its token + x-selected-customer acts for one customer of any domain', async () => {
    const headers = async (customer: string) => ({ 'x-api-key': superKey.key, authorization: `Bearer ${await superAccess()}`, 'x-selected-customer': customer });
    const acme = await createSession(await headers(CUSTOMER.accessKey), 'by-root');
    assert.equal(acme.status, 201, acme.text);
    assert.equal(acme.json.owner_access_key, CUSTOMER.accessKey);
    assert.equal(limitOf(acme), SUPERUSER.rateLimit, 'charged to the superuser');
    const globex = await createSession(await headers(GLOBEX.accessKey), 'by-root');
    assert.equal(globex.status, 201, globex.text);
    assert.equal(globex.json.owner_access_key, GLOBEX.accessKey);
    const listed = await call('GET', '/session', await headers(GLOBEX.accessKey));
    assert.deepEqual(listed.json.sessions.map((s: { sessionName: string }) => s.sessionName), ['by-root']);
    // The superuser's token alone acts for itself.
    const self = await call('GET', '/session', { authorization: `Bearer ${await superAccess()}` });
    assert.equal(self.status, 200, self.text);
    assert.deepEqual(self.json.sessions, []);
  });

  it('x-selected-customer and owner_access_key both given: the same is fine, different is 400', async () => {
    const h = { authorization: `Bearer ${await superAccess()}`, 'x-selected-customer': CUSTOMER.accessKey };
    assertProblem(await call('GET', `/session?owner_access_key=${GLOBEX.accessKey}`, h), 400, 'invalid-api-params');
    assertProblem(await createSession(h, 'mixed', `/session?owner_access_key=${GLOBEX.accessKey}`), 400, 'invalid-api-params');
    const same = await call('GET', `/session?owner_access_key=${CUSTOMER.accessKey}`, h);
    assert.equal(same.status, 200, same.text);
    // In the JSON body too.
    assertProblem(await call('POST', '/session', h, JSON.stringify({ name: 'mixed', image: 'ocr', owner_access_key: GLOBEX.accessKey })), 400, 'invalid-api-params');
  });

  it('rate limits: each scheme charges its own keypair (and only it); a wrong API key or token is charged to the address', async () => {
    const customerBefore = remainingOf(await gw.signed({ method: 'GET', target: '/auth/test', as: CUSTOMER }));
    const pairs: Array<[string, Record<string, string>, TestKeypair]> = [
      ['service key', { 'x-api-key': service.key }, CUSTOMER],
      ['admin token + key', { 'x-api-key': service.key, authorization: `Bearer ${await adminAccess()}` }, ACME_ADMIN],
      ['superuser', { 'x-api-key': superKey.key, authorization: `Bearer ${await superAccess()}`, 'x-selected-customer': CUSTOMER.accessKey }, SUPERUSER],
    ];
    let customerSpent = 0;
    for (const [label, headers, payer] of pairs) {
      const a = await call('GET', '/session', headers);
      const b = await call('GET', '/session', headers);
      assert.equal(limitOf(a), payer.rateLimit, `${label}: the payer's limit`);
      assert.equal(remainingOf(b), remainingOf(a) - 1, `${label}: one request, one unit of the payer's quota`);
      if (payer === CUSTOMER) customerSpent += 2;
    }
    // HMAC: the signing keypair.
    const hmac = await gw.signed({ method: 'GET', target: '/auth/test', as: GLOBEX });
    assert.equal(limitOf(hmac), GLOBEX.rateLimit);
    // The customer paid only for its own (service-key) requests, not for the admin's or superuser's acting for it.
    const customerAfter = remainingOf(await gw.signed({ method: 'GET', target: '/auth/test', as: CUSTOMER }));
    assert.equal(customerAfter, customerBefore - customerSpent - 1);

    const wrongKey = await call('GET', '/session', { 'x-api-key': `kg_${'A'.repeat(32)}` });
    assertProblem(wrongKey, 401, 'auth-failed');
    assert.equal(limitOf(wrongKey), ANONYMOUS_LIMIT, 'a wrong API key: the address pays');
    const forged = await accessToken(await makeSigningKey('k1'), provider.url, CLIENT, 'acme-admin-sub'); // right kid, wrong key
    const wrongToken = await call('GET', '/session', { authorization: `Bearer ${forged}` });
    assertProblem(wrongToken, 401, 'auth-failed');
    assert.equal(limitOf(wrongToken), ANONYMOUS_LIMIT, 'a wrong token: the address pays');
    const later = await call('GET', '/session', { authorization: `Bearer ${forged}` });
    assert.equal(remainingOf(later), remainingOf(wrongToken) - 1, 'and the address\'s count goes down');
    const wrongBoth = await call('GET', '/session', { 'x-api-key': `kg_${'B'.repeat(32)}`, authorization: `Bearer ${await adminAccess()}` });
    assertProblem(wrongBoth, 401, 'auth-failed');
    assert.equal(limitOf(wrongBoth), ANONYMOUS_LIMIT, 'a good token with a wrong API key: the address pays');
  });
});

describe('OIDC discovery: the document must name the configured issuer (OpenID Connect Discovery 1.0 §4.3)', () => {
  it('a discovery document stating another issuer is not used: 503, logged; the keys are never fetched', async () => {
    const provider = await startJwksProvider();
    const key = await makeSigningKey('k1');
    provider.keys = [key.publicJwk];
    provider.statedIssuer = 'https://impostor.example';
    const gw = await startGateway({
      config: `[log]\nlevel = "info"\n[auth]\nschemes = ["backendai", "oidc"]\n[[auth.oidc]]\nissuer = ${JSON.stringify(provider.url)}\nclient_ids = [${JSON.stringify(CLIENT)}]\n`,
      keypairs: [ACME_ADMIN],
    });
    try {
      const token = await accessToken(key, provider.url, CLIENT, 'acme-admin-sub');
      const r = await gw.request({ method: 'GET', target: '/auth/role', headers: { authorization: `Bearer ${token}` } });
      assertProblem(r, 503, 'service-unavailable');
      assert.equal(provider.jwksFetches, 0, 'the JWKS the document names is not fetched');
      assert.ok(provider.discoveryFetches >= 1);
      await new Promise((res) => setTimeout(res, 100));
      const log = gw.output.join('\n');
      assert.ok(log.includes('discovery document names issuer') && log.includes('impostor.example'), 'the mismatch is logged');
      // Once the document is right, the same token works.
      provider.statedIssuer = undefined;
      const ok = await gw.request({ method: 'GET', target: '/auth/role', headers: { authorization: `Bearer ${token}` } });
      assert.equal(ok.status, 200, ok.text);
      assert.equal(ok.json.access_key, ACME_ADMIN.accessKey);
    } finally {
      await gw.stop();
      await provider.close();
    }
  });
});
