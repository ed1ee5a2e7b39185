/**
 * The vectors made by the Python reference signer (vectors/), both ways: our
 * signer reproduces every field, our verifier accepts them, and it refuses any
 * single-component change.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { verifyRequest, type RequestToVerify, type VerifyPolicy } from '../src/auth/verify.js';
import { ApiError } from '../src/problems/api-error.js';
import { API_VERSIONS } from '../src/config/schema.js';
import {
  algorithmOfSignMethod,
  bodyHash,
  deriveSigningKey,
  computeSignature,
  parseSigningDate,
  signRequest,
  stringToSign,
  SigningDateCache,
  SigningKeyCache,
  parseAuthorization,
  type HashAlgorithm,
} from '../src/signing/index.js';
import { headerOf, toVerifiable, VECTORS, type Vector } from './helpers/vectors.js';

const policy = (mode: 'strict' | 'backendai'): VerifyPolicy => ({
  algorithms: new Set<HashAlgorithm>(['sha1', 'sha256', 'sha384', 'sha512']),
  skewMs: 900_000,
  bodyHashMode: mode,
  // The vectors also use the pre-v4 versions of the documented examples.
  apiVersions: new Set([
    ...API_VERSIONS,
    ...VECTORS.map((v) => (headerOf(v.request.headers, 'x-backendai-version') ?? headerOf(v.request.headers, 'x-sorna-version'))!.trim()),
  ]),
});

function verifyAt(v: Vector, req: RequestToVerify, mode: 'strict' | 'backendai', nowOffsetMs = 0) {
  const date = parseSigningDate(v.date_used)!;
  return verifyRequest(req, policy(mode), {
    lookup: (ak) =>
      ak === v.access_key
        ? { accessKey: v.access_key, secretKey: v.secret_key, role: 'user', domain: 'default', user: '', isActive: true }
        : undefined,
    keys: new SigningKeyCache(),
    dates: new SigningDateCache(),
    now: date.epochMs + nowOffsetMs,
  });
}

function rejects(fn: () => unknown, status: number): void {
  assert.throws(fn, (e: unknown) => e instanceof ApiError && e.status === status);
}

describe('signing vectors', () => {
  it('has at least 40 vectors, including both documented-example facts', () => {
    assert.ok(VECTORS.length >= 40, `${VECTORS.length} vectors`);
    const invalid = VECTORS.filter((v) => !v.valid).map((v) => v.name);
    assert.deepEqual(invalid, ['backendai-docs-example-as-printed']);
    const original = VECTORS.find((v) => v.name === 'backendai-docs-example-original-v1')!;
    assert.ok(original.signature.startsWith('022ae894'));
    assert.ok(VECTORS.find((v) => v.name === 'backendai-docs-example-as-printed')!.signature.startsWith('022ae894'));
  });

  for (const v of VECTORS) {
    describe(v.name, () => {
      const algorithm = algorithmOfSignMethod(v.sign_method)!;
      const body = Buffer.from(v.request.body_base64, 'base64');
      const h = (n: string) => headerOf(v.request.headers, n);
      const dateRaw = (h('date') ?? h('x-backendai-date') ?? h('x-sorna-date'))!;

      it('our signer reproduces the date key, signing key, string to sign and signature', () => {
        assert.equal(parseSigningDate(v.date_used.trim())?.keyDate, v.key_date);
        const key = deriveSigningKey(algorithm, v.secret_key, v.key_date, (h('host') ?? '').trim());
        assert.equal(key.toString('hex'), v.signing_key_hex);
        if (v.valid) assert.equal(computeSignature(algorithm, key, v.string_to_sign), v.signature);
        else assert.notEqual(computeSignature(algorithm, key, v.string_to_sign), v.signature);
        if (v.name === 'backendai-docs-example-original-v1') return; // line 6 is labelled x-sorna-version
        const expectedHash = v.body_hash_mode === 'backendai' ? bodyHash(algorithm, '') : bodyHash(algorithm, body);
        assert.equal(v.signed_body_hash, expectedHash);
        const canonical = stringToSign({
          method: v.request.method,
          target: v.request.target,
          date: dateRaw,
          host: h('host') ?? '',
          contentType: h('content-type'),
          apiVersion: (h('x-backendai-version') ?? h('x-sorna-version'))!,
          bodyHash: v.signed_body_hash,
        });
        assert.equal(canonical, v.string_to_sign);
        if (v.valid) {
          const auth = parseAuthorization(v.authorization);
          assert.ok(auth.ok);
          const signed = signRequest({
            method: v.request.method,
            target: v.request.target,
            host: h('host')!.trim(),
            accessKey: v.access_key,
            secretKey: v.secret_key,
            body,
            contentType: h('content-type'),
            apiVersion: (h('x-backendai-version') ?? h('x-sorna-version'))!.trim(),
            algorithm,
            date: dateRaw.trim(),
            bodyHashMode: v.body_hash_mode,
            scheme: auth.value.scheme,
          });
          assert.equal(signed.signature, v.signature);
          assert.equal(signed.headers.Authorization, v.authorization);
        }
      });

      if (!v.valid) {
        it('is refused as printed', () => rejects(() => verifyAt(v, toVerifiable(v), 'backendai'), 401));
        return;
      }

      it(`our verifier accepts it in ${v.body_hash_mode} mode`, () => {
        const verified = verifyAt(v, toVerifiable(v), v.body_hash_mode);
        assert.equal(verified.keypair.accessKey, v.access_key);
        if (v.body_hash_mode === 'strict') verifyAt(v, toVerifiable(v), 'backendai');
      });

      if (v.body_hash_mode === 'backendai' && body.length > 0) {
        it('is refused in strict mode (the empty-body hash does not cover a body)', () =>
          rejects(() => verifyAt(v, toVerifiable(v), 'strict'), 401));
      }

      const mutate = (change: Partial<RequestToVerify>) => toVerifiable(v, change);
      const base = toVerifiable(v);
      // Changes the first header of `names` (in priority order) that the request has.
      const swapHeader = (names: string[], value: (old: string) => string) => {
        const headers: Array<[string, string]> = [...v.request.headers, ['Authorization', v.authorization]];
        const target = names.find((name) => headers.some(([n]) => n.toLowerCase() === name));
        let changed = false;
        const out = headers.map(([n, val]): [string, string] => {
          if (!changed && n.toLowerCase() === target) {
            changed = true;
            return [n, value(val)];
          }
          return [n, val];
        });
        return (name: string) => headerOf(out, name);
      };
      const cases: Array<[string, RequestToVerify, number]> = [
        ['method', mutate({ method: v.request.method === 'GET' ? 'POST' : 'GET' }), 401],
        ['target', mutate({ target: `${v.request.target}${v.request.target.includes('?') ? '&' : '?'}x=1` }), 401],
        ['target case', mutate({ target: /[a-z]/.test(v.request.target) ? v.request.target.replace(/[a-z]/, (c) => c.toUpperCase()) : `${v.request.target}/` }), 401],
        ['host', mutate({ host: 'evil.example.com' }), 401],
        ['date (one second later)', mutate({ header: swapHeader(['date', 'x-backendai-date', 'x-sorna-date'], shiftDate) }), 401],
        ['content type', mutate({ header: swapHeader(['content-type'], (c) => (c.trim() === '' ? 'text/plain' : c.replace(/^(\s*[^;\s]+)/, '$1x'))) }), 401],
        ['api version', mutate({ header: swapHeader(['x-backendai-version', 'x-sorna-version'], (ver) => (ver.trim() === 'v8.20240915' ? 'v8.20240315' : 'v8.20240915')) }), 401],
        ['access key', mutate({ header: swapHeader(['authorization'], (a) => a.replace(v.access_key, 'AKIAUNKNOWNKEY000000')) }), 401],
        ['signature', mutate({ header: swapHeader(['authorization'], (a) => a.replace(/.$/, (c) => (c === '0' ? '1' : '0'))) }), 401],
        ['signature with trailing junk', mutate({ header: swapHeader(['authorization'], (a) => `${a}zz`) }), 400],
      ];
      if (body.length > 0 && v.body_hash_mode === 'strict') {
        const flipped = Buffer.from(body);
        flipped[flipped.length - 1] ^= 1;
        cases.push(['body byte', mutate({ body: flipped }), 401]);
      }
      if (body.length === 0 && v.body_hash_mode === 'strict') cases.push(['body added', mutate({ body: Buffer.from('x') }), 401]);
      it('refuses every single-component change', () => {
        assert.ok(base);
        for (const [what, req, status] of cases) {
          assert.throws(
            () => verifyAt(v, req, v.body_hash_mode),
            (e: unknown) => e instanceof ApiError && e.status === status,
            `changing the ${what} should give ${status}`,
          );
        }
      });
      it('refuses it outside the clock-skew window', () => {
        rejects(() => verifyAt(v, toVerifiable(v), v.body_hash_mode, 900_000), 400);
        rejects(() => verifyAt(v, toVerifiable(v), v.body_hash_mode, -900_000), 400);
        verifyAt(v, toVerifiable(v), v.body_hash_mode, 899_000);
      });
    });
  }
});

/** The same moment format, one second later (ISO or RFC 1123). */
function shiftDate(raw: string): string {
  const t = raw.trim();
  // Bump the seconds field: the last two-digit group after the time's minutes.
  const m = /(\d{2}):?(\d{2}):?(\d{2})/.exec(t.replace(/^\d{4}-?\d{2}-?\d{2}T/, (d) => d.replace(/\d/g, 'D')));
  if (!m) throw new Error(`cannot shift ${raw}`);
  const idx = m.index + m[0].length - 2;
  const sec = Number(t.slice(idx, idx + 2));
  const next = String(sec === 59 ? 58 : sec + 1).padStart(2, '0');
  return t.slice(0, idx) + next + t.slice(idx + 2);
}
