/**
 * README claims about verification and errors that had no test of their own:
 * one 401 for every refused credential and a decoy secret for unknown keys,
 * date-only dates refused, keypair changes seen within milliseconds (inotify,
 * not the 2 s rescan), `instance` = the log's request id, and 500 bodies that
 * say nothing about their cause.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Koa from 'koa';
import { pino } from 'pino';
import { verifyRequest, type RequestToVerify, type VerifyPolicy } from '../src/auth/verify.js';
import type { Keypair } from '../src/keypairs/keypair.js';
import { ApiError } from '../src/problems/api-error.js';
import { problemDocument, problemMiddleware } from '../src/problems/middleware.js';
import { signMethodOf } from '../src/signing/algorithms.js';
import { formatAuthorization } from '../src/signing/authorization.js';
import { bodyHash } from '../src/signing/algorithms.js';
import { stringToSign } from '../src/signing/canonical.js';
import { parseSigningDate, SigningDateCache } from '../src/signing/dates.js';
import { computeSignature } from '../src/signing/signature.js';
import { deriveSigningKey, SigningKeyCache } from '../src/signing/signing-key.js';
import { signRequest } from '../src/signing/sign-request.js';
import { ADMIN, ALICE, rawRequest, startGateway, writeKeypair, type Response, type TestGateway, type TestKeypair } from './helpers/gateway.js';
import { assertProblem } from './helpers/problems.js';

const require = createRequire(import.meta.url);
const HOST = 'gateway.example:8080';

const INACTIVE: TestKeypair = { accessKey: 'AKIAKGATEINACTIVE009', secretKey: 'inactiveSecretKey0000000000000000000I9', isActive: false };
const EXPIRED: TestKeypair = { accessKey: 'AKIAKGATEEXPIRED0010', secretKey: 'expiredSecretKey00000000000000000000E10', expiresAt: Date.now() - 60_000 };
const UNKNOWN: TestKeypair = { accessKey: 'AKIAKGATENOSUCHKEY11', secretKey: 'unknownSecretKey0000000000000000000U11' };
/** ALICE's access key signed with a secret that is not hers. */
const FORGER: TestKeypair = { ...ALICE, secretKey: 'notAlicesSecret000000000000000000000000X' };

const asKeypair = (k: TestKeypair): Keypair => ({
  accessKey: k.accessKey,
  secretKey: k.secretKey,
  role: k.role ?? 'user',
  domain: k.domain ?? 'default',
  user: k.user ?? '',
  isActive: k.isActive ?? true,
  expiresAt: k.expiresAt,
});

const POLICY: VerifyPolicy = {
  algorithms: new Set(['sha256', 'sha384', 'sha512']),
  skewMs: 900_000,
  bodyHashMode: 'strict',
  apiVersions: new Set(['v8.20240915']),
};

/** A request as the middleware would hand it to the verifier. */
function toVerify(headers: Record<string, string>, opts: { method?: string; target?: string; body?: Buffer } = {}): RequestToVerify {
  const lower = new Map(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  return { method: opts.method ?? 'GET', target: opts.target ?? '/auth/test', header: (n) => lower.get(n), host: HOST, body: opts.body ?? Buffer.alloc(0) };
}

/** Counts every HMAC and every constant-time comparison node:crypto performs while `fn` runs. */
function countCrypto<T>(fn: () => T): { result: T | undefined; error: unknown; hmacs: number; compares: number } {
  const crypto = require('node:crypto') as typeof import('node:crypto');
  const { createHmac, timingSafeEqual } = crypto;
  let hmacs = 0;
  let compares = 0;
  crypto.createHmac = ((...args: Parameters<typeof createHmac>) => {
    hmacs++;
    return createHmac(...args);
  }) as typeof createHmac;
  crypto.timingSafeEqual = ((a: NodeJS.ArrayBufferView, b: NodeJS.ArrayBufferView) => {
    compares++;
    return timingSafeEqual(a, b);
  }) as typeof timingSafeEqual;
  syncBuiltinESMExports();
  try {
    return { result: fn(), error: undefined, hmacs, compares };
  } catch (error) {
    return { result: undefined, error, hmacs, compares };
  } finally {
    crypto.createHmac = createHmac;
    crypto.timingSafeEqual = timingSafeEqual;
    syncBuiltinESMExports();
  }
}

/** A key cache that records which identity and secret each lookup derived from. */
class SpyKeyCache extends SigningKeyCache {
  readonly calls: Array<{ id: string; secretKey: string }> = [];
  override get(id: string, algorithm: Parameters<SigningKeyCache['get']>[1], secretKey: string, keyDate: string, host: string): Buffer {
    this.calls.push({ id, secretKey });
    return super.get(id, algorithm, secretKey, keyDate, host);
  }
}

describe('README "Verification order": one 401 for every refused credential, a decoy secret for unknown keys', () => {
  const keypairs = new Map([ALICE, INACTIVE, EXPIRED].map((k) => [k.accessKey, asKeypair(k)]));
  const cases: Array<[string, TestKeypair]> = [
    ['unknown key', UNKNOWN],
    ['inactive key', INACTIVE],
    ['expired key', EXPIRED],
    ['wrong signature', FORGER],
  ];

  /** Verifies one request with fresh caches, so every case starts equally cold. */
  const verifyAs = (who: TestKeypair, opts: { contentType?: string; body?: string; sorna?: boolean; bodyHashMode?: 'strict' | 'backendai' } = {}) => {
    const signed = signRequest({
      method: opts.body === undefined ? 'GET' : 'POST',
      target: '/auth/test',
      host: HOST,
      accessKey: who.accessKey,
      secretKey: who.secretKey,
      body: opts.body,
      contentType: opts.contentType,
      scheme: opts.sorna ? 'Sorna' : 'BackendAI',
    });
    const keys = new SpyKeyCache();
    const req = toVerify(signed.headers, { method: opts.body === undefined ? 'GET' : 'POST', body: opts.body === undefined ? undefined : Buffer.from(opts.body) });
    const policy = { ...POLICY, bodyHashMode: opts.bodyHashMode ?? 'strict' };
    const counted = countCrypto(() => verifyRequest(req, policy, { lookup: (ak) => keypairs.get(ak), keys, dates: new SigningDateCache(), now: Date.now() }));
    return { ...counted, keys };
  };

  it('the verifier refuses all four with the same 401 document', () => {
    const docs = cases.map(([label, who]) => {
      const { error } = verifyAs(who);
      assert.ok(error instanceof ApiError, `${label}: ${String(error)}`);
      assert.equal(error.status, 401, label);
      return JSON.stringify(problemDocument(error, 'https://api.backend.ai/probs/'));
    });
    for (const doc of docs) assert.equal(doc, docs[0]);
    // And ALICE with her own secret passes the same verifier: the refusals are about the credential.
    const ok = verifyAs(ALICE);
    assert.equal(ok.error, undefined, String(ok.error));
    assert.equal(ok.result?.keypair.accessKey, ALICE.accessKey);
  });

  it('an unknown, inactive or expired key goes through the derived-key cache and HMAC like a known one (decoy secret)', () => {
    const known = verifyAs(FORGER);
    assert.equal(known.keys.calls.length, 1);
    assert.equal(known.keys.calls[0].id, ALICE.accessKey);
    for (const [label, who] of cases.slice(0, 3)) {
      const refused = verifyAs(who);
      assert.equal(refused.keys.calls.length, 1, `${label}: one derived-key lookup`);
      const call = refused.keys.calls[0];
      assert.notEqual(call.id, who.accessKey, `${label}: derived under a decoy identity, not the named key`);
      assert.notEqual(call.secretKey, who.secretKey, `${label}: the decoy secret, never the keypair's own`);
      assert.ok(call.secretKey.length >= 16, `${label}: a real secret to derive from`);
      // Same work as a known key with a wrong signature: 2 HMACs to derive, 1 per signature variant, 1 comparison.
      assert.equal(refused.hmacs, known.hmacs, `${label}: HMAC count ${refused.hmacs} vs ${known.hmacs} for a known key`);
      assert.equal(refused.compares, known.compares, `${label}: constant-time comparisons`);
      assert.ok(refused.hmacs >= 3 && refused.compares >= 1, `${label}: ${refused.hmacs} HMACs, ${refused.compares} comparisons`);
    }
    // All refused keys share one decoy: the cache cannot grow with made-up access keys.
    assert.equal(new Set(cases.slice(0, 3).map(([, who]) => verifyAs(who).keys.calls[0].id)).size, 1);
  });

  it('a refused request computes every compatibility variant, whether or not its key exists (README "Compatibility variants")', () => {
    // No Content-Type, only X-Sorna-Version, a body in backendai mode: 2 hashes × 2 version labels × 2 content types.
    const opts = { body: '{"echo":"x"}', sorna: true, bodyHashMode: 'backendai' as const };
    const unknown = verifyAs(UNKNOWN, opts);
    const forged = verifyAs(FORGER, opts);
    assert.equal((unknown.error as ApiError).status, 401);
    assert.equal((forged.error as ApiError).status, 401);
    assert.equal(unknown.hmacs, 2 + 8, 'two to derive the key, eight variants');
    assert.equal(forged.hmacs, unknown.hmacs);
    assert.equal(forged.compares, 8);
    assert.equal(unknown.compares, 8);
    // An accepted request stops at the variant that matched: the first one here.
    const ok = verifyAs(ALICE, { ...opts });
    assert.equal(ok.error, undefined);
    assert.equal(ok.compares, 1, 'the string DESIGN.md fixes matched first; no variant was computed');
  });

  describe('over HTTP', () => {
    let gw: TestGateway;
    before(async () => {
      gw = await startGateway({ keypairs: [ALICE, INACTIVE, EXPIRED] });
    });
    after(() => gw?.stop());

    it('unknown, inactive, expired key and wrong signature: byte-identical 401 bodies except instance', async () => {
      const answers: Response[] = [];
      for (const [, who] of cases) answers.push(await gw.signed({ method: 'GET', target: '/auth/test', as: who }));
      const instances = new Set<string>();
      for (const [i, res] of answers.entries()) {
        assertProblem(res, 401, 'auth-failed');
        assert.equal(typeof res.json.instance, 'string', cases[i][0]);
        instances.add(res.json.instance);
      }
      assert.equal(instances.size, answers.length, 'each answer has its own instance');
      const withoutInstance = answers.map((r) => r.text.replace(JSON.stringify(r.json.instance), '"…"'));
      for (const [i, text] of withoutInstance.entries()) assert.equal(text, withoutInstance[0], `${cases[i][0]} differs from ${cases[0][0]}`);
      assert.equal(answers[0].headers['content-length'], answers[3].headers['content-length']);
      // The message names none of the reasons apart.
      assert.match(answers[0].json.detail, /not found, inactive, expired, or signature mismatch/);
    });
  });
});

describe('README "Dates": date-only values are refused', () => {
  const today = new Date().toISOString().slice(0, 10); // YYYY-MM-DD
  const dateOnly = [today, today.replace(/-/g, ''), `${today}Z`, `${today}+00:00`];

  it('the parser refuses date-only values and accepts the same day with a time', () => {
    for (const raw of dateOnly) assert.equal(parseSigningDate(raw), undefined, raw);
    assert.ok(parseSigningDate(`${today}T00:00:00Z`));
    assert.ok(parseSigningDate(`${today.replace(/-/g, '')}T000000Z`));
  });

  describe('over HTTP', () => {
    let gw: TestGateway;
    // A skew of 20 years: a date-only value cannot be refused for being too far off, only for its form.
    before(async () => {
      gw = await startGateway({ keypairs: [ALICE], config: '[auth]\nskew_seconds = 630720000\n' });
    });
    after(() => gw?.stop());

    /** Headers signed correctly for a date value the signing library itself would refuse. */
    const signedWithDate = (date: string, keyDate: string) => {
      const host = `127.0.0.1:${gw.port}`;
      const canonical = stringToSign({ method: 'GET', target: '/auth/test', date, host, contentType: undefined, apiVersion: 'v8.20240915', bodyHash: bodyHash('sha256', undefined) });
      const signature = computeSignature('sha256', deriveSigningKey('sha256', ALICE.secretKey, keyDate, host), canonical);
      return { Date: date, 'X-BackendAI-Version': 'v8.20240915', Authorization: formatAuthorization('BackendAI', signMethodOf('sha256'), ALICE.accessKey, signature) };
    };

    it('a correctly signed date-only Date is 400 invalid-auth-params; the same signing with a time is 200', async () => {
      const keyDate = today.replace(/-/g, '');
      for (const raw of dateOnly) {
        const res = await gw.request({ method: 'GET', target: '/auth/test', headers: signedWithDate(raw, keyDate) });
        assertProblem(res, 400, 'invalid-auth-params');
        assert.match(res.json.detail, /date/i);
      }
      const withTime = await gw.request({ method: 'GET', target: '/auth/test', headers: signedWithDate(`${today}T00:00:00Z`, keyDate) });
      assert.equal(withTime.status, 200, withTime.text);
    });
  });
});

describe('README "Keypair files": a new or edited file counts within milliseconds', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway({ keypairs: [ALICE] });
  });
  after(() => gw?.stop());

  /** Milliseconds until `check` holds, polling every 10 ms; fails after `withinMs`. */
  async function msUntil(check: () => Promise<boolean>, withinMs: number, what: string): Promise<number> {
    const started = performance.now();
    while (performance.now() - started < withinMs) {
      if (await check()) return performance.now() - started;
      await sleep(10);
    }
    assert.fail(`${what}: not seen within ${withinMs} ms (the 2 s rescan alone would take up to 2000 ms)`);
  }

  it('five keypair files written in turn are each usable within 400 ms, and a revocation counts as fast', async () => {
    // The safety-net rescan runs every 2 s: one change may land just before it, five in a row cannot.
    const timings: number[] = [];
    for (let i = 0; i < 5; i++) {
      const k: TestKeypair = { accessKey: `AKIAKGATEFRESH${String(i).padStart(6, '0')}`, secretKey: `freshSecret${i}`.padEnd(40, 'f') };
      assert.equal((await gw.signed({ method: 'GET', target: '/auth/test', as: k })).status, 401, 'not known before its file exists');
      writeKeypair(gw.keypairDir, k);
      timings.push(await msUntil(async () => (await gw.signed({ method: 'GET', target: '/auth/test', as: k })).status === 200, 400, `new keypair ${i}`));
      writeKeypair(gw.keypairDir, { ...k, isActive: false });
      timings.push(await msUntil(async () => (await gw.signed({ method: 'GET', target: '/auth/test', as: k })).status === 401, 400, `revoked keypair ${i}`));
      await sleep(150 + i * 170); // land at different points of the rescan cycle
    }
    assert.ok(Math.max(...timings) < 400, `timings ${timings.map((t) => t.toFixed(0)).join(', ')} ms`);
  });
});

/** JSON log lines of a spawned gateway. */
function logLines(gw: TestGateway): Array<Record<string, any>> {
  const out: Array<Record<string, any>> = [];
  for (const raw of gw.output.join('\n').split('\n')) {
    if (!raw.startsWith('{')) continue;
    try {
      out.push(JSON.parse(raw));
    } catch {
      /* not a log line */
    }
  }
  return out;
}

async function waitForLog(gw: TestGateway, pred: (line: Record<string, any>) => boolean): Promise<Record<string, any>> {
  for (let i = 0; i < 100; i++) {
    const found = logLines(gw).find(pred);
    if (found) return found;
    await sleep(20);
  }
  assert.fail(`no such log line; last lines:\n${gw.output.slice(-10).join('\n')}`);
}

describe('README "Errors": instance is the log\'s request id; a 500 says nothing about its cause', () => {
  let gw: TestGateway;
  let scratch: string;
  before(async () => {
    // models_dir below a regular file: the folder can never be created, so an upload fails inside the handler.
    scratch = mkdtempSync(join(tmpdir(), 'kg-readme-500-'));
    const blocker = join(scratch, 'not-a-folder');
    writeFileSync(blocker, 'a file where a folder should be');
    gw = await startGateway({
      keypairs: [ALICE, ADMIN],
      config: `[log]\nlevel = "info"\n[inference]\nmodels_dir = ${JSON.stringify(join(blocker, 'models'))}\n`,
    });
  });
  after(async () => {
    await gw?.stop();
    rmSync(scratch, { recursive: true, force: true });
  });

  const idOf = (res: Response) => {
    const m = /^urn:kernelgate:request:(.+)$/.exec(String(res.json?.instance));
    assert.ok(m, `instance ${res.json?.instance}`);
    return m[1];
  };

  it('each problem document\'s instance names the access-log line of its request', async () => {
    const answers = [
      await gw.request({ method: 'GET', target: '/no/such/route' }),
      await gw.request({ method: 'GET', target: '/auth/test' }),
      await gw.signed({ method: 'POST', target: '/auth/test', as: ALICE, body: '{"echo":' }),
    ];
    const ids = new Set<string>();
    for (const res of answers) {
      const id = idOf(res);
      ids.add(id);
      const line = await waitForLog(gw, (l) => l.msg === 'request' && l.reqId === id);
      assert.equal(line.status, res.status, `the log line of ${id} records the same status`);
    }
    assert.equal(ids.size, answers.length, 'one id per request');
  });

  it('an unexpected error is a 500 whose body reveals nothing; the log line with the same id has the cause', async () => {
    const { readFileSync } = await import('node:fs');
    const { ocrModelPaths } = await import('../src/inference/ocr/index.js');
    const onnx = readFileSync(ocrModelPaths().classifier).toString('base64');
    const upload = { name: 'doomed', task: 'classify', input: { width: 192, height: 48 }, normalize: { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] }, labels: ['0', '180'], model: onnx };
    const res = await gw.signed({ method: 'POST', target: '/models', as: ADMIN, body: JSON.stringify(upload) });
    assertProblem(res, 500, 'internal-server-error');
    for (const leak of ['not-a-folder', scratch, 'ENOTDIR', 'EEXIST', 'mkdir', 'Error', ' at ', '.ts:', '.js:', 'models_dir']) {
      assert.ok(!res.text.includes(leak), `the 500 body reveals ${JSON.stringify(leak)}: ${res.text}`);
    }
    assert.deepEqual(Object.keys(res.json).sort(), ['detail', 'instance', 'msg', 'status', 'title', 'type']);
    const id = idOf(res);
    const logged = await waitForLog(gw, (l) => l.reqId === id && l.msg !== 'request');
    assert.match(JSON.stringify(logged), /ENOTDIR|EEXIST|not a directory/, 'the log has the cause');
    const access = await waitForLog(gw, (l) => l.msg === 'request' && l.reqId === id);
    assert.equal(access.status, 500);
  });

  it('the problem middleware turns any non-ApiError into the same generic 500 (in-process)', async () => {
    const secretish = 'password=hunter2 at /srv/secret/path.ts:42';
    const logged: unknown[] = [];
    const log = pino({ level: 'error' }, { write: (line: string) => void logged.push(JSON.parse(line)) });
    const app = new Koa();
    app.use(async (ctx, next) => {
      ctx.state.reqId = 'test-req-1';
      await next();
    });
    app.use(problemMiddleware('https://api.backend.ai/probs/', log));
    const throwers: Array<() => never> = [
      () => {
        throw new Error(secretish);
      },
      () => {
        throw new TypeError(secretish);
      },
      () => {
        throw Object.assign(new Error(secretish), { status: 400, expose: false });
      },
      () => {
        throw secretish as unknown as Error;
      },
    ];
    let which = 0;
    app.use(() => throwers[which]());
    const server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    try {
      const port = (server.address() as { port: number }).port;
      const bodies: string[] = [];
      for (which = 0; which < throwers.length; which++) {
        const res = await rawRequest(port, { method: 'GET', target: '/' });
        assertProblem(res, 500, 'internal-server-error');
        assert.ok(!res.text.includes('hunter2') && !res.text.includes('/srv/secret'), res.text);
        assert.equal(res.json.instance, 'urn:kernelgate:request:test-req-1');
        bodies.push(res.text);
      }
      for (const b of bodies) assert.equal(b, bodies[0], 'every unexpected error reads the same');
      assert.ok(logged.length >= throwers.length, 'each was logged');
      assert.match(JSON.stringify(logged), /hunter2/, 'the log keeps the cause');
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});
