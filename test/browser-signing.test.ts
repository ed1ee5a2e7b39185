/**
 * The browser's signing module (src/docs/assets/signing.js, WebCrypto) computes what src/signing/ does:
 * it runs here in Node (globalThis.crypto.subtle) against the Python reference signer's vectors, and a
 * request it signs is accepted by the server's verifier.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as browser from '../src/docs/assets/signing.js';
import { verifyRequest } from '../src/auth/verify.js';
import {
  algorithmOfSignMethod,
  canonicalContentType,
  parseAuthorization,
  SigningDateCache,
  SigningKeyCache,
  stringToSign,
  trimHeaderValue,
  type HashAlgorithm,
} from '../src/signing/index.js';
import { API_VERSIONS } from '../src/config/schema.js';
import { headerOf, VECTORS } from './helpers/vectors.js';

describe('browser signing module against the signing vectors', () => {
  const valid = VECTORS.filter((v) => v.valid && v.name !== 'backendai-docs-example-original-v1');
  it('covers the vectors (every sign method, JSON, form, multipart, raw image and empty bodies)', () => {
    assert.ok(valid.length >= 40, `${valid.length} vectors`);
  });

  for (const v of valid) {
    it(v.name, async () => {
      const algorithm = algorithmOfSignMethod(v.sign_method)! as browser.HashAlgorithm;
      const h = (n: string) => headerOf(v.request.headers, n);
      const body = Buffer.from(v.request.body_base64, 'base64');
      const date = (h('date') ?? h('x-backendai-date') ?? h('x-sorna-date'))!;
      const apiVersion = (h('x-backendai-version') ?? h('x-sorna-version'))!;
      assert.equal(browser.keyDateOf(date), v.key_date);
      const key = await browser.deriveSigningKey(algorithm, v.secret_key, v.key_date, h('host')!.trim());
      assert.equal(Buffer.from(key).toString('hex'), v.signing_key_hex);
      const hash = v.body_hash_mode === 'backendai' ? await browser.bodyHash(algorithm, '') : await browser.bodyHash(algorithm, new Uint8Array(body));
      assert.equal(hash, v.signed_body_hash);
      const parts = { method: v.request.method, target: v.request.target, date, host: h('host') ?? '', contentType: h('content-type'), apiVersion, bodyHash: hash };
      assert.equal(browser.stringToSign(parts), v.string_to_sign);
      assert.equal(browser.stringToSign(parts), stringToSign(parts));
      assert.equal(await browser.computeSignature(algorithm, key, v.string_to_sign), v.signature);
      if (v.body_hash_mode === 'strict') {
        const signed = await browser.signRequest({
          method: v.request.method,
          target: v.request.target,
          host: h('host')!,
          accessKey: v.access_key,
          secretKey: v.secret_key,
          apiVersion,
          body: new Uint8Array(body),
          contentType: h('content-type'),
          algorithm,
          date,
        });
        assert.equal(signed.stringToSign, v.string_to_sign);
        assert.equal(signed.signature, v.signature);
        const auth = parseAuthorization(v.authorization);
        assert.ok(auth.ok);
        if (auth.value.scheme === 'BackendAI') assert.equal(signed.headers.Authorization, v.authorization);
      }
    });
  }

  it('trims and canonicalizes header values as src/signing does, for any string', () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom(' ', '\t', '\n', '\r', 'a', ';', 'B', '/', '\u00a0') , maxLength: 2000 }), (s) => {
        assert.equal(browser.trimHeaderValue(s), trimHeaderValue(s));
        assert.equal(browser.canonicalContentType(s), canonicalContentType(s));
      }),
      { numRuns: 500 },
    );
  });

  it('a request it signs now, with X-BackendAI-Date, passes the server verifier; a wrong secret does not', async () => {
    const accessKey = 'AKIAKGATEALICE000001';
    const secretKey = 'aliceSecretKey0000000000000000000000000A';
    const body = new TextEncoder().encode('{"name":"ocr1","image":"ocr"}');
    const verify = async (secret: string) => {
      const signed = await browser.signRequest({ method: 'POST', target: '/session?x=%20y', host: 'localhost:8080', accessKey, secretKey: secret, apiVersion: 'v8.20240915', body, contentType: 'application/json' });
      const headers: Record<string, string> = { ...signed.headers, 'content-type': 'application/json' };
      const lower = Object.fromEntries(Object.entries(headers).map(([k, val]) => [k.toLowerCase(), val]));
      assert.equal(lower.date, undefined, 'browsers may not set Date');
      return verifyRequest(
        { method: 'POST', target: '/session?x=%20y', header: (n) => lower[n], host: 'localhost:8080', body: Buffer.from(body) },
        { algorithms: new Set<HashAlgorithm>(['sha256']), skewMs: 900_000, bodyHashMode: 'strict', apiVersions: new Set(API_VERSIONS) },
        {
          lookup: (ak) => (ak === accessKey ? { accessKey, secretKey, role: 'user', domain: 'default', user: '', isActive: true } : undefined),
          keys: new SigningKeyCache(),
          dates: new SigningDateCache(),
          now: Date.now(),
        },
      );
    };
    assert.equal((await verify(secretKey)).keypair.accessKey, accessKey);
    await assert.rejects(() => verify(secretKey.replace('A', 'B')), (e: { status?: number }) => e.status === 401);
  });
});
