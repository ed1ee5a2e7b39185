/**
 * Fuzzing one spawned gateway process over HTTP on 127.0.0.1: random auth
 * headers, request targets and bodies never give a 5xx, every 4xx is an RFC 9457
 * problem document, tampered bodies are refused, and malformed HTTP on a raw
 * socket is answered with a 4xx (or a closed connection) without harming the
 * process. Each property is bounded in runs and time.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import fc from 'fast-check';
import { parseAuthorization } from '../src/signing/authorization.js';
import { canonicalContentType, trimHeaderValue } from '../src/signing/canonical.js';
import { signRequest, type SignRequestInput } from '../src/signing/sign-request.js';
import { ALICE, BOB, startGateway, type Response, type TestGateway } from './helpers/gateway.js';

const BASE = 'https://api.backend.ai/probs/';
const RUNS = 150;
// No shrinking: if the process dies, every later run fails too and shrinking would only report noise.
const FC = { numRuns: RUNS, interruptAfterTimeLimit: 8_000, markInterruptAsFailure: false, endOnFailure: true, includeErrorInReport: true } as const;
const VERSIONS = ['v4.20181215', 'v6.20220615', 'v8.20240915'];

/** Every answer is < 500; every 4xx is a complete problem document. */
function assertSane(res: Response, what: string, method = 'GET'): void {
  assert.ok(res.status >= 200 && res.status < 500, `${what}: got ${res.status} ${res.text}`);
  if (res.status < 400) return;
  assert.match(String(res.headers['content-type']), /^application\/problem\+json/, `${what}: ${res.status} content-type`);
  if (method === 'HEAD') return;
  const doc = res.json;
  assert.ok(doc && typeof doc === 'object', `${what}: body is not JSON: ${res.text}`);
  assert.equal(typeof doc.type, 'string');
  assert.ok(doc.type.startsWith(BASE), `${what}: type ${doc.type}`);
  assert.equal(typeof doc.title, 'string');
  assert.equal(doc.status, res.status, `${what}: problem status`);
  assert.equal(typeof doc.detail, 'string');
  assert.equal(doc.msg, doc.detail);
}

// Node refuses control characters in header values client-side; tab and latin-1 are allowed.
const headerChar = fc.oneof(
  { weight: 8, arbitrary: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)) },
  { weight: 1, arbitrary: fc.constant('\t') },
  { weight: 1, arbitrary: fc.integer({ min: 0x80, max: 0xff }).map((c) => String.fromCharCode(c)) },
);
const headerText = (maxLength = 80) => fc.string({ unit: headerChar, maxLength });
const targetChar = fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c));

describe('fuzz: gateway over HTTP', () => {
  let gw: TestGateway;
  let host: string;
  const sign = (input: Omit<SignRequestInput, 'host' | 'accessKey' | 'secretKey'> & { as?: typeof ALICE }) =>
    signRequest({ host, accessKey: (input.as ?? ALICE).accessKey, secretKey: (input.as ?? ALICE).secretKey, ...input });

  before(async () => {
    gw = await startGateway({
      config: '[server]\nbody_limit_bytes = 65536\n[ratelimit]\nanonymous_limit = 1000000\ndefault_limit = 1000000\n',
    });
    host = `127.0.0.1:${gw.port}`;
  });
  after(async () => {
    if (gw?.proc.exitCode !== null && gw?.proc.exitCode !== undefined) {
      // The process died: show why (its log tail) before the folder goes away.
      console.error(`gateway exited with ${gw.proc.exitCode}:\n${gw.output.slice(-40).join('\n')}`);
    }
    await gw?.stop();
  });

  /** One header, from junk to almost-right. */
  const headerValue = (good: () => string) =>
    fc.oneof(
      headerText(),
      fc.constant(null), // "use the valid value"
      fc.constant(undefined), // leave the header out
      fc.tuple(fc.nat(200), headerText(4)).map(([i, j]) => (g: string) => g.slice(0, i % (g.length + 1)) + j + g.slice((i % (g.length + 1)) + 1)),
      fc.tuple(fc.constantFrom('', ' ', '\t', '  '), fc.constantFrom('', ' ', '\t')).map(([a, b]) => (g: string) => `${a}${g}${b}`),
    ).map((choice) => ({ choice, good }));

  type Choice = string | null | undefined | ((g: string) => string);
  const apply = (choice: Choice, good: string): string | undefined =>
    choice === null ? good : typeof choice === 'function' ? choice(good) : choice;

  it('random Authorization, Date, X-BackendAI-Version and Content-Type never give a 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('GET', 'POST'),
        fc.record({
          authorization: fc.oneof(headerText(), fc.constant(null), fc.constant(undefined), fc.tuple(fc.nat(200), headerText(4)).map(([i, j]) => (g: string) => g.slice(0, i % g.length) + j + g.slice((i % g.length) + 1)), fc.constantFrom('BackendAI', 'BackendAI ', 'Sorna signMethod=HMAC-SHA256', 'BackendAI signMethod=HMAC-SHA256, credential=AKIAKGATEALICE000001:')),
          date: fc.oneof(headerText(40), fc.constant(null), fc.constant(undefined), fc.constantFrom('Mon, 01 Jan 2024 00:00:00 GMT', '+100000-01-01T00:00:00Z', '20240101T000000Z', '2024-01-01', '0')),
          version: fc.oneof(headerText(20), fc.constant(null), fc.constant(undefined), fc.constantFrom(...VERSIONS, 'v9.20990101', '')),
          contentType: fc.oneof(headerText(40), fc.constant(null), fc.constant(undefined), fc.constantFrom('application/json', 'APPLICATION/JSON; charset=utf-8', 'text/plain', 'application/x-www-form-urlencoded', 'a/b+json')),
          dateHeader: fc.constantFrom('Date', 'X-BackendAI-Date', 'X-Sorna-Date'),
          duplicate: fc.option(fc.constantFrom('Authorization', 'Date', 'X-BackendAI-Version', 'Content-Type'), { nil: undefined }),
        }),
        fc.oneof(fc.constant('{"echo":"hi"}'), fc.constant(''), headerText(60)),
        async (method, h, rawBody) => {
          const body = method === 'POST' ? rawBody : undefined;
          const s = sign({ method, target: '/auth/test', body, contentType: 'application/json' });
          const headers: Array<[string, string]> = [];
          const put = (name: string, choice: Choice, good: string) => {
            const v = apply(choice, good);
            if (v !== undefined) headers.push([name, v]);
          };
          put('Authorization', h.authorization, s.headers.Authorization);
          put(h.dateHeader, h.date, s.headers.Date);
          put('X-BackendAI-Version', h.version, s.headers['X-BackendAI-Version']);
          put('Content-Type', h.contentType, 'application/json');
          if (h.duplicate !== undefined) {
            const first = headers.find(([n]) => n === h.duplicate);
            if (first) headers.push([first[0], first[1]]);
          }
          const res = await gw.request({ method, target: '/auth/test', headers, body });
          assertSane(res, `${method} ${JSON.stringify(headers)}`);
          if (res.status === 200) assert.equal(res.json.authorized, 'yes');
        },
      ),
      FC,
    );
  });

  it('a correct signature with one header changed is refused (400/401) unless the change is canonically invisible', async () => {
    const changed = fc.record({
      method: fc.constantFrom('GET', 'POST'),
      header: fc.constantFrom('Authorization', 'Date', 'X-BackendAI-Version', 'Content-Type', 'Host'),
      value: fc.oneof(
        headerText(60),
        fc.constantFrom(...VERSIONS, 'application/json; charset=utf-8', 'text/plain', 'application/JSON'),
        fc.constant('date-now'),
        fc.constant('sig-upper'),
        fc.constant('other-key'),
      ),
    });
    await fc.assert(
      fc.asyncProperty(changed, async ({ method, header, value }) => {
        const body = method === 'POST' ? '{"echo":"x"}' : undefined;
        const s = sign({ method, target: '/auth/test', body, contentType: 'application/json' });
        const headers: Record<string, string> = { ...s.headers, 'Content-Type': 'application/json', Host: host };
        const original = headers[header];
        let next = value;
        if (value === 'date-now') next = new Date(Date.now() - 1000).toUTCString();
        if (value === 'sig-upper') next = header === 'Authorization' ? original.replace(/:([0-9a-f]+)$/, (_m, hex: string) => `:${hex.toUpperCase()}`) : original;
        if (value === 'other-key') next = header === 'Authorization' ? original.replace(ALICE.accessKey, BOB.accessKey) : original;
        headers[header] = next;
        const res = await gw.request({ method, target: '/auth/test', headers: Object.entries(headers), body });
        assertSane(res, `${header}: ${JSON.stringify(next)}`);
        let invisible: boolean;
        if (header === 'Content-Type') invisible = canonicalContentType(next) === canonicalContentType(original);
        else if (header === 'Authorization') {
          const a = parseAuthorization(trimHeaderValue(next));
          const b = parseAuthorization(original);
          invisible = a.ok && b.ok && a.value.algorithm === b.value.algorithm && a.value.accessKey === b.value.accessKey && a.value.signature === b.value.signature;
        } else invisible = trimHeaderValue(next) === trimHeaderValue(original);
        if (!invisible) assert.ok(res.status === 400 || res.status === 401, `${header}: ${JSON.stringify(next)} gave ${res.status} ${res.text}`);
        else assert.equal(res.status, 200, `${header}: ${JSON.stringify(next)} gave ${res.status} ${res.text}`);
      }),
      FC,
    );
  });

  const segment = fc.oneof(
    fc.string({ unit: targetChar, maxLength: 12 }),
    fc.constantFrom('..', '.', '%zz', '%', '%2', '%2e%2e', '%2E', '%2F', '%00', '%ff', '%C0%AF', '%E2%82', 'auth', 'test', 'session', '%61uth', '~', '%25', '%%', '%u0041', ';x=1'),
  );
  const pathArb = fc.array(segment, { maxLength: 8 }).map((s) => `/${s.join('/')}`);
  const queryArb = fc.oneof(
    fc.constant(''),
    fc.string({ unit: targetChar, maxLength: 40 }).map((q) => `?${q}`),
    fc.array(fc.tuple(fc.constantFrom('echo', 'x', '__proto__', 'constructor', 'echo[]', '', '%zz', 'owner_access_key'), fc.oneof(segment, fc.string({ unit: targetChar, maxLength: 20 }))), { maxLength: 6 }).map(
      (pairs) => `?${pairs.map(([k, v]) => `${k}=${v}`).join('&')}`,
    ),
    fc.integer({ min: 1000, max: 12_000 }).map((n) => `?echo=${'a'.repeat(n)}`),
    fc.integer({ min: 100, max: 3000 }).map((n) => `?${'%zz&'.repeat(n)}`),
  );

  it('random request targets never give a 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'HEAD', 'OPTIONS', 'PATCH'),
        fc.oneof(
          { weight: 6, arbitrary: fc.tuple(pathArb, queryArb).map(([p, q]) => p + q) },
          { weight: 1, arbitrary: fc.constantFrom('*', '//', '//auth/test', '/auth/test/', '/auth//test', '/AUTH/TEST', '/auth/test/..', '/x/../auth/test', 'http://127.0.0.1/auth/test?echo=1', 'http://[::1]/', '/?%', '/%', '/auth/test%00', '//i#~!M4t@q/', '//u@h/v1/vision/face', '//a#b@c/') },
        ),
        async (method, target) => {
          const res = await gw.request({ method, target });
          assertSane(res, `${method} ${target.slice(0, 200)}`, method);
        },
      ),
      FC,
    );
  });

  it('signed requests with random query strings give 200 or 400, never a 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom('GET', 'POST'), queryArb, async (method, query) => {
        const target = `/auth/test${query}`;
        const s = sign({ method, target });
        const res = await gw.request({ method, target, headers: s.headers });
        assertSane(res, `${method} ${target.slice(0, 200)}`);
        assert.ok(res.status === 200 || res.status === 400 || res.status === 431, `${target.slice(0, 200)}: ${res.status} ${res.text}`);
      }),
      FC,
    );
  });

  it('strict mode: a tampered body byte always gives 401', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ minLength: 1, maxLength: 4096 }),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        fc.constantFrom('application/json', 'application/octet-stream', 'text/plain', 'application/x-www-form-urlencoded'),
        async (bytes, at, flip, contentType) => {
          const body = Buffer.from(bytes);
          const s = sign({ method: 'POST', target: '/auth/test', body, contentType });
          const tampered = Buffer.from(body);
          tampered[at % tampered.length] ^= flip;
          const res = await gw.request({ method: 'POST', target: '/auth/test', headers: s.headers, body: tampered });
          assertSane(res, 'tampered');
          assert.equal(res.status, 401, res.text);
          assert.equal(res.json.type, `${BASE}auth-failed`);
        },
      ),
      FC,
    );
  });

  it('strict mode: a tampered body byte gives 401 whatever the content type', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(fc.json({ maxDepth: 2 }).map((j) => Buffer.from(j)), fc.uint8Array({ minLength: 1, maxLength: 512 }).map((b) => Buffer.from(b))),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        fc.constantFrom('application/json', 'text/plain', 'application/x-www-form-urlencoded', 'application/problem+json'),
        async (body, at, flip, contentType) => {
          if (body.length === 0) return;
          const s = sign({ method: 'POST', target: '/auth/test', body, contentType });
          const tampered = Buffer.from(body);
          tampered[at % tampered.length] ^= flip;
          const res = await gw.request({ method: 'POST', target: '/auth/test', headers: s.headers, body: tampered });
          assertSane(res, 'tampered');
          assert.equal(res.status, 401, res.text);
        },
      ),
      FC,
    );
  });

  it('random JSON and non-JSON bodies with a valid signature give 200 or 400', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.json({ maxDepth: 3 }),
          fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.stringify({ echo: v })),
          fc.string({ maxLength: 100 }).map((echo) => JSON.stringify({ echo })),
          fc.constantFrom('{"__proto__":{"echo":"x"}}', '{"constructor":{"prototype":{}}}', '{"echo":"a","echo":1}', '[]', 'null', '{', '\ufeff{}', `{"echo":"${'x'.repeat(5000)}"}`),
          fc.string({ unit: 'binary', maxLength: 200 }),
          fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b).toString('latin1')),
        ),
        fc.boolean(),
        fc.constantFrom('application/json', 'application/json; charset=utf-8', 'Application/Vnd.Foo+JSON', 'application/x-www-form-urlencoded', 'text/plain', 'multipart/form-data; boundary=x', 'application/octet-stream', ''),
        async (text, asBytes, contentType) => {
          const body = asBytes ? Buffer.from(text, 'latin1') : Buffer.from(text, 'utf8');
          const s = sign({ method: 'POST', target: '/auth/test', body, contentType });
          const res = await gw.request({ method: 'POST', target: '/auth/test', headers: s.headers, body });
          assertSane(res, `${contentType} ${JSON.stringify(text.slice(0, 100))}`);
          assert.ok(res.status === 200 || res.status === 400, `${contentType} ${JSON.stringify(text.slice(0, 100))}: ${res.status} ${res.text}`);
          if (res.status === 200) assert.equal(res.json.authorized, 'yes');
        },
      ),
      FC,
    );
  });

  // ---------------------------------------------------------------- raw sockets

  interface Exchange {
    text: string;
    closed: boolean;
  }

  /** Writes raw bytes, half-closes, and collects whatever comes back (bounded in time). */
  function exchange(chunks: Array<string | Buffer>, opts: { halfClose?: boolean; waitMs?: number } = {}): Promise<Exchange> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port: gw.port });
      const got: Buffer[] = [];
      let closed = false;
      const finish = () => {
        clearTimeout(timer);
        socket.destroy();
        resolve({ text: Buffer.concat(got).toString('latin1'), closed });
      };
      const timer = setTimeout(finish, opts.waitMs ?? 3000);
      socket.on('data', (d: Buffer) => got.push(d));
      socket.on('error', () => {
        closed = true;
      });
      socket.on('close', () => {
        closed = true;
        finish();
      });
      socket.on('connect', () => {
        for (const c of chunks) socket.write(c);
        if (opts.halfClose ?? true) socket.end();
      });
      socket.on('timeout', () => reject(new Error('socket timeout')));
    });
  }

  function assertRefused(name: string, r: Exchange): void {
    if (r.text === '') {
      assert.ok(r.closed, `${name}: no answer and the connection is still open`);
      return;
    }
    const status = /^HTTP\/1\.[01] (\d{3}) /.exec(r.text);
    assert.ok(status, `${name}: not an HTTP response: ${JSON.stringify(r.text.slice(0, 200))}`);
    const code = Number(status[1]);
    assert.ok(code >= 400 && code < 500, `${name}: got ${code}: ${r.text.slice(0, 400)}`);
    assert.match(r.text, /\r\ncontent-type: application\/problem\+json/i, `${name}: ${r.text.slice(0, 400)}`);
  }

  const H = () => `Host: 127.0.0.1:${gw.port}\r\n`;
  const signedHeaders = (body: string) => {
    const s = sign({ method: 'POST', target: '/auth/test', body, contentType: 'application/json' });
    return Object.entries(s.headers)
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('');
  };

  const MALFORMED: Array<[string, () => Array<string | Buffer>, { halfClose?: boolean }?]> = [
    ['garbage request line', () => ['GARBAGE\r\n\r\n']],
    ['bad method token', () => [`G(E)T / HTTP/1.1\r\n${H()}\r\n`]],
    ['space in target', () => [`GET /a b HTTP/1.1\r\n${H()}\r\n`]],
    ['unknown HTTP version', () => [`GET / HTTP/9.9\r\n${H()}\r\n`]],
    ['header without colon', () => [`GET / HTTP/1.1\r\n${H()}NoColonHere\r\n\r\n`]],
    ['header name with space', () => [`GET / HTTP/1.1\r\n${H()}Bad Name: x\r\n\r\n`]],
    ['control character in header value', () => [`GET / HTTP/1.1\r\n${H()}X-Test: a\x01b\r\n\r\n`]],
    ['NUL in request line', () => [Buffer.from(`GET /\0 HTTP/1.1\r\n${H()}\r\n`, 'latin1')]],
    ['bare LF line endings in headers', () => [`GET / HTTP/1.1\n${H()}X: y\r\n\r\n`]],
    ['invalid chunk size', () => [`POST /auth/test HTTP/1.1\r\n${H()}Transfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\nzz\r\nabc\r\n0\r\n\r\n`]],
    ['chunk longer than announced', () => [`POST /auth/test HTTP/1.1\r\n${H()}Transfer-Encoding: chunked\r\n\r\n2\r\nabcdef\r\n0\r\n\r\n`]],
    ['truncated chunked body then close', () => [`POST /auth/test HTTP/1.1\r\n${H()}${signedHeaders('{"echo":"x"}')}Transfer-Encoding: chunked\r\n\r\n5\r\n{"ec`]],
    ['signed chunked with bad terminator', () => [`POST /auth/test HTTP/1.1\r\n${H()}${signedHeaders('{}')}Transfer-Encoding: chunked\r\n\r\n2\r\n{}XX0\r\n\r\n`]],
    ['Content-Length larger than body, early close', () => [`POST /auth/test HTTP/1.1\r\n${H()}${signedHeaders('{"echo":"x"}')}Content-Length: 100\r\n\r\n{"echo":"x"}`]],
    ['unsigned Content-Length larger than body, early close', () => [`POST / HTTP/1.1\r\n${H()}Content-Length: 100\r\n\r\nabc`]],
    ['duplicate Content-Length', () => [`POST /auth/test HTTP/1.1\r\n${H()}Content-Length: 5\r\nContent-Length: 6\r\n\r\nabcdef`]],
    ['Content-Length list', () => [`POST /auth/test HTTP/1.1\r\n${H()}Content-Length: 5, 5\r\n\r\nabcde`]],
    ['negative Content-Length', () => [`POST /auth/test HTTP/1.1\r\n${H()}Content-Length: -1\r\n\r\n`]],
    ['non-numeric Content-Length', () => [`POST /auth/test HTTP/1.1\r\n${H()}Content-Length: abc\r\n\r\n`]],
    ['Content-Length and Transfer-Encoding', () => [`POST /auth/test HTTP/1.1\r\n${H()}Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`]],
    ['unknown Transfer-Encoding', () => [`POST /auth/test HTTP/1.1\r\n${H()}Transfer-Encoding: gzip\r\n\r\nabc`]],
    ['huge Content-Length', () => [`POST /auth/test HTTP/1.1\r\n${H()}${signedHeaders('{}')}Content-Length: 99999999999999999999\r\n\r\n{}`]],
    ['header block over the limit', () => [`GET / HTTP/1.1\r\n${H()}X-Big: ${'a'.repeat(20_000)}\r\n\r\n`]],
    ['obsolete line folding', () => [`GET /auth/test HTTP/1.1\r\n${H()}Authorization: BackendAI\r\n signMethod=HMAC-SHA256\r\n\r\n`]],
    ['HTTP/1.0 without Host', () => ['GET /auth/test HTTP/1.0\r\nAuthorization: BackendAI x\r\n\r\n']],
  ];

  it('malformed raw HTTP gets a 4xx or a closed connection, and the gateway keeps answering', async () => {
    for (const [name, build, opts] of MALFORMED) {
      const r = await exchange(build(), opts);
      assertRefused(name, r);
      const ok = await gw.request({ method: 'GET', target: '/' });
      assert.equal(ok.status, 200, `${name}: GET / afterwards gave ${ok.status}`);
    }
    assert.equal(gw.proc.exitCode, null, 'the gateway process is still running');
  });

  it('an HTTP/1.1 request without Host gets a 400 problem document (not the bare Node 400)', async () => {
    // RFC 9112 3.2 requires the 400; the design requires every error to be application/problem+json.
    for (const target of ['/', '/auth/test']) {
      const r = await exchange([`GET ${target} HTTP/1.1\r\nAuthorization: BackendAI x\r\n\r\n`]);
      assertRefused(`HTTP/1.1 without Host (${target})`, r);
      assert.match(r.text, /^HTTP\/1\.1 400 /);
    }
  });

  it('a Content-Length mismatch without close does not hang the process (other clients are served)', async () => {
    const pending = exchange([`POST /auth/test HTTP/1.1\r\n${H()}${signedHeaders('{"echo":"x"}')}Content-Length: 1000\r\n\r\n{"echo"`], { halfClose: false, waitMs: 1500 });
    const ok = await gw.request({ method: 'GET', target: '/' });
    assert.equal(ok.status, 200);
    const r = await pending;
    // Nothing is owed yet (the server is still waiting for the body), but nothing may be a 5xx.
    if (r.text !== '') assertRefused('pending body', r);
  });

  // ---------------------------------------------------------------- signed session routes

  it('signed random session targets never give a 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('GET', 'DELETE', 'POST'),
        fc.oneof(
          fc.tuple(segment, queryArb).map(([seg, q]) => `/session/${seg}${q}`),
          fc.tuple(segment, queryArb).map(([seg, q]) => `/session/${seg}/infer${q}`),
          queryArb.map((q) => `/session${q}`),
          queryArb.map((q) => `/models${q}`),
          fc.string({ unit: targetChar, maxLength: 30 }).map((o) => `/session?owner_access_key=${o}`),
        ),
        async (method, target) => {
          if (/^\/session\/fuzz(?:[/?]|$)/.test(target)) return; // keep the session the infer property uses
          const s = sign({ method, target });
          const res = await gw.request({ method, target, headers: s.headers });
          assertSane(res, `${method} ${target.slice(0, 200)}`, method);
        },
      ),
      FC,
    );
  });

  it('signed inference with random image, JSON and (truncated) multipart bodies gives a 4xx and the gateway survives', async () => {
    const created = await gw.signed({ method: 'POST', target: '/session', as: ALICE, body: JSON.stringify({ name: 'fuzz', image: 'ocr' }) });
    assert.ok(created.status === 201 || created.status === 200, created.text);
    const part = (bytes: Uint8Array, name: string) =>
      Buffer.concat([
        Buffer.from(`--x\r\nContent-Disposition: form-data; name="${name}"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n`),
        Buffer.from(bytes),
        Buffer.from('\r\n--x--\r\n'),
      ]);
    const bodyArb = fc.oneof(
      // multipart, whole or cut anywhere (a cut inside the file part is an unexpected end of form)
      fc.tuple(fc.uint8Array({ maxLength: 256 }), fc.constantFrom('image', 'file'), fc.option(fc.noBias(fc.nat()), { nil: undefined })).map(([bytes, name, cut]) => {
        const whole = part(bytes, name);
        return { contentType: 'multipart/form-data; boundary=x', body: cut === undefined ? whole : whole.subarray(0, cut % whole.length) };
      }),
      fc.tuple(fc.uint8Array({ minLength: 1, maxLength: 256 }), fc.constantFrom('multipart/form-data', 'multipart/form-data; boundary=', 'multipart/form-data; boundary=y', 'multipart/form-data; boundary="x"')).map(([bytes, contentType]) => ({ contentType, body: Buffer.from(bytes) })),
      fc.tuple(fc.uint8Array({ maxLength: 512 }), fc.constantFrom('image/png', 'image/jpeg', 'image/webp', 'image/svg+xml', 'application/octet-stream', 'text/plain')).map(([bytes, contentType]) => ({ contentType, body: Buffer.from(bytes) })),
      fc.oneof(fc.uint8Array({ maxLength: 256 }).map((b) => Buffer.from(b).toString('base64')), fc.string({ maxLength: 40 }), fc.constant('data:image/png;base64,AAAA')).map((image) => ({ contentType: 'application/json', body: Buffer.from(JSON.stringify({ image })) })),
    );
    await fc.assert(
      fc.asyncProperty(bodyArb, async ({ contentType, body }) => {
        const s = sign({ method: 'POST', target: '/session/fuzz/infer', body, contentType });
        let res: Response;
        try {
          res = await gw.request({ method: 'POST', target: '/session/fuzz/infer', headers: s.headers, body, timeoutMs: 20_000 });
        } catch (error) {
          await new Promise((r) => setTimeout(r, 200));
          assert.fail(`${contentType} ${JSON.stringify(body.toString('latin1').slice(0, 300))}: ${(error as Error).message}; gateway exit code ${gw.proc.exitCode}\n${gw.output.slice(-12).join('\n')}`);
        }
        assertSane(res, `${contentType} ${JSON.stringify(body.toString('latin1').slice(0, 200))}`);
        assert.equal(gw.proc.exitCode, null, 'the gateway is still running');
      }),
      {
        ...FC,
        numRuns: 100,
        examples: [
          // A multipart body that ends inside the image part: busboy destroys the file stream with
          // "Unexpected end of form", and with no 'error' listener on it the process dies.
          [{ contentType: 'multipart/form-data; boundary=x', body: Buffer.from('--x\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\nContent-Type: image/png\r\n\r\nabc') }],
        ],
      },
    );
  });

  it('still answers GET / after all of the above', async () => {
    const res = await gw.request({ method: 'GET', target: '/' });
    assert.equal(res.status, 200);
    assert.equal(typeof res.json.version, 'string');
  });
});
