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
  parseSigningDate,
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

  it('takes the key date as the server does, for ISO 8601 and RFC 1123 dates in any offset; junk is linear and never throws', () => {
    const pad = (n: number, w = 2) => String(Math.abs(n)).padStart(w, '0');
    fc.assert(
      fc.property(
        fc.date({ min: new Date('1970-01-01T00:00:00Z'), max: new Date('9999-12-30T00:00:00Z'), noInvalidDate: true }),
        fc.integer({ min: -14 * 60, max: 14 * 60 }),
        fc.boolean(),
        (at, offset, basic) => {
          const local = new Date(at.getTime() + offset * 60_000);
          const [y, mo, d, h, mi, s] = [local.getUTCFullYear(), local.getUTCMonth() + 1, local.getUTCDate(), local.getUTCHours(), local.getUTCMinutes(), local.getUTCSeconds()];
          const zone = `${offset < 0 ? '-' : '+'}${pad(Math.trunc(offset / 60))}${basic ? '' : ':'}${pad(offset % 60)}`;
          const iso = basic ? `${pad(y, 4)}${pad(mo)}${pad(d)}T${pad(h)}${pad(mi)}${pad(s)}${zone}` : `${pad(y, 4)}-${pad(mo)}-${pad(d)}T${pad(h)}:${pad(mi)}:${pad(s)}${zone}`;
          const days = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
          const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
          const rfc = `${days[local.getUTCDay()]}, ${pad(d)} ${months[mo - 1]} ${pad(y, 4)} ${pad(h)}:${pad(mi)}:${pad(s)} ${zone.replace(':', '')}`;
          for (const date of y >= 1000 ? [iso, rfc] : [iso]) {
            const server = parseSigningDate(date);
            assert.ok(server, date);
            assert.equal(browser.keyDateOf(date), server.keyDate, date);
          }
        },
      ),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom('1', '2', '-', 'T', ' ', ',', 'a', 'J', 'Z', ':'), minLength: 1000, maxLength: 20_000 }), (s) => {
        const started = performance.now();
        browser.keyDateOf(s);
        assert.ok(performance.now() - started < 50, `keyDateOf took ${performance.now() - started} ms on ${s.length} characters`);
      }),
      { numRuns: 100 },
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
