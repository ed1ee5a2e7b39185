/**
 * An OpenID Provider the test controls: a discovery document and a JWKS served over HTTP on a free
 * port, signing keys made with jose, and switches for an outage or a lying discovery document.
 * (test/oidc.test.ts has its own copy of the same pattern.)
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';

export interface JwksProvider {
  url: string;
  keys: JWK[];
  mode: 'up' | 'down' | 'slow';
  /** The `issuer` the discovery document states (default: the provider's own URL). */
  statedIssuer?: string;
  jwksFetches: number;
  discoveryFetches: number;
  close(): Promise<void>;
}

export async function startJwksProvider(): Promise<JwksProvider> {
  const p: JwksProvider = { url: '', keys: [], mode: 'up', jwksFetches: 0, discoveryFetches: 0, close: async () => {} };
  const server: Server = createServer((req, res) => {
    if (p.mode === 'down') return void res.socket?.destroy();
    if (p.mode === 'slow') return;
    res.setHeader('content-type', 'application/json');
    if (req.url === '/.well-known/openid-configuration') {
      p.discoveryFetches++;
      return void res.end(JSON.stringify({ issuer: p.statedIssuer ?? p.url, jwks_uri: `${p.url}/jwks` }));
    }
    if (req.url === '/jwks') {
      p.jwksFetches++;
      return void res.end(JSON.stringify({ keys: p.keys }));
    }
    res.statusCode = 404;
    res.end('{}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  p.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  p.close = () =>
    new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
  return p;
}

export interface SigningKey {
  kid: string;
  alg: string;
  privateKey: CryptoKey;
  publicJwk: JWK;
}

export async function makeSigningKey(kid: string, alg: 'RS256' | 'ES256' = 'ES256'): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { kid, alg, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

export const nowSeconds = () => Math.floor(Date.now() / 1000);

export function signToken(key: SigningKey, claims: Record<string, unknown>): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: key.alg, kid: key.kid }).sign(key.privateKey);
}

/** A Cognito-shaped access token (client_id, token_use, no aud), valid one hour. */
export const accessToken = (key: SigningKey, issuer: string, clientId: string, sub: string, extra: Record<string, unknown> = {}) =>
  signToken(key, { iss: issuer, sub, client_id: clientId, token_use: 'access', iat: nowSeconds(), exp: nowSeconds() + 3600, ...extra });

/** A Cognito-shaped id token (aud = the app client, token_use id), valid one hour. */
export const idToken = (key: SigningKey, issuer: string, clientId: string, sub: string, extra: Record<string, unknown> = {}) =>
  signToken(key, { iss: issuer, sub, aud: clientId, token_use: 'id', iat: nowSeconds(), exp: nowSeconds() + 3600, ...extra });
