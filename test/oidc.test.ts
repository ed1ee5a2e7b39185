/**
 * OIDC bearer tokens against a real gateway process: an OpenID Provider the test controls (discovery
 * document + JWKS over HTTP, keys made with jose) issues Cognito-shaped and plain tokens.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type JWK, type CryptoKey } from 'jose';
import { ALICE, ADMIN, BOB, OTHER_DOMAIN_USER, startGateway, waitForLine, type TestGateway, type TestKeypair } from './helpers/gateway.js';

interface Provider {
  url: string;
  keys: JWK[];
  mode: 'up' | 'down' | 'slow';
  jwksFetches: number;
  close(): Promise<void>;
}

async function startProvider(): Promise<Provider> {
  const p = { url: '', keys: [] as JWK[], mode: 'up' as Provider['mode'], jwksFetches: 0, close: async () => {} };
  const server: Server = createServer((req, res) => {
    if (p.mode === 'down') return void res.socket?.destroy();
    if (p.mode === 'slow') return; // never answers
    if (req.url === '/.well-known/openid-configuration') {
      res.setHeader('content-type', 'application/json');
      return void res.end(JSON.stringify({ issuer: p.url, jwks_uri: `${p.url}/jwks` }));
    }
    if (req.url === '/jwks') {
      p.jwksFetches++;
      res.setHeader('content-type', 'application/json');
      return void res.end(JSON.stringify({ keys: p.keys }));
    }
    res.statusCode = 404;
    res.end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  p.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  p.close = () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); });
  return p;
}

interface Key { kid: string; alg: string; privateKey: CryptoKey; publicJwk: JWK }
async function makeKey(kid: string, alg: 'RS256' | 'ES256'): Promise<Key> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { kid, alg, privateKey, publicJwk };
}

const now = () => Math.floor(Date.now() / 1000);

function sign(key: Key, claims: Record<string, unknown>, header: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: key.alg, kid: key.kid, ...header }).sign(key.privateKey);
}

const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

const ADMIN_SUB = 'c0ffee00-admin-sub';
const ALICE_SUB = 'alice-sub-123';
const OIDC_ADMIN: TestKeypair = { ...ADMIN, oidcSubjects: [ADMIN_SUB] };
const OIDC_ALICE: TestKeypair = { ...ALICE, oidcSubjects: [ALICE_SUB] };

describe('OIDC bearer tokens (test-controlled provider, Cognito-shaped tokens)', () => {
  let provider: Provider;
  let down: Provider; // an issuer whose provider is never reachable
  let gw: TestGateway;
  let rsa: Key;
  let ec: Key;
  const CLIENT = 'cognito-app-client-1';

  const access = (key: Key, extra: Record<string, unknown> = {}) =>
    sign(key, { iss: provider.url, sub: ALICE_SUB, client_id: CLIENT, token_use: 'access', 'cognito:groups': ['admins'], iat: now(), exp: now() + 3600, ...extra });
  const call = (authorization: string, target = '/auth/role') =>
    gw.request({ method: 'GET', target, headers: { authorization } });

  before(async () => {
    provider = await startProvider();
    down = await startProvider();
    await down.close();
    rsa = await makeKey('rsa-1', 'RS256');
    ec = await makeKey('ec-1', 'ES256');
    provider.keys = [rsa.publicJwk, ec.publicJwk];
    gw = await startGateway({
      config: `[log]\nlevel = "info"\n[auth]\nschemes = ["backendai", "oidc"]\n
[[auth.oidc]]
issuer = ${JSON.stringify(provider.url)}
client_ids = [${JSON.stringify(CLIENT)}]
audiences = ["kernelgate"]
token_use = "access"
clock_tolerance_seconds = 5
jwks_refetch_cooldown_seconds = 2

[[auth.oidc]]
issuer = ${JSON.stringify(down.url)}
audiences = ["kernelgate"]
`,
      keypairs: [OIDC_ALICE, BOB, OIDC_ADMIN, OTHER_DOMAIN_USER],
    });
  });
  after(async () => {
    await gw?.stop();
    await provider?.close();
  });

  it('a valid RS256 access token (Bearer) acts as the keypair whose oidc_subjects holds its sub', async () => {
    const r = await call(`Bearer ${await access(rsa)}`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.access_key, ALICE.accessKey);
  });

  it('a valid ES256 token as the bare Authorization value (Cognito id-token style header)', async () => {
    const r = await call(await access(ec, { sub: ADMIN_SUB }));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.access_key, ADMIN.accessKey);
  });

  it('an aud token is accepted when aud is configured', async () => {
    const r = await call(`Bearer ${await access(rsa, { client_id: undefined, aud: 'kernelgate' })}`);
    assert.equal(r.status, 200, r.text);
  });

  const refused: Array<[string, () => Promise<string>]> = [
    ['expired', () => access(rsa, { exp: now() - 60 })],
    ['not yet valid', () => access(rsa, { nbf: now() + 600 })],
    ['wrong issuer', () => access(rsa, { iss: 'https://evil.example' })],
    ['wrong client_id', () => access(rsa, { client_id: 'other-client' })],
    ['wrong audience', () => access(rsa, { client_id: undefined, aud: 'someone-else' })],
    ['token_use id where access is required', () => access(rsa, { token_use: 'id' })],
    ['a subject no keypair claims', () => access(rsa, { sub: 'nobody' })],
    ['alg none', async () => `${b64({ alg: 'none', kid: rsa.kid })}.${b64({ iss: provider.url, sub: ALICE_SUB, client_id: CLIENT, token_use: 'access', exp: now() + 600 })}.`],
    ['HS256 signed with the public key bytes', async () => {
      const { createHmac } = await import('node:crypto');
      const head = `${b64({ alg: 'HS256', kid: rsa.kid })}.${b64({ iss: provider.url, sub: ALICE_SUB, client_id: CLIENT, token_use: 'access', exp: now() + 600 })}`;
      const secret = JSON.stringify(rsa.publicJwk);
      return `${head}.${createHmac('sha256', secret).update(head).digest('base64url')}`;
    }],
    ['tampered payload', async () => {
      const [h, , s] = (await access(rsa)).split('.');
      return `${h}.${b64({ iss: provider.url, sub: ADMIN_SUB, client_id: CLIENT, token_use: 'access', exp: now() + 600 })}.${s}`;
    }],
  ];
  for (const [name, make] of refused) {
    it(`refused with 401 auth-failed: ${name}`, async () => {
      const token = await make();
      const r = await call(`Bearer ${token}`);
      assert.equal(r.status, 401, r.text);
      assert.match(r.json.type, /auth-failed$/);
      assert.ok(!gw.output.join('\n').includes(token), 'the token is never logged');
    });
  }

  it('a failed token logs its reason, never the token', async () => {
    const token = await access(rsa, { exp: now() - 60 });
    const r = await call(`Bearer ${token}`);
    assert.equal(r.status, 401);
    const lines = gw.output.join('\n');
    assert.match(lines, /ERR_JWT_EXPIRED/);
    assert.ok(!lines.includes(token));
  });

  it('token requests charge the keypair (its remaining count goes down, not the address\'s)', async () => {
    const t = await access(rsa);
    const a = await call(`Bearer ${t}`);
    const b = await call(`Bearer ${t}`);
    assert.equal(Number(b.headers['x-ratelimit-remaining']), Number(a.headers['x-ratelimit-remaining']) - 1);
    assert.equal(a.headers['x-ratelimit-limit'], '10000', 'the keypair limit, not the anonymous 2000');
    const bad = await call(`Bearer ${await access(rsa, { sub: 'nobody' })}`);
    assert.equal(bad.headers['x-ratelimit-limit'], '2000', 'a bad token is charged to the address');
  });

  it('the access log carries the scheme and the subject, never the token', async () => {
    const t = await access(rsa);
    const from = gw.output.length;
    await call(`Bearer ${t}`);
    const line = await waitForLine(gw, (l) => l.includes('"msg":"request"') && l.includes('"scheme":"oidc"'), from);
    assert.equal(JSON.parse(line).credentialId, ALICE_SUB);
    assert.ok(!gw.output.join('\n').includes(t));
  });

  it('an unknown kid makes the gateway refetch the JWKS once (key rotation)', async () => {
    const rotated = await makeKey('rsa-2', 'RS256');
    const before = provider.jwksFetches;
    const early = await call(`Bearer ${await access(rotated)}`);
    // Not yet published: refused; whether this attempt refetched depends on the cooldown, so publish and retry.
    assert.equal(early.status, 401);
    provider.keys = [...provider.keys, rotated.publicJwk];
    // jose refetches on an unknown kid at most once per cooldown (here 2 s; 30 s by default): a burst of
    // tokens with the unknown kid inside one window costs at most one more fetch.
    const burstStart = provider.jwksFetches;
    const unknown = await makeKey('rsa-unknown', 'RS256');
    for (let i = 0; i < 5; i++) assert.equal((await call(`Bearer ${await access(unknown)}`)).status, 401);
    assert.ok(provider.jwksFetches - burstStart <= 1, `a burst of unknown kids refetched ${provider.jwksFetches - burstStart} times`);
    let ok = false;
    for (let i = 0; i < 10 && !ok; i++) {
      const r = await call(`Bearer ${await access(rotated)}`);
      ok = r.status === 200;
      if (!ok) await new Promise((res) => setTimeout(res, 1000));
    }
    assert.ok(ok, 'the rotated key is accepted once the JWKS is refetched');
    assert.ok(provider.jwksFetches > before, 'the JWKS was fetched again');
  });

  it('provider down: cached keys keep working', async () => {
    provider.mode = 'down';
    try {
      const r = await call(`Bearer ${await access(ec)}`);
      assert.equal(r.status, 200, r.text);
    } finally {
      provider.mode = 'up';
    }
  });

  it('provider down with no keys cached: 503 service-unavailable quickly, not a hang', async () => {
    const key = await makeKey('down-1', 'RS256');
    const token = await sign(key, { iss: down.url, sub: ALICE_SUB, aud: 'kernelgate', exp: now() + 600 });
    const started = Date.now();
    const r = await call(`Bearer ${token}`);
    assert.equal(r.status, 503, r.text);
    assert.match(r.json.type, /service-unavailable$/);
    assert.ok(Date.now() - started < 5000);
  });

  describe('combinations', () => {
    const sel = async (headers: Record<string, string>, target = '/session') =>
      gw.request({ method: 'GET', target, headers: { authorization: `Bearer ${await access(rsa, { sub: ADMIN_SUB })}`, ...headers } });

    it('x-selected-customer: an admin token acts for a customer of its domain (owner in the access log)', async () => {
      const from = gw.output.length;
      const r = await sel({ 'x-selected-customer': ALICE.accessKey });
      assert.equal(r.status, 200, r.text);
      const line = await waitForLine(gw, (l) => l.includes('"msg":"request"') && l.includes('"route":"/session"'), from);
      assert.equal(JSON.parse(line).owner, ALICE.accessKey);
    });

    it("x-selected-customer: an admin cannot select another domain's customer (403)", async () => {
      const r = await sel({ 'x-selected-customer': OTHER_DOMAIN_USER.accessKey });
      assert.equal(r.status, 403, r.text);
    });

    it('x-selected-customer and owner_access_key both given and different: 400', async () => {
      const r = await sel({ 'x-selected-customer': ALICE.accessKey }, `/session?owner_access_key=${BOB.accessKey}`);
      assert.equal(r.status, 400, r.text);
      const same = await sel({ 'x-selected-customer': ALICE.accessKey }, `/session?owner_access_key=${ALICE.accessKey}`);
      assert.equal(same.status, 200, same.text);
    });

    it('a user token may not select another customer (403)', async () => {
      const r = await gw.request({ method: 'GET', target: '/session', headers: { authorization: `Bearer ${await access(rsa)}`, 'x-selected-customer': BOB.accessKey } });
      assert.equal(r.status, 403, r.text);
    });

    it('HMAC plus x-selected-customer or x-api-key: 400 (the signature does not cover them)', async () => {
      for (const headers of <Array<Record<string, string>>>[{ 'x-selected-customer': ALICE.accessKey }, { 'x-api-key': 'kg_whatever' }]) {
        const r = await gw.signed({ method: 'GET', target: '/session', as: BOB, headers });
        assert.equal(r.status, 400, r.text);
      }
    });

    it('x-api-key next to a token without the apikey scheme: 400', async () => {
      const r = await sel({ 'x-api-key': 'kg_whatever' });
      assert.equal(r.status, 400, r.text);
    });
  });

  it('HMAC requests are unaffected', async () => {
    const r = await gw.signed({ method: 'GET', target: '/auth/role', as: BOB });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.access_key, BOB.accessKey);
  });
});

describe('OIDC is off unless listed in [auth] schemes', () => {
  it('a bearer token on a default gateway is not accepted', async () => {
    const gw = await startGateway({ keypairs: [OIDC_ALICE] });
    try {
      const r = await gw.request({ method: 'GET', target: '/auth/role', headers: { authorization: 'Bearer a.b.c' } });
      assert.notEqual(r.status, 200);
    } finally {
      await gw.stop();
    }
  });
});

describe('[[auth.oidc]] config', () => {
  it('refuses "none" and HMAC algorithms at config load, and defaults to RS256/ES256/PS256', async () => {
    const { configFromObject } = await import('../src/config/config.js');
    for (const alg of ['none', 'HS256']) {
      assert.throws(() => configFromObject({ auth: { oidc: [{ issuer: 'https://idp.example', audiences: ['x'], algorithms: [alg] }] } }));
    }
    const c = configFromObject({ auth: { oidc: [{ issuer: 'https://idp.example', audiences: ['x'] }] } });
    const o = c.auth.oidc[0]!;
    assert.deepEqual(o.algorithms, ['RS256', 'ES256', 'PS256']);
    assert.equal(o.token_use, 'any');
    assert.equal(o.subject_claim, 'sub');
    assert.equal(o.clock_tolerance_seconds, 30);
    assert.equal(o.jwks_refetch_cooldown_seconds, 30);
    assert.equal(o.jwks_uri, '');
  });
});

describe('KeypairStore: subject index', () => {
  it('maps a subject to the keypair that lists it; a subject two keypairs claim maps to neither (logged)', async () => {
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { KeypairStore } = await import('../src/keypairs/keypair-store.js');
    const { writeKeypair } = await import('./helpers/gateway.js');
    const dir = mkdtempSync(join(tmpdir(), 'kg-subjects-'));
    try {
      writeKeypair(dir, { ...ALICE, oidcSubjects: ['alice', 'shared'] });
      writeKeypair(dir, { ...BOB, oidcSubjects: ['bob', 'shared'] });
      const errors: unknown[] = [];
      const log = { error: (o: unknown) => errors.push(o), warn: () => {}, info: () => {} } as never;
      const store = new KeypairStore(dir, log);
      store.rescan();
      assert.equal(store.bySubject('alice')?.accessKey, ALICE.accessKey);
      assert.equal(store.bySubject('bob')?.accessKey, BOB.accessKey);
      assert.equal(store.bySubject('shared'), undefined);
      assert.equal(store.bySubject('nobody'), undefined);
      assert.equal(errors.length, 1);
      // A file change rebuilds the index.
      writeKeypair(dir, { ...BOB, oidcSubjects: ['bob2'] });
      store.rescan();
      assert.equal(store.bySubject('shared')?.accessKey, ALICE.accessKey);
      assert.equal(store.bySubject('bob2')?.accessKey, BOB.accessKey);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
