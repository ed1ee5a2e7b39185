/**
 * A real OpenID Provider (panva's oidc-provider) on a free port issuing RS256 and ES256 JWT access tokens
 * (client_credentials with resource indicators); the gateway fetches its discovery document and JWKS over HTTP.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair } from 'jose';
import Provider from 'oidc-provider';
import { ALICE, startGateway, type TestGateway } from './helpers/gateway.js';

const RESOURCE = 'urn:kernelgate';
const CLIENT = 'kernelgate-service';
const SECRET = 'kernelgate-service-secret-0123456789';

describe('OIDC against a real OpenID Provider (oidc-provider)', () => {
  let server: Server;
  let issuer: string;
  let gw: TestGateway;
  let alg: 'RS256' | 'ES256' = 'RS256';

  before(async () => {
    server = createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const rsa = await generateKeyPair('RS256', { extractable: true });
    const ec = await generateKeyPair('ES256', { extractable: true });
    const provider = new Provider(issuer, {
      clients: [{ client_id: CLIENT, client_secret: SECRET, grant_types: ['client_credentials'], response_types: [], redirect_uris: [], token_endpoint_auth_method: 'client_secret_post' }],
      jwks: { keys: [{ ...(await exportJWK(rsa.privateKey)), kid: 'rsa', alg: 'RS256', use: 'sig' }, { ...(await exportJWK(ec.privateKey)), kid: 'ec', alg: 'ES256', use: 'sig' }] as never },
      features: {
        clientCredentials: { enabled: true },
        resourceIndicators: {
          enabled: true,
          defaultResource: () => RESOURCE,
          getResourceServerInfo: () => ({ scope: 'api', audience: RESOURCE, accessTokenFormat: 'jwt', jwt: { sign: { alg } } }),
        },
      },
    });
    server.on('request', provider.callback());
    gw = await startGateway({
      config: `[auth]\nschemes = ["backendai", "oidc"]\n\n[[auth.oidc]]\nissuer = ${JSON.stringify(issuer)}\naudiences = [${JSON.stringify(RESOURCE)}]\n`,
      keypairs: [{ ...ALICE, oidcSubjects: [CLIENT] }],
    });
  });
  after(async () => {
    await gw?.stop();
    server?.closeAllConnections();
    await new Promise((r) => server?.close(r));
  });

  async function token(): Promise<string> {
    const r = await fetch(`${issuer}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: CLIENT, client_secret: SECRET, resource: RESOURCE, scope: 'api' }),
    });
    const body = (await r.json()) as { access_token?: string };
    assert.equal(r.status, 200, JSON.stringify(body));
    return body.access_token!;
  }

  for (const a of ['RS256', 'ES256'] as const) {
    it(`a ${a} JWT access token from the provider acts as the keypair listing its subject`, async () => {
      alg = a;
      const t = await token();
      assert.equal(JSON.parse(Buffer.from(t.split('.')[0]!, 'base64url').toString()).alg, a);
      const r = await gw.request({ method: 'GET', target: '/auth/role', headers: { authorization: `Bearer ${t}` } });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.access_key, ALICE.accessKey);
    });
  }

  it('a tampered provider token is refused', async () => {
    alg = 'RS256';
    const [h, p, s] = (await token()).split('.');
    const claims = JSON.parse(Buffer.from(p!, 'base64url').toString());
    claims.exp += 3600;
    const r = await gw.request({ method: 'GET', target: '/auth/role', headers: { authorization: `Bearer ${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${s}` } });
    assert.equal(r.status, 401, r.text);
  });
});
