/**
 * README "Sessions" and "Idempotent retries" claims that had no test: an existing session name
 * with another model is a 400, idle expiry on Redis (lazy, plus the owner hash's TTL), DELETE with
 * Idempotency-Key replays, idempotency on PUT/PATCH/DELETE, and 5xx answers not stored.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import Koa from 'koa';
import { Redis } from 'ioredis';
import sharp from 'sharp';
import { pino } from 'pino';
import { MemoryIdempotencyStore } from '../src/idempotency/memory-store.js';
import { idempotency } from '../src/idempotency/middleware.js';
import { ocrModelPaths } from '../src/inference/ocr/index.js';
import { ApiError } from '../src/problems/api-error.js';
import { problemMiddleware } from '../src/problems/middleware.js';
import { ADMIN, ALICE, BOB, rawRequest, startGateway, type Response, type TestGateway } from './helpers/gateway.js';
import { startRedisServer, type TestRedisServer } from './helpers/redis-server.js';
import { assertProblem } from './helpers/problems.js';

const BASE = 'https://api.backend.ai/probs/';
const TEXTDIR = {
  name: 'textdir',
  task: 'classify',
  input: { width: 192, height: 48 },
  normalize: { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] },
  labels: ['0', '180'],
  model: readFileSync(ocrModelPaths().classifier).toString('base64'),
};
const IDLE_SECONDS = 2;

const header = (res: Response, name: string) => {
  const v = res.headers[name];
  return v === undefined ? undefined : String(v);
};
const names = (res: Response): string[] => res.json.sessions.map((s: { sessionName: string }) => s.sessionName);

for (const store of ['memory', 'redis'] as const) {
  describe(`README "Sessions" and idempotent DELETE (${store} store)`, () => {
    let redis: TestRedisServer | undefined;
    let inspect: Redis | undefined;
    let gw: TestGateway;
    let png: Buffer;
    before(async () => {
      redis = store === 'redis' ? await startRedisServer() : undefined;
      gw = await startGateway({
        keypairs: [ALICE, BOB, ADMIN],
        config: [
          '[server]',
          'body_limit_bytes = 4194304',
          '[ratelimit]',
          `store = "${store}"`,
          ...(redis ? [`redis_url = "${redis.url}"`, 'redis_timeout_ms = 1000'] : []),
          '[sessions]',
          `idle_timeout_seconds = ${IDLE_SECONDS}`,
        ].join('\n'),
      });
      if (redis) {
        inspect = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
        await inspect.connect();
      }
      const installed = await gw.signed({ method: 'POST', target: '/models', as: ADMIN, body: JSON.stringify(TEXTDIR) });
      assert.equal(installed.status, 201, installed.text);
      png = await sharp({ create: { width: 192, height: 48, channels: 3, background: '#ffffff' } }).png().toBuffer();
    });
    after(async () => {
      inspect?.disconnect();
      await gw?.stop();
      await redis?.stop();
    });

    const create = (name: string, image: string, headers: Record<string, string> = {}) =>
      gw.signed({ method: 'POST', target: '/session', as: ALICE, body: JSON.stringify({ name, image }), headers });
    const get = (name: string, as = ALICE) => gw.signed({ method: 'GET', target: `/session/${name}`, as });
    const list = (as = ALICE) => gw.signed({ method: 'GET', target: '/session', as });

    it('creating an existing name with another model is 400; with the same model it is that session (200)', async () => {
      const first = await create('pages', 'ocr');
      assert.equal(first.status, 201, first.text);
      const other = await create('pages', 'textdir');
      assertProblem(other, 400, 'invalid-api-params');
      assert.match(other.json.detail, /pages/);
      // Nothing changed: still the ocr session, and asking for ocr returns it.
      const got = await get('pages');
      assert.equal(got.json.image, 'ocr');
      assert.equal(got.json.sessionId, first.json.sessionId);
      const same = await create('pages', 'ocr');
      assert.equal(same.status, 200);
      assert.equal(same.json.created, false);
      // The other way round, too.
      assert.equal((await create('dirs', 'textdir')).status, 201);
      assertProblem(await create('dirs', 'ocr'), 400, 'invalid-api-params');
      assert.equal((await get('dirs')).json.image, 'textdir');
    });

    it('DELETE /session/{name} with Idempotency-Key: the retry replays the 200, the session is gone once', async () => {
      assert.equal((await create('doomed', 'ocr')).status, 201);
      const key = `del-${store}-${Date.now()}`;
      const del = () => gw.signed({ method: 'DELETE', target: '/session/doomed', as: ALICE, headers: { 'Idempotency-Key': key } });
      const first = await del();
      assert.equal(first.status, 200, first.text);
      assert.equal(first.json.deleted, true);
      assert.equal(header(first, 'idempotent-replayed'), undefined);
      const retry = await del();
      assert.equal(retry.status, 200, 'a replay, not 404: the retry did not run the handler');
      assert.equal(header(retry, 'idempotent-replayed'), 'true');
      assert.equal(retry.text, first.text);
      // Without the key the handler runs, and the session is gone.
      assertProblem(await gw.signed({ method: 'DELETE', target: '/session/doomed', as: ALICE }), 404, 'session-not-found');
      // The same key on another target is a different request.
      assertProblem(await gw.signed({ method: 'DELETE', target: '/session/pages', as: ALICE, headers: { 'Idempotency-Key': key } }), 422, 'idempotency-mismatch');
      assert.equal((await get('pages')).status, 200, 'the mismatched DELETE deleted nothing');
      if (inspect) {
        const keys = await inspect.keys('kg:idem:*');
        assert.ok(keys.length >= 1, 'the record lives in the private Redis');
        // README: tokens are hashed in Redis keys.
        assert.ok(!keys.some((k) => k.includes(key) || k.includes(ALICE.accessKey)), `a raw token or access key in a Redis key: ${keys.join(' ')}`);
      }
    });

    it('idle sessions expire after idle_timeout_seconds; the name is free again; an inference restarts the timer', async () => {
      const t0 = Date.now();
      assert.equal((await gw.signed({ method: 'POST', target: '/session', as: BOB, body: JSON.stringify({ name: 'idle', image: 'textdir' }) })).status, 201);
      assert.equal((await gw.signed({ method: 'POST', target: '/session', as: BOB, body: JSON.stringify({ name: 'used', image: 'textdir' }) })).status, 201);
      if (inspect) {
        // Per owner: an index (name -> last use) the scripts read, and the records they never decode.
        assert.notEqual(await inspect.zscore(`kg:sess:{${BOB.accessKey}}:idx`, 'idle'), null, 'the session is indexed in the private Redis');
        assert.equal(await inspect.hexists(`kg:sess:{${BOB.accessKey}}:rec`, 'idle'), 1, 'the session record lives in the private Redis');
        for (const part of ['idx', 'rec']) {
          const pttl = await inspect.pttl(`kg:sess:{${BOB.accessKey}}:${part}`);
          assert.ok(pttl > 0 && pttl <= IDLE_SECONDS * 1000, `the owner's ${part} expires with the idle timeout (PTTL ${pttl})`);
        }
      }
      await sleep(1_000);
      assert.equal((await get('idle', BOB)).status, 200, 'still alive half-way (and GET does not keep it alive)');
      const used = await gw.signed({ method: 'POST', target: '/session/used/infer', as: BOB, body: png, contentType: 'image/png' });
      assert.equal(used.status, 200, used.text);
      const usedAt = Date.now();
      await sleep(Math.max(0, t0 + IDLE_SECONDS * 1000 + 400 - Date.now()));
      assert.ok(Date.now() - usedAt < IDLE_SECONDS * 1000 - 200, 'checked while the used session should still be alive');
      const listed = names(await list(BOB));
      assert.ok(!listed.includes('idle'), `idle session still listed ${Date.now() - t0} ms after creation`);
      assert.ok(listed.includes('used'), `the inference did not restart the timer: ${listed}`);
      assertProblem(await get('idle', BOB), 404, 'session-not-found');
      const again = await gw.signed({ method: 'POST', target: '/session', as: BOB, body: JSON.stringify({ name: 'idle', image: 'ocr' }) });
      assert.equal(again.status, 201, 'the expired name is free again, even for another model');
      assert.equal(again.json.created, true);
      // Once nothing is used, the whole owner goes: from the answers, and on Redis from the store itself.
      await sleep(IDLE_SECONDS * 1000 + 400);
      assert.deepEqual(names(await list(BOB)), []);
      if (inspect) assert.equal(await inspect.exists(`kg:sess:{${BOB.accessKey}}:idx`, `kg:sess:{${BOB.accessKey}}:rec`), 0, 'the owner keys expired in Redis');
    });
  });
}

describe('README "Idempotent retries" on the middleware itself: PUT/PATCH/DELETE, and 5xx not stored', () => {
  let server: ReturnType<Koa['listen']>;
  let port: number;
  let runs = 0;
  /** What the handler does next: a status to answer, or an error to throw. */
  const plan: Array<number | Error> = [];

  before(async () => {
    const app = new Koa();
    app.use(problemMiddleware(BASE, pino({ level: 'silent' })));
    app.use(async (ctx, next) => {
      const chunks: Buffer[] = [];
      for await (const c of ctx.req) chunks.push(c as Buffer);
      ctx.state.reqId = 'r';
      ctx.state.rawBody = Buffer.concat(chunks);
      ctx.state.auth = { keypair: { accessKey: ALICE.accessKey } };
      await next();
    });
    app.use(idempotency(new MemoryIdempotencyStore(), 60, BASE));
    app.use((ctx) => {
      runs++;
      const next = plan.shift() ?? 200;
      if (next instanceof Error) throw next;
      ctx.status = next;
      ctx.body = { run: runs, method: ctx.method };
    });
    server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    port = (server.address() as { port: number }).port;
  });
  after(() => new Promise((r) => server.close(r)));

  const send = (method: string, key: string | undefined, body = '{"v":1}', target = '/thing/1') =>
    rawRequest(port, { method, target, body, headers: { 'Content-Type': 'application/json', ...(key ? { 'Idempotency-Key': key } : {}) } });

  for (const method of ['PUT', 'PATCH', 'DELETE', 'POST']) {
    it(`${method}: runs once per key, a retry replays, another body is 422`, async () => {
      const key = `k-${method}`;
      const before = runs;
      const first = await send(method, key);
      assert.equal(first.status, 200, first.text);
      assert.equal(first.json.method, method);
      const retry = await send(method, key);
      assert.equal(retry.headers['idempotent-replayed'], 'true');
      assert.equal(retry.text, first.text);
      assert.equal(runs, before + 1, 'the handler ran once');
      assertProblem(await send(method, key, '{"v":2}'), 422, 'idempotency-mismatch');
      assert.equal(runs, before + 1);
    });
  }

  it('GET with a key runs every time (safe methods are not recorded)', async () => {
    const before = runs;
    const a = await send('GET', 'k-get', '');
    const b = await send('GET', 'k-get', '');
    assert.equal(runs, before + 2);
    assert.equal(a.headers['idempotent-replayed'], undefined);
    assert.equal(b.headers['idempotent-replayed'], undefined);
  });

  it('5xx answers are not stored: the retry runs again; the first non-5xx answer is the one replayed', async () => {
    const cases: Array<[string, number | Error]> = [
      ['a handler answering 503', 503],
      ['a thrown 503 ApiError', new ApiError(503, 'service-unavailable', 'busy', { headers: { 'Retry-After': '1' } })],
      ['a thrown 504 ApiError', new ApiError(504, 'gateway-timeout', 'too slow')],
      ['an unexpected error (500)', new Error('boom')],
    ];
    for (const [i, [label, failure]] of cases.entries()) {
      const key = `k-5xx-${i}`;
      const before = runs;
      plan.push(failure, failure);
      const first = await send('PUT', key);
      assert.ok(first.status >= 500, `${label}: ${first.status}`);
      const second = await send('PUT', key);
      assert.ok(second.status >= 500, label);
      assert.equal(second.headers['idempotent-replayed'], undefined, `${label}: a 5xx was replayed`);
      assert.equal(runs, before + 2, `${label}: the retry ran the handler again`);
      const third = await send('PUT', key);
      assert.equal(third.status, 200, `${label}: ${third.text}`);
      assert.equal(third.headers['idempotent-replayed'], undefined);
      const fourth = await send('PUT', key);
      assert.equal(fourth.headers['idempotent-replayed'], 'true', `${label}: the 200 is stored`);
      assert.equal(fourth.text, third.text);
      assert.equal(runs, before + 3);
    }
    // A 4xx is a result and is stored.
    plan.push(409);
    const conflict = await send('PATCH', 'k-4xx');
    assert.equal(conflict.status, 409);
    const replay = await send('PATCH', 'k-4xx');
    assert.equal(replay.status, 409);
    assert.equal(replay.headers['idempotent-replayed'], 'true');
  });
});
