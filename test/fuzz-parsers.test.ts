/**
 * Property-based fuzzing of the pure parsers on the request path, in-process:
 * Authorization, signing dates, canonicalisation, keypair files, config and the
 * verifier; at the end, long adversarial strings with a time bound for every
 * parser that sees client input. Each property runs a bounded number of times (the whole file stays
 * well under 40 s on two cores).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import fc from 'fast-check';
import { ApiError } from '../src/problems/api-error.js';
import { verifyRequest, type RequestToVerify, type VerifyContext, type VerifyPolicy } from '../src/auth/verify.js';
import { ConfigError, configFromObject, type Config } from '../src/config/config.js';
import { API_VERSIONS } from '../src/config/schema.js';
import { ACCESS_KEY_FORMAT, parseKeypair, type Keypair } from '../src/keypairs/keypair.js';
import { ALL_ALGORITHMS, HEX_LENGTH, algorithmOfSignMethod, signMethodOf, type HashAlgorithm } from '../src/signing/algorithms.js';
import { formatAuthorization, parseAuthorization, type AuthScheme } from '../src/signing/authorization.js';
import { canonicalContentType, stringToSign, trimHeaderValue } from '../src/signing/canonical.js';
import { SigningDateCache, parseSigningDate } from '../src/signing/dates.js';
import { signRequest } from '../src/signing/sign-request.js';
import { SigningKeyCache } from '../src/signing/signing-key.js';
import { ALICE, BOB } from './helpers/gateway.js';
import { parse as parseQuery } from 'node:querystring';
import Router from '@koa/router';
import { decodeBase64 } from '../src/http/base64.js';
import { parseBody } from '../src/http/body-parsers.js';
import { addressBucket, resolveClient, TrustedProxies } from '../src/http/client-view.js';
import { extractImage } from '../src/inference/image-input.js';
import { parseModelConfig } from '../src/inference/store/model-config.js';
import { MODEL_NAME, SESSION_NAME } from '../src/validation/names.js';
import { ownerParam, resolveOwner } from '../src/auth/owner.js';

const RUNS = 1000;

// ---------------------------------------------------------------- generators

/** Any text: printable ASCII, full Unicode code points (lone surrogates included), raw bytes as latin1. */
const anyText = (maxLength = 200) =>
  fc.oneof(
    fc.string({ maxLength }),
    fc.string({ unit: 'binary', maxLength }),
    fc.string({ unit: 'grapheme', maxLength }),
    fc.uint8Array({ maxLength }).map((b) => Buffer.from(b).toString('latin1')),
    fc.uint8Array({ maxLength }).map((b) => Buffer.from(b).toString('utf8')),
  );

const WS = fc.constantFrom('', ' ', '  ', '\t', '\n', '\r\n', ' \t ');
const hexOf = (n: number) => fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: n, maxLength: n });
const HEX_UPPER_LOWER = fc.constantFrom(...'0123456789abcdefABCDEF');
const accessKeyArb = fc.stringMatching(/^[A-Za-z0-9]{4,128}$/);
const algorithmArb = fc.constantFrom<HashAlgorithm>(...ALL_ALGORITHMS);
const schemeArb = fc.constantFrom<AuthScheme>('BackendAI', 'Sorna');

/** Authorization-looking headers: valid fragments mixed with junk. */
const authorizationLike = fc
  .tuple(
    fc.oneof(fc.constantFrom('BackendAI', 'Sorna', 'backendai', 'SORNA', 'Bearer', 'BackendAI ', ''), anyText(12)),
    fc.array(
      fc.tuple(
        WS,
        fc.oneof(fc.constantFrom('signMethod', 'credential', 'signmethod', 'Credential', 'x', '', 'signMethod '), anyText(10)),
        fc.constantFrom('=', '==', '', ' = ', ':'),
        fc.oneof(
          fc.constantFrom('HMAC-SHA256', 'hmac-sha1', 'HMAC-SHA384', 'HMAC-SHA512', 'HMAC-MD5', 'HMAC-SHA', 'HMAC-SHA256 '),
          fc
            .tuple(
              fc.oneof(accessKeyArb, anyText(10), fc.constantFrom('', 'ab', 'AKIA-EXAMPLE', 'a'.repeat(129))),
              fc.constantFrom(':', '::', '', ' : '),
              fc.oneof(
                fc.integer({ min: 0, max: 140 }).chain((n) => fc.string({ unit: HEX_UPPER_LOWER, minLength: n, maxLength: n })),
                fc.constantFrom(40, 64, 96, 128).chain((n) => hexOf(n)),
                anyText(20),
              ),
            )
            .map(([k, c, s]) => `${k}${c}${s}`),
          anyText(30),
        ),
        WS,
      ).map(([a, n, e, v, b]) => `${a}${n}${e}${v}${b}`),
      { maxLength: 4 },
    ),
    fc.constantFrom(',', ', ', ' ,', ',,'),
    fc.constantFrom(' ', '  ', '\t', ''),
  )
  .map(([scheme, params, sep, space]) => `${scheme}${space}${params.join(sep)}`);

describe('fuzz: parseAuthorization', () => {
  function checkResult(header: string): void {
    const r = parseAuthorization(header);
    assert.equal(typeof r.ok, 'boolean');
    if (!r.ok) {
      assert.equal(typeof r.reason, 'string');
      assert.ok(r.reason.length > 0);
      return;
    }
    const v = r.value;
    assert.ok(v.scheme === 'BackendAI' || v.scheme === 'Sorna', `scheme ${v.scheme}`);
    assert.ok((ALL_ALGORITHMS as readonly string[]).includes(v.algorithm));
    assert.equal(algorithmOfSignMethod(v.signMethod), v.algorithm);
    assert.match(v.signature, /^[0-9a-f]+$/);
    assert.equal(v.signature.length, HEX_LENGTH[v.algorithm]);
    assert.match(v.accessKey, /^[A-Za-z0-9]{4,128}$/);
    // The sign method is an ASCII token, whatever Unicode case folding would allow.
    assert.match(v.signMethod, /^HMAC-SHA(?:1|256|384|512)$/i, `signMethod ${JSON.stringify(v.signMethod)}`);
  }

  it('never throws and returns a well-typed result for arbitrary text', () => {
    fc.assert(fc.property(anyText(600), checkResult), { numRuns: RUNS });
  });

  it('never throws and returns a well-typed result for authorization-like junk', () => {
    fc.assert(fc.property(authorizationLike, checkResult), { numRuns: 2 * RUNS });
  });

  it('round-trips formatAuthorization -> parseAuthorization', () => {
    const arb = fc
      .tuple(schemeArb, algorithmArb, accessKeyArb, fc.boolean())
      .chain(([scheme, algorithm, accessKey, upper]) =>
        hexOf(HEX_LENGTH[algorithm]).map((sig) => ({ scheme, algorithm, accessKey, signature: upper ? sig.toUpperCase() : sig })),
      );
    fc.assert(
      fc.property(arb, ({ scheme, algorithm, accessKey, signature }) => {
        const header = formatAuthorization(scheme, signMethodOf(algorithm), accessKey, signature);
        const r = parseAuthorization(header);
        assert.ok(r.ok, `${header}: ${r.ok ? '' : r.reason}`);
        assert.deepEqual(r.value, {
          scheme,
          signMethod: signMethodOf(algorithm),
          algorithm,
          accessKey,
          signature, // as sent: upper case stays upper case, and then never matches (lower-case hex only)
        });
      }),
      { numRuns: RUNS },
    );
  });

  it('refuses sign methods that are HMAC-SHA* only after Unicode upper-casing (e.g. U+017F LONG S)', () => {
    // 'ſ'.toUpperCase() === 'S': algorithmOfSignMethod() upper-cases with full
    // Unicode rules, so these non-ASCII sign methods are accepted today.
    const sig = 'a'.repeat(64);
    for (const method of ['HMAC-ſHA256', 'hmac-ſha256', 'HMAC-\u017fHA512']) {
      const r = parseAuthorization(`BackendAI signMethod=${method}, credential=AKIAEXAMPLE:${method.endsWith('512') ? sig + sig : sig}`);
      assert.equal(r.ok, false, `${method} must be refused, got ${JSON.stringify(r)}`);
    }
  });
});

// ---------------------------------------------------------------- dates

const pad = (n: number, width = 2) => String(Math.abs(n)).padStart(width, '0');
const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

function localParts(ms: number, offsetMin: number) {
  const l = new Date(ms + offsetMin * 60_000);
  return {
    y: l.getUTCFullYear(),
    mo: l.getUTCMonth() + 1,
    d: l.getUTCDate(),
    h: l.getUTCHours(),
    mi: l.getUTCMinutes(),
    s: l.getUTCSeconds(),
    ms: l.getUTCMilliseconds(),
    wd: l.getUTCDay(),
  };
}

function offsetText(offsetMin: number, colon: boolean): string {
  const sign = offsetMin < 0 ? '-' : '+';
  const a = Math.abs(offsetMin);
  return `${sign}${pad(Math.floor(a / 60))}${colon ? ':' : ''}${pad(a % 60)}`;
}

function isoExtended(ms: number, off: number, fraction: boolean, zulu: boolean): string {
  const p = localParts(ms, off);
  const frac = fraction ? `.${pad(p.ms, 3)}` : '';
  const zone = zulu && off === 0 ? 'Z' : offsetText(off, true);
  return `${pad(p.y, 4)}-${pad(p.mo)}-${pad(p.d)}T${pad(p.h)}:${pad(p.mi)}:${pad(p.s)}${frac}${zone}`;
}

function isoBasic(ms: number, off: number, fraction: boolean, zulu: boolean): string {
  const p = localParts(ms, off);
  const frac = fraction ? `.${pad(p.ms, 3)}` : '';
  const zone = zulu && off === 0 ? 'Z' : offsetText(off, false);
  return `${pad(p.y, 4)}${pad(p.mo)}${pad(p.d)}T${pad(p.h)}${pad(p.mi)}${pad(p.s)}${frac}${zone}`;
}

function rfc1123(ms: number, off: number, gmt: boolean): string {
  const p = localParts(ms, off);
  const zone = gmt && off === 0 ? 'GMT' : offsetText(off, false);
  return `${DAYS[p.wd]}, ${pad(p.d)} ${MONTHS[p.mo - 1]} ${p.y} ${pad(p.h)}:${pad(p.mi)}:${pad(p.s)} ${zone}`;
}

function keyDateOf(ms: number, off: number): string {
  const p = localParts(ms, off);
  return `${pad(p.y, 4)}${pad(p.mo)}${pad(p.d)}`;
}

/** ISO-ish and RFC-ish date strings with junk mixed in: extended years, odd offsets, broken fields. */
const dateLike = fc.oneof(
  fc
    .tuple(
      fc.constantFrom('', '+', '-'),
      fc.integer({ min: 0, max: 999_999 }),
      fc.constantFrom(4, 5, 6),
      fc.integer({ min: 0, max: 13 }),
      fc.integer({ min: 0, max: 32 }),
      fc.integer({ min: 0, max: 25 }),
      fc.integer({ min: 0, max: 61 }),
      fc.constantFrom('', 'Z', '+00:00', '-12:00', '+14:00', '+1400', '+99:99', '+05:45', 'GMT', ' ', '.123456789Z'),
      fc.boolean(),
    )
    .map(([sign, year, width, mo, d, h, mi, zone, basic]) =>
      basic
        ? `${sign}${String(year).padStart(width, '0')}${pad(mo)}${pad(d)}T${pad(h)}${pad(mi)}${pad(mi)}${zone.replace(':', '')}`
        : `${sign}${String(year).padStart(width, '0')}-${pad(mo)}-${pad(d)}T${pad(h)}:${pad(mi)}:${pad(mi)}${zone}`,
    ),
  fc
    .tuple(
      fc.constantFrom('', 'Mon, ', 'Xyz, ', 'mon, '),
      fc.integer({ min: 0, max: 99 }),
      fc.constantFrom(...MONTHS, 'Foo', 'jan'),
      fc.integer({ min: 0, max: 99_999 }),
      fc.integer({ min: 0, max: 99 }),
      fc.constantFrom('GMT', 'UTC', 'UT', 'EST', 'Z', '+0000', '-1200', '+1400', '+9999', 'junk', ''),
    )
    .map(([day, d, mon, y, t, zone]) => `${day}${d} ${mon} ${y} ${pad(t)}:${pad(t)}:${pad(t)} ${zone}`),
  fc.tuple(fc.constantFrom('2024-01-01T00:00:00Z', 'Mon, 01 Jan 2024 00:00:00 GMT', '20240101T000000Z'), anyText(8), fc.nat(30)).map(
    ([base, junk, at]) => base.slice(0, at) + junk + base.slice(at),
  ),
);

describe('fuzz: parseSigningDate and SigningDateCache', () => {
  function checkDate(raw: string): void {
    const r = parseSigningDate(raw);
    if (r === undefined) return;
    assert.ok(Number.isFinite(r.epochMs), `${raw}: epochMs ${r.epochMs}`);
    assert.ok(Number.isInteger(r.epochMs));
    assert.match(r.keyDate, /^\d{8}$/, `${JSON.stringify(raw)} gave keyDate ${r.keyDate}`);
  }

  it('never throws on arbitrary text; results are finite with an 8-digit keyDate', () => {
    fc.assert(fc.property(anyText(100), checkDate), { numRuns: RUNS });
  });

  it('never throws on date-like junk; results are finite with an 8-digit keyDate', () => {
    fc.assert(fc.property(dateLike, checkDate), { numRuns: 2 * RUNS });
  });

  it('gives an 8-digit keyDate or nothing for ISO 8601 extended years (+YYYYYY / -YYYYYY)', () => {
    // luxon accepts six-digit and signed years; yyyyMMdd then prints
    // 1000000101 or -00010101, which is not a key date.
    for (const raw of ['+100000-01-01T00:00:00Z', '-000001-01-01T00:00:00Z', '+010000-01-01T00:00:00Z']) checkDate(raw);
  });

  const moment = fc.tuple(
    fc.date({ min: new Date('1970-01-01T00:00:00Z'), max: new Date('2100-12-31T23:59:59Z'), noInvalidDate: true }),
    fc.integer({ min: -12 * 60, max: 14 * 60 }),
  );

  it('round-trips ISO extended, ISO basic and RFC 1123 in any offset -12:00..+14:00', () => {
    fc.assert(
      fc.property(moment, fc.boolean(), fc.boolean(), ([date, off], fraction, zulu) => {
        const ms = date.getTime();
        const second = Math.floor(ms / 1000) * 1000;
        const keyDate = keyDateOf(ms, off);
        const forms: Array<[string, number]> = [
          [isoExtended(ms, off, fraction, zulu), fraction ? ms : second],
          [isoBasic(ms, off, fraction, zulu), fraction ? ms : second],
          [rfc1123(ms, off, zulu), second],
        ];
        for (const [raw, expected] of forms) {
          const r = parseSigningDate(raw);
          assert.ok(r, `${raw} did not parse`);
          assert.equal(r.epochMs, expected, raw);
          assert.equal(r.keyDate, keyDate, raw);
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('no zone means UTC', () => {
    fc.assert(
      fc.property(moment, ([date]) => {
        const raw = isoExtended(date.getTime(), 0, false, false).replace(/\+00:00$/, '');
        const r = parseSigningDate(raw);
        assert.ok(r, raw);
        assert.equal(r.epochMs, Math.floor(date.getTime() / 1000) * 1000);
        assert.equal(r.keyDate, keyDateOf(date.getTime(), 0));
      }),
      { numRuns: RUNS / 2 },
    );
  });

  it('SigningDateCache answers exactly what parseSigningDate answers, through evictions', () => {
    const pool = fc.oneof(
      dateLike,
      anyText(20),
      moment.map(([d, off]) => isoExtended(d.getTime(), off, false, true)),
      fc.constantFrom('__proto__', 'constructor', '', 'toString'),
    );
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 6 }), fc.array(pool, { maxLength: 10 }), fc.array(fc.nat(), { maxLength: 40 }), (cap, values, picks) => {
        if (values.length === 0) return;
        const cache = new SigningDateCache(cap);
        for (const i of picks) {
          const raw = values[i % values.length];
          assert.deepEqual(cache.parse(raw), parseSigningDate(raw), raw);
        }
      }),
      { numRuns: RUNS / 2 },
    );
  });
});

// ---------------------------------------------------------------- canonicalisation

describe('fuzz: canonicalContentType, trimHeaderValue, stringToSign', () => {
  const contentTypeLike = fc.oneof(
    anyText(60),
    fc
      .tuple(WS, fc.constantFrom('Application/JSON', 'text/plain', 'IMAGE/PNG', 'multipart/form-data', 'application/vnd.API+json'), WS, fc.constantFrom('', ';', '; charset=UTF-8', ';;a=b', ';boundary="x;y"'), anyText(10))
      .map((parts) => parts.join('')),
  );

  it('trimHeaderValue never throws, is idempotent and only removes SP/HT/CR/LF from the ends', () => {
    fc.assert(
      fc.property(fc.oneof(anyText(80), fc.tuple(WS, anyText(20), WS).map((p) => p.join(''))), (raw) => {
        const t = trimHeaderValue(raw);
        assert.equal(typeof t, 'string');
        assert.equal(trimHeaderValue(t), t);
        assert.ok(raw.includes(t));
        assert.doesNotMatch(t, /^[ \t\r\n]|[ \t\r\n]$/);
        const start = raw.indexOf(t);
        assert.match(raw.slice(0, start), /^[ \t\r\n]*$/);
      }),
      { numRuns: RUNS },
    );
  });

  it('canonicalContentType never throws, has no ";" and no upper case, and is idempotent', () => {
    fc.assert(
      fc.property(fc.option(contentTypeLike, { nil: undefined }), (raw) => {
        const c = canonicalContentType(raw);
        assert.equal(typeof c, 'string');
        assert.ok(!c.includes(';'), c);
        assert.equal(c, c.toLowerCase());
        assert.doesNotMatch(c, /[A-Z]/);
        assert.equal(canonicalContentType(c), c);
        if (raw === undefined) assert.equal(c, '');
      }),
      { numRuns: RUNS },
    );
  });

  it('stringToSign never throws and lays out method, target and body hash where they belong', () => {
    fc.assert(
      fc.property(
        fc.record({
          method: anyText(10),
          target: anyText(60),
          date: anyText(30),
          host: anyText(30),
          contentType: fc.option(anyText(30), { nil: undefined }),
          apiVersion: anyText(20),
          bodyHash: fc.constantFrom(64, 96, 128).chain(hexOf),
          versionLabel: fc.constantFrom(undefined, 'x-backendai-version' as const, 'x-sorna-version' as const),
        }),
        (parts) => {
          const s = stringToSign(parts);
          assert.equal(typeof s, 'string');
          assert.ok(s.startsWith(`${parts.method.toUpperCase()}\n${parts.target}\n`));
          assert.ok(s.endsWith(`\n${parts.bodyHash}`));
          assert.ok(s.includes(`\ncontent-type:${canonicalContentType(parts.contentType)}\n`));
        },
      ),
      { numRuns: RUNS },
    );
  });
});

// ---------------------------------------------------------------- keypair files

function assertKeypair(k: Keypair): void {
  assert.match(k.accessKey, ACCESS_KEY_FORMAT);
  assert.equal(typeof k.secretKey, 'string');
  assert.ok(k.secretKey.length >= 16 && k.secretKey.length <= 256);
  assert.ok(['user', 'admin', 'superadmin'].includes(k.role));
  assert.equal(typeof k.domain, 'string');
  assert.equal(typeof k.user, 'string');
  assert.equal(typeof k.isActive, 'boolean');
  for (const n of [k.rateLimit, k.maxSessions]) assert.ok(n === undefined || (Number.isInteger(n) && n >= 0));
  assert.ok(k.expiresAt === undefined || Number.isFinite(k.expiresAt));
}

describe('fuzz: parseKeypair', () => {
  const tomlLike = fc.oneof(
    anyText(300),
    fc
      .array(
        fc.tuple(
          fc.constantFrom('access_key', 'secret_key', 'role', 'domain', 'user', 'rate_limit', 'max_sessions', 'is_active', 'expires_at', 'x', '[t]', '"q"'),
          fc.constantFrom(' = ', '=', ' '),
          fc.oneof(
            fc.constantFrom('"AKIAIOSFODNN7EXAMPLE"', '"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"', '"admin"', 'true', '1', '-1', '1.5', '2027-01-01T00:00:00Z', '2027-01-01', '12:00:00', '[]', '{}', '"', "'''", 'nan', 'inf'),
            anyText(20),
          ),
        ).map((p) => p.join('')),
        { maxLength: 10 },
      )
      .map((lines) => lines.join('\n')),
  );

  it('on arbitrary text returns a well-typed Keypair or throws an Error', () => {
    fc.assert(
      fc.property(tomlLike, (text) => {
        let k: Keypair;
        try {
          k = parseKeypair(text);
        } catch (error) {
          assert.ok(error instanceof Error, `threw ${inspect(error)}`);
          assert.equal(typeof error.message, 'string');
          return;
        }
        assertKeypair(k);
      }),
      { numRuns: RUNS },
    );
  });

  const secretArb = fc.stringMatching(/^[A-Za-z0-9+/]{16,64}$/);
  // One broken field per file; `s` is the secret, which must never reach the message.
  const BROKEN: Array<(s: string) => Record<string, string>> = [
    () => ({ access_key: '"ab"' }),
    () => ({ access_key: '"not-a-valid key!"' }),
    () => ({ access_key: '12345' }),
    (s) => ({ access_key: JSON.stringify(s) }), // the secret pasted as the access key
    () => ({ role: '"root"' }),
    () => ({ role: '7' }),
    () => ({ domain: '""' }),
    () => ({ user: '[1, 2]' }),
    () => ({ rate_limit: '-1' }),
    () => ({ rate_limit: '"many"' }),
    () => ({ max_sessions: '1.5' }),
    () => ({ is_active: '"yes"' }),
    () => ({ expires_at: '"not a date"' }),
    () => ({ expires_at: '12345' }),
    () => ({ expires_at: '12:00:00' }),
    () => ({ expires_at: '{ at = 1 }' }),
    () => ({ unknown_field: '1' }),
    (s) => ({ [JSON.stringify(s)]: '1' }), // the secret as an unknown key
    () => ({ access_key: '"AKIAIOSFODNN7EXAMPLE"\naccess_key = "AKIAIOSFODNN7EXAMPLF"' }), // duplicate key
    () => ({ role: '"user' }), // unterminated string
    () => ({ 'role =': '' }),
    (s) => ({ secret_key: `${JSON.stringify(s)} junk` }),
    (s) => ({ secret_key: `[${JSON.stringify(s)}]` }),
    (s) => ({ secret_key: `{ v = ${JSON.stringify(s)} }` }),
    (s) => ({ secret_key: JSON.stringify(s.repeat(Math.ceil(257 / s.length))) }), // too long
    (s) => ({ secret_key: JSON.stringify(s.slice(0, 15)) }), // too short
    (s) => ({ secret_key: `'''${s}` }),
    (s) => ({ secret_key: `"${s}\\q"` }), // invalid escape
    () => ({ secret_key: '123' }),
  ];

  it('never puts the secret in an error message (one broken field per file)', () => {
    fc.assert(
      fc.property(secretArb, fc.nat(BROKEN.length - 1), fc.shuffledSubarray(['role', 'domain', 'user', 'is_active'], {}), (secret, which, order) => {
        const fields: Record<string, string> = {
          access_key: '"AKIAIOSFODNN7EXAMPLE"',
          secret_key: JSON.stringify(secret),
        };
        const defaults: Record<string, string> = { role: '"user"', domain: '"default"', user: '"a@example.com"', is_active: 'true' };
        for (const name of order) fields[name] = defaults[name];
        Object.assign(fields, BROKEN[which](secret));
        const text = Object.entries(fields)
          .map(([k, v]) => (v === '' ? k : `${k} = ${v}`))
          .join('\n');
        let k: Keypair | undefined;
        try {
          k = parseKeypair(text);
        } catch (error) {
          assert.ok(error instanceof Error);
          const shown = `${error.message}\n${String(error)}\n${inspect(error)}`;
          const short = secret.slice(0, 15);
          assert.ok(!shown.includes(secret), `secret leaked: ${error.message}`);
          assert.ok(!shown.includes(short), `secret prefix leaked: ${error.message}`);
          return;
        }
        // A few "broken" variants are legal TOML for a valid keypair (none today); then it must still be well-typed.
        assertKeypair(k);
      }),
      { numRuns: RUNS },
    );
  });
});

// ---------------------------------------------------------------- config

describe('fuzz: configFromObject', () => {
  const SECTIONS: Record<string, string[]> = {
    server: ['host', 'port', 'body_limit_bytes', 'header_limit_bytes', 'request_timeout_ms', 'trusted_proxies'],
    auth: ['skew_seconds', 'algorithms', 'body_hash', 'api_versions', 'problem_base_uri'],
    keypairs: ['dir'],
    ratelimit: ['store', 'redis_url', 'window_seconds', 'default_limit', 'anonymous_limit', 'redis_timeout_ms', 'on_redis_failure'],
    idempotency: ['ttl_seconds'],
    sessions: ['idle_timeout_seconds', 'default_max_sessions'],
    inference: ['providers', 'max_image_bytes', 'max_image_pixels', 'concurrency', 'max_queue', 'timeout_ms', 'threads'],
    log: ['level'],
  };
  const plausibleValue = fc.oneof(
    fc.jsonValue({ maxDepth: 2 }),
    fc.integer({ min: -10, max: 70_000 }),
    fc.constantFrom('sha256', 'strict', 'memory', 'redis', 'deny', 'info', 'cpu', 'cuda', '127.0.0.1', 'v8.20240915', ''),
    fc.array(fc.constantFrom('sha1', 'sha256', 'md5', 'cpu', 'cuda', 'v4.20181215', 'x', '10.0.0.0/8'), { maxLength: 4 }),
  );
  const sectionArb = (name: string) =>
    fc.dictionary(fc.oneof(fc.constantFrom(...SECTIONS[name]), fc.constantFrom('__proto__', 'constructor', 'bogus')), plausibleValue, { maxKeys: 4 });
  const configLike = fc.oneof(
    fc.jsonValue({ maxDepth: 3 }),
    fc.record(Object.fromEntries(Object.keys(SECTIONS).map((n) => [n, sectionArb(n)])), { requiredKeys: [] }),
    fc.dictionary(fc.oneof(fc.constantFrom(...Object.keys(SECTIONS), '__proto__', 'toString'), fc.string()), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 }),
  );

  function assertConfig(c: Config): void {
    assert.equal(typeof c.server.host, 'string');
    assert.ok(Number.isInteger(c.server.port) && c.server.port >= 0 && c.server.port <= 65535);
    assert.ok(Number.isInteger(c.server.body_limit_bytes));
    assert.ok(Array.isArray(c.server.trusted_proxies));
    assert.ok(Number.isInteger(c.auth.skew_seconds) && c.auth.skew_seconds >= 1);
    assert.ok(c.auth.algorithms.length > 0 && c.auth.algorithms.every((a) => (ALL_ALGORITHMS as readonly string[]).includes(a)));
    assert.ok(c.auth.body_hash === 'strict' || c.auth.body_hash === 'backendai');
    assert.ok(c.auth.api_versions.length > 0);
    assert.equal(typeof c.keypairs.dir, 'string');
    assert.ok(c.ratelimit.store === 'memory' || c.ratelimit.store === 'redis');
    assert.ok(c.inference.providers.length > 0);
    assert.equal(typeof c.log.level, 'string');
  }

  it('returns a Config or throws ConfigError for arbitrary JSON-like objects', () => {
    fc.assert(
      fc.property(configLike, (raw) => {
        // Round-trip through JSON.parse so that "__proto__" is an own key, as TOML/JSON parsers produce it.
        const value = JSON.parse(JSON.stringify(raw) ?? 'null') as unknown;
        let c: Config;
        try {
          c = configFromObject(value);
        } catch (error) {
          assert.ok(error instanceof ConfigError, `threw ${inspect(error)}`);
          return;
        }
        assertConfig(c);
      }),
      { numRuns: RUNS },
    );
  });
});

// ---------------------------------------------------------------- verifyRequest

describe('fuzz: verifyRequest', () => {
  const NOW = Date.UTC(2025, 5, 15, 12, 0, 0);
  const HOST = '127.0.0.1:8080';
  const keypairs = new Map<string, Keypair>(
    [ALICE, BOB].map((k) => [k.accessKey, { accessKey: k.accessKey, secretKey: k.secretKey, role: 'user', domain: 'default', user: '', isActive: true }]),
  );
  const policy: VerifyPolicy = {
    algorithms: new Set<HashAlgorithm>(['sha256', 'sha384', 'sha512']),
    skewMs: 900_000,
    bodyHashMode: 'strict',
    apiVersions: new Set(API_VERSIONS),
  };
  const context = (): VerifyContext => ({ lookup: (ak) => keypairs.get(ak), keys: new SigningKeyCache(), dates: new SigningDateCache(), now: NOW });
  const nowIso = new Date(NOW).toISOString();

  function request(method: string, target: string, headers: Record<string, string | undefined>, body: Uint8Array, host = HOST): RequestToVerify {
    const lower = new Map(Object.entries(headers).flatMap(([k, v]) => (v === undefined ? [] : [[k.toLowerCase(), v] as const])));
    return { method, target, host, body: Buffer.from(body), header: (name) => lower.get(name) };
  }

  function outcome(req: RequestToVerify, p: VerifyPolicy = policy): 'ok' | number {
    try {
      verifyRequest(req, p, context());
      return 'ok';
    } catch (error) {
      assert.ok(error instanceof ApiError, `threw a non-ApiError: ${inspect(error)}`);
      assert.ok(error.status === 400 || error.status === 401, `status ${error.status}: ${error.message}`);
      return error.status;
    }
  }

  const valid = signRequest({ method: 'POST', target: '/auth/test', host: HOST, accessKey: ALICE.accessKey, secretKey: ALICE.secretKey, body: '{}', contentType: 'application/json', date: nowIso });
  const headerValue = (good: string) =>
    fc.option(
      fc.oneof(
        anyText(80),
        fc.constant(good),
        fc.tuple(WS, fc.constant(good), WS).map((p) => p.join('')),
        fc.tuple(fc.constant(good), fc.nat(good.length), anyText(4)).map(([g, i, j]) => g.slice(0, i) + j + g.slice(i + 1)),
      ),
      { nil: undefined },
    );

  it('throws only ApiError 400/401 for random header values', () => {
    fc.assert(
      fc.property(
        fc.record({
          authorization: fc.oneof(headerValue(valid.headers.Authorization), authorizationLike),
          date: fc.oneof(headerValue(nowIso), dateLike),
          'x-backendai-date': headerValue(nowIso),
          'x-sorna-date': headerValue(nowIso),
          'x-backendai-version': headerValue('v8.20240915'),
          'x-sorna-version': headerValue('v4.20190615'),
          'content-type': headerValue('application/json'),
        }),
        fc.constantFrom('GET', 'POST', 'post', 'DELETE'),
        fc.oneof(fc.constant('/auth/test'), anyText(40)),
        fc.oneof(fc.constant(new Uint8Array(Buffer.from('{}'))), fc.uint8Array({ maxLength: 64 })),
        fc.oneof(fc.constant(HOST), anyText(20)),
        (headers, method, target, body, host) => {
          outcome(request(method, target, headers, body, host));
        },
      ),
      { numRuns: 2 * RUNS },
    );
  });

  const signedCase = fc.record({
    method: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH'),
    target: fc.oneof(fc.constant('/auth/test'), fc.string({ unit: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 60 }).map((s) => `/${s}`)),
    body: fc.uint8Array({ minLength: 1, maxLength: 512 }),
    contentType: fc.option(fc.oneof(fc.constantFrom('application/json', 'application/octet-stream', 'text/plain; charset=utf-8', ''), fc.string({ maxLength: 30 })), { nil: undefined }),
    algorithm: fc.constantFrom<HashAlgorithm>('sha256', 'sha384', 'sha512'),
    scheme: schemeArb,
    skewSeconds: fc.integer({ min: -890, max: 890 }),
    offsetMinutes: fc.integer({ min: -12 * 60, max: 14 * 60 }),
    apiVersion: fc.constantFrom(...API_VERSIONS),
    who: fc.constantFrom(ALICE, BOB),
  });

  function signCase(c: typeof signedCase extends fc.Arbitrary<infer T> ? T : never) {
    const date = isoExtended(NOW + c.skewSeconds * 1000, c.offsetMinutes, false, true);
    const s = signRequest({ method: c.method, target: c.target, host: HOST, accessKey: c.who.accessKey, secretKey: c.who.secretKey, body: c.body, contentType: c.contentType, apiVersion: c.apiVersion, algorithm: c.algorithm, scheme: c.scheme, date });
    return s.headers;
  }

  it('accepts every correctly signed request (any algorithm, scheme, offset, content type, target)', () => {
    fc.assert(
      fc.property(signedCase, (c) => {
        const req = request(c.method, c.target, signCase(c), c.body);
        assert.equal(outcome(req), 'ok');
      }),
      { numRuns: RUNS },
    );
  });

  it('strict mode: any single tampered body byte gives 401', () => {
    fc.assert(
      fc.property(signedCase, fc.nat(), fc.integer({ min: 1, max: 255 }), (c, at, flip) => {
        const headers = signCase(c);
        const tampered = Uint8Array.from(c.body);
        tampered[at % tampered.length] ^= flip;
        assert.equal(outcome(request(c.method, c.target, headers, tampered)), 401);
        // Sanity: the untampered body verifies.
        assert.equal(outcome(request(c.method, c.target, headers, c.body)), 'ok');
      }),
      { numRuns: RUNS },
    );
  });
});

// ---------------------------------------------------------------- long adversarial strings (issue 7 item 1)

/**
 * Every parser that sees client input gets long repetitions of the characters
 * that make regular expressions and hand-written scanners backtrack or loop
 * (spaces, quotes, commas, equals, colons, brackets, base64 letters), with a
 * tail that forces a late failure. Each call must finish within a time bound
 * and return a result or a typed error: `"A" + 120000 spaces + "!"` took the
 * old base64 check 10-40 s.
 */
describe('fuzz: long adversarial strings, every client-facing parser, time-bounded', () => {
  const TRICKY = [' ', '  ', '\t', ',', ', ', '=', '==', '"', '" ,', ';', ':', '::', 'A', 'a', '0', '9', '-', '+', '/', '.', '[', ']', '\\', '\r\n', 'a=', 'x,', '%', '%2', 'T', 'Z', '_', 'credential=', 'signMethod=', 'unknown', '1.2.3.4', '::1', 'GMT '];
  const PREFIX = ['', 'A', 'BackendAI ', 'Sorna signMethod=HMAC-SHA256, ', 'data:image/png;base64,', 'data:', 'multipart/form-data; boundary=', 'application/json; ', '2024-01-01T00:00:00', 'Mon, 01 Jan 2024 ', '10.0.0.1, ', '[::1]:'];
  const TAIL = ['', '!', '"', '\u0000', '=', ' ', '\u00e9', ',', ':', '\ud800', 'Z'];
  /** 10k to 100k characters: one to four tricky units repeated, a prefix that gets a parser going, a tail that fails late. */
  const repeated = (units: readonly string[]) =>
    fc
      .tuple(fc.constantFrom(...PREFIX), fc.array(fc.constantFrom(...units), { minLength: 1, maxLength: 4 }), fc.integer({ min: 10_000, max: 100_000 }), fc.constantFrom(...TAIL))
      .map(([prefix, parts, n, tail]) => {
        const unit = parts.join('');
        return prefix + unit.repeat(Math.ceil(n / unit.length)).slice(0, n) + tail;
      });
  // Whitespace runs get their own share: they are what `[…\s]*…\s*$` patterns choke on.
  const longAdversarial = fc.oneof({ weight: 3, arbitrary: repeated(TRICKY) }, { weight: 1, arbitrary: repeated([' ', '\t', '\r\n', ' A', ', ', '= ']) });
  // No shrinking: on a quadratic parser every shrink step would be another slow call.
  const LONG_RUNS = { numRuns: 40, endOnFailure: true };
  /** Generous on a loaded 2-core machine; a quadratic parser takes seconds to minutes on these inputs. */
  const BOUND_MS = 300;

  function within<T>(what: string, input: string, f: () => T): T {
    const started = performance.now();
    const result = f();
    const ms = performance.now() - started;
    assert.ok(ms < BOUND_MS, `${what} took ${Math.round(ms)} ms on ${JSON.stringify(input.slice(0, 40))}… (${input.length} chars)`);
    return result;
  }
  async function withinAsync<T>(what: string, input: string, f: () => Promise<T>): Promise<T> {
    const started = performance.now();
    const result = await f();
    const ms = performance.now() - started;
    assert.ok(ms < BOUND_MS * 3, `${what} took ${Math.round(ms)} ms on ${JSON.stringify(input.slice(0, 40))}… (${input.length} chars)`);
    return result;
  }
  /** Runs f; an ApiError with a 4xx status is a typed refusal, anything else thrown fails the property. */
  function apiErrorOr<T>(f: () => T): T | ApiError {
    try {
      return f();
    } catch (error) {
      assert.ok(error instanceof ApiError, `threw ${inspect(error).slice(0, 300)}`);
      assert.ok(error.status >= 400 && error.status < 500, `status ${error.status}`);
      return error;
    }
  }

  it('parseAuthorization, algorithmOfSignMethod', () => {
    fc.assert(
      fc.property(longAdversarial, (s) => {
        const r = within('parseAuthorization', s, () => parseAuthorization(s));
        assert.equal(typeof r.ok, 'boolean');
        within('algorithmOfSignMethod', s, () => algorithmOfSignMethod(s));
      }),
      LONG_RUNS,
    );
  });

  it('parseSigningDate and SigningDateCache', () => {
    const cache = new SigningDateCache(16);
    fc.assert(
      fc.property(longAdversarial, (s) => {
        for (const raw of [s, s.slice(0, 64), s.slice(-64)]) {
          const r = within('parseSigningDate', raw, () => parseSigningDate(raw));
          assert.ok(r === undefined || Number.isFinite(r.epochMs));
          within('SigningDateCache', raw, () => cache.parse(raw));
        }
      }),
      LONG_RUNS,
    );
  });

  it('canonicalContentType, trimHeaderValue, stringToSign', () => {
    fc.assert(
      fc.property(longAdversarial, (s) => {
        assert.equal(typeof within('canonicalContentType', s, () => canonicalContentType(s)), 'string');
        assert.equal(typeof within('trimHeaderValue', s, () => trimHeaderValue(s)), 'string');
        const parts = { method: 'POST', target: s, date: s, host: s, contentType: s, apiVersion: s, bodyHash: 'a'.repeat(64) };
        assert.equal(typeof within('stringToSign', s, () => stringToSign(parts)), 'string');
      }),
      LONG_RUNS,
    );
  });

  it('decodeBase64 (images and model uploads), with and without data: URLs and size limits', () => {
    fc.assert(
      fc.property(longAdversarial, fc.boolean(), (s, dataUrl) => {
        const r = within('decodeBase64', s, () => decodeBase64(s, { dataUrl, maxBytes: dataUrl ? 1000 : undefined }));
        assert.equal(typeof r.ok, 'boolean');
        if (r.ok) assert.ok(Buffer.isBuffer(r.bytes));
        else assert.ok(r.reason === 'invalid' || r.reason === 'too-large');
      }),
      LONG_RUNS,
    );
  });

  it('resolveClient (X-Forwarded-For / -Host / -Proto, Host) and addressBucket', () => {
    const trusted = new TrustedProxies(['127.0.0.0/8', '10.0.0.0/8', '::1', 'fd00::/8']);
    fc.assert(
      fc.property(longAdversarial, fc.constantFrom('127.0.0.1', '::ffff:10.1.2.3', '::1', '192.0.2.1', undefined), (s, peer) => {
        const headers = { host: s, 'x-forwarded-for': s, 'x-forwarded-host': s, 'x-forwarded-proto': s };
        const view = within('resolveClient', s, () => resolveClient(peer, headers, trusted));
        assert.equal(typeof view.address, 'string');
        assert.equal(typeof view.host, 'string');
        // Also as repeated headers (Node hands some of them over as arrays).
        within('resolveClient[]', s, () => resolveClient(peer, { host: s, 'x-forwarded-for': [s, s], 'x-forwarded-host': [s, s] } as never, trusted));
        within('addressBucket', s, () => addressBucket(s));
        within('addressBucket(view)', view.address, () => addressBucket(view.address));
      }),
      LONG_RUNS,
    );
  });

  it('verifyRequest (Authorization, Date, X-BackendAI-Version, Content-Type, Host): ApiError 400/401 only', () => {
    const policy: VerifyPolicy = { algorithms: new Set<HashAlgorithm>(['sha256']), skewMs: 900_000, bodyHashMode: 'backendai', apiVersions: new Set(API_VERSIONS) };
    const lookup = (ak: string) => (ak === ALICE.accessKey ? { accessKey: ALICE.accessKey, secretKey: ALICE.secretKey, role: 'user' as const, domain: 'default', user: '', isActive: true } : undefined);
    const ctx: VerifyContext = { lookup, keys: new SigningKeyCache(), dates: new SigningDateCache(), now: Date.now() };
    const good = signRequest({ method: 'GET', target: '/auth/test', host: 'h', accessKey: ALICE.accessKey, secretKey: ALICE.secretKey });
    fc.assert(
      fc.property(longAdversarial, fc.constantFrom('authorization', 'date', 'x-backendai-version', 'content-type', 'host', 'all'), (s, which) => {
        const headers: Record<string, string> = {
          authorization: good.headers.Authorization,
          date: good.headers.Date,
          'x-backendai-version': good.headers['X-BackendAI-Version'],
        };
        if (which === 'all') for (const k of ['authorization', 'date', 'x-backendai-version', 'content-type']) headers[k] = s;
        else if (which !== 'host') headers[which] = s;
        const req: RequestToVerify = { method: 'GET', target: '/auth/test', host: which === 'host' || which === 'all' ? s : 'h', body: Buffer.alloc(0), header: (n) => headers[n] };
        const r = within('verifyRequest', s, () => apiErrorOr(() => verifyRequest(req, policy, ctx)));
        if (r instanceof ApiError) assert.ok(r.status === 400 || r.status === 401);
      }),
      LONG_RUNS,
    );
  });

  it('parseBody (JSON, +json, form) and ownerParam/resolveOwner on query strings', () => {
    const requester = { accessKey: ALICE.accessKey, secretKey: ALICE.secretKey, role: 'admin' as const, domain: 'default', user: '', isActive: true };
    fc.assert(
      fc.property(longAdversarial, fc.constantFrom('application/json', 'application/problem+json', 'application/x-www-form-urlencoded', 'text/plain'), (s, type) => {
        const bodies = [s, `{"owner_access_key": "${s.replace(/["\\]/g, '')}"}`, `{"a":${'['.repeat(5000)}`];
        for (const text of bodies) {
          const body = within('parseBody', text, () => apiErrorOr(() => parseBody(Buffer.from(text), type)));
          const query = within('querystring', s, () => parseQuery(`owner_access_key=${s}&owner_access_key=${s}&${s}`));
          within('ownerParam', s, () => apiErrorOr(() => ownerParam(query, body instanceof ApiError ? undefined : body)));
          within('ownerParam(single)', s, () => apiErrorOr(() => ownerParam({ owner_access_key: s }, undefined)));
          within('resolveOwner', s, () => apiErrorOr(() => resolveOwner(requester, s, () => undefined, Date.now())));
        }
      }),
      { ...LONG_RUNS, numRuns: 20 },
    );
  });

  it('name and key checks: access keys, session names, model names, model configs', () => {
    const sessionName = new RegExp(SESSION_NAME);
    const modelName = new RegExp(MODEL_NAME);
    fc.assert(
      fc.property(longAdversarial, (s) => {
        within('ACCESS_KEY_FORMAT', s, () => ACCESS_KEY_FORMAT.test(s));
        within('SESSION_NAME', s, () => sessionName.test(s));
        within('MODEL_NAME', s, () => modelName.test(s));
        within('parseModelConfig', s, () => apiErrorOr(() => parseModelConfig({ name: s, task: s, input: { width: 8, height: 8, color: s }, labels: [s] })));
      }),
      LONG_RUNS,
    );
  });

  it('route matching on long paths', () => {
    const router = new Router();
    for (const path of ['/', '/auth/role', '/auth/test', '/health', '/metrics', '/models', '/models/:name', '/models/backup', '/models/restore', '/openapi.json', '/session', '/session/:name', '/session/:name/infer']) {
      router.register(path, ['GET', 'POST'], [() => undefined]);
    }
    fc.assert(
      fc.property(longAdversarial, fc.constantFrom('/session/', '/models/', '/', '/session/x/', '/auth/'), (s, head) => {
        const path = head + s.replace(/[?#]/g, '');
        within('router.match', path, () => router.match(path, 'POST'));
      }),
      LONG_RUNS,
    );
  });

  it('extractImage (raw, multipart, JSON base64): an image or an ApiError, never a crash', async () => {
    await fc.assert(
      fc.asyncProperty(longAdversarial, fc.constantFrom('multipart/form-data; boundary=', 'multipart/form-data; boundary="', 'application/json', 'image/png', ''), async (s, typeHead) => {
        const contentType = typeHead === 'application/json' || typeHead === 'image/png' ? `${typeHead}; ${s.slice(0, 8000)}` : typeHead + s.slice(0, 8000);
        const boundary = s.slice(0, 60).replace(/[\r\n"]/g, '') || 'b';
        const bodies = [Buffer.from(s), Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="${s}"\r\n\r\n${s}\r\n--${boundary}--\r\n`)];
        for (const raw of bodies) {
          const outcome = await withinAsync('extractImage', s, () =>
            extractImage(raw, contentType, { image: s }, 1 << 20).then(
              (image) => image,
              (error: unknown) => error,
            ),
          );
          if (!Buffer.isBuffer(outcome)) {
            assert.ok(outcome instanceof ApiError, `rejected with ${inspect(outcome).slice(0, 300)}`);
            assert.ok(outcome.status >= 400 && outcome.status < 500);
          }
        }
      }),
      { ...LONG_RUNS, numRuns: 20 },
    );
  });

  it('parseKeypair on long text (keypair files are operator input, but cheap to check)', () => {
    fc.assert(
      fc.property(longAdversarial, (s) => {
        within('parseKeypair', s, () => {
          try {
            parseKeypair(`access_key = "AKIAIOSFODNN7EXAMPLE"\nsecret_key = "${s.replace(/["\\\n\r]/g, '')}"\n${s}`);
          } catch (error) {
            assert.ok(error instanceof Error);
          }
        });
      }),
      { ...LONG_RUNS, numRuns: 10 },
    );
  });
});
