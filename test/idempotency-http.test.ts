/**
 * Idempotent retries as a client sees them, on spawned gateway processes:
 * `Idempotency-Key` / `X-BackendAI-Client-Token` on signed unsafe requests, on
 * the memory store and on a private Redis shared by two replicas (replay on the
 * other replica, concurrent duplicates across both). The shared Redis on 6379
 * is never touched.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { ALICE, BOB, startGateway, type Response, type TestGateway } from './helpers/gateway.js';
import { startRedisServer, type TestRedisServer } from './helpers/redis-server.js';
import { assertProblem } from './helpers/problems.js';

const BASE = 'https://api.backend.ai/probs/';

const header = (res: Response, name: string): string | undefined => {
  const v = res.headers[name];
  return v === undefined ? undefined : Array.isArray(v) ? v.join(', ') : String(v);
};
const replayed = (res: Response) => header(res, 'idempotent-replayed') === 'true';


/** The retry repeats the first answer byte for byte and says so. */
function assertReplayOf(retry: Response, first: Response): void {
  assert.equal(retry.status, first.status, retry.text);
  assert.equal(header(retry, 'idempotent-replayed'), 'true', 'a replay is marked Idempotent-Replayed: true');
  assert.equal(retry.text, first.text, 'same body');
  assert.equal(header(retry, 'content-type'), header(first, 'content-type'));
  // Rate-limit headers belong to the retry itself, which is charged like any request.
  assert.ok(header(retry, 'x-ratelimit-remaining') !== undefined, 'a replay still carries X-RateLimit-*');
}

let seq = 0;
/** A token / session name nobody has used in this run. */
const fresh = (label: string) => `${label}-${process.pid}-${Date.now().toString(36)}-${++seq}`;

const postSession = (gw: TestGateway, name: string, headers: Record<string, string>, as = ALICE) =>
  gw.signed({ method: 'POST', target: '/session', as, body: JSON.stringify({ name, image: 'ocr' }), headers });

async function sessionsNamed(gw: TestGateway, name: string, as = ALICE): Promise<unknown[]> {
  const res = await gw.signed({ method: 'GET', target: '/session', as });
  assert.equal(res.status, 200, res.text);
  return (res.json.sessions as Array<{ sessionName: string }>).filter((s) => s.sessionName === name);
}

let redis: TestRedisServer;
let memoryGw: TestGateway;
let replicaA: TestGateway;
let replicaB: TestGateway;

before(async () => {
  redis = await startRedisServer();
  const redisConfig = `[ratelimit]\nstore = "redis"\nredis_url = "${redis.url}"\n`;
  [memoryGw, replicaA] = await Promise.all([startGateway({ config: '[ratelimit]\nstore = "memory"\n' }), startGateway({ config: redisConfig })]);
  replicaB = await startGateway({ config: redisConfig, keypairs: [], keypairDir: replicaA.keypairDir });
});
after(async () => {
  await Promise.all([memoryGw, replicaA, replicaB].map((g) => g?.stop()));
  await redis?.stop();
});

for (const store of ['memory', 'redis'] as const) {
  describe(`idempotency over HTTP, ${store} store`, () => {
    const gw = () => (store === 'memory' ? memoryGw : replicaA);

    it('POST /auth/test with Idempotency-Key: runs once, a same retry replays, a different body is 422', async () => {
      const key = fresh('k1');
      const body = JSON.stringify({ echo: 'first' });
      const first = await gw().signed({ method: 'POST', target: '/auth/test', as: ALICE, body, headers: { 'Idempotency-Key': key } });
      assert.equal(first.status, 200, first.text);
      assert.deepEqual(first.json, { authorized: 'yes', echo: 'first' });
      assert.equal(header(first, 'idempotent-replayed'), undefined, 'the first run is not a replay');

      const retry = await gw().signed({ method: 'POST', target: '/auth/test', as: ALICE, body, headers: { 'Idempotency-Key': key } });
      assertReplayOf(retry, first);
      assert.ok(Number(header(retry, 'x-ratelimit-remaining')) < Number(header(first, 'x-ratelimit-remaining')), 'the retry is charged');

      const other = await gw().signed({ method: 'POST', target: '/auth/test', as: ALICE, body: JSON.stringify({ echo: 'second' }), headers: { 'Idempotency-Key': key } });
      assertProblem(other, 422, 'idempotency-mismatch');
      assert.ok(!replayed(other));
      // Another route with the same key is a different request too.
      assertProblem(await postSession(gw(), fresh('s'), { 'Idempotency-Key': key }), 422, 'idempotency-mismatch');
      // The mismatch did not overwrite the record: the original still replays.
      assertReplayOf(await gw().signed({ method: 'POST', target: '/auth/test', as: ALICE, body, headers: { 'Idempotency-Key': key } }), first);
    });

    it('X-BackendAI-Client-Token works the same way', async () => {
      const token = fresh('ct');
      const body = JSON.stringify({ echo: 'token' });
      const first = await gw().signed({ method: 'POST', target: '/auth/test', as: ALICE, body, headers: { 'X-BackendAI-Client-Token': token } });
      assert.equal(first.status, 200, first.text);
      assert.ok(!replayed(first));
      assertReplayOf(await gw().signed({ method: 'POST', target: '/auth/test', as: ALICE, body, headers: { 'X-BackendAI-Client-Token': token } }), first);
      assertProblem(
        await gw().signed({ method: 'POST', target: '/auth/test', as: ALICE, body: JSON.stringify({ echo: 'else' }), headers: { 'X-BackendAI-Client-Token': token } }),
        422,
        'idempotency-mismatch',
      );
    });

    it("keys are per access key: BOB using ALICE's key string executes normally", async () => {
      const key = fresh('shared');
      const a = await gw().signed({ method: 'POST', target: '/auth/test', as: ALICE, body: JSON.stringify({ echo: 'alice' }), headers: { 'Idempotency-Key': key } });
      assert.equal(a.status, 200);
      const b = await gw().signed({ method: 'POST', target: '/auth/test', as: BOB, body: JSON.stringify({ echo: 'bob' }), headers: { 'Idempotency-Key': key } });
      assert.equal(b.status, 200, b.text);
      assert.ok(!replayed(b), 'not a replay of ALICE');
      assert.deepEqual(b.json, { authorized: 'yes', echo: 'bob' });
      // Even the identical request from BOB runs for BOB rather than replaying ALICE's answer.
      const same = await gw().signed({ method: 'POST', target: '/auth/test', as: BOB, body: JSON.stringify({ echo: 'alice' }), headers: { 'Idempotency-Key': fresh('x') } });
      assert.ok(!replayed(same));
      const bSame = await gw().signed({ method: 'POST', target: '/auth/test', as: BOB, body: JSON.stringify({ echo: 'alice' }), headers: { 'Idempotency-Key': key } });
      assertProblem(bSame, 422, 'idempotency-mismatch'); // BOB's own record for the key holds {"echo":"bob"}
    });

    it('POST /session: the retry creates no second session and replays the 201 created:true', async () => {
      const name = fresh('s');
      const key = fresh('sk');
      const first = await postSession(gw(), name, { 'Idempotency-Key': key });
      assert.equal(first.status, 201, first.text);
      assert.equal(first.json.created, true);
      assert.ok(!replayed(first));

      const retry = await postSession(gw(), name, { 'Idempotency-Key': key });
      assertReplayOf(retry, first);
      assert.equal(retry.json.created, true);
      assert.equal(retry.json.sessionId, first.json.sessionId);
      assert.equal((await sessionsNamed(gw(), name)).length, 1);

      // Without the key the handler runs and says the session already exists: the replay above came from the store.
      const plain = await postSession(gw(), name, {});
      assert.equal(plain.status, 200, plain.text);
      assert.equal(plain.json.created, false);
      assert.equal(plain.json.sessionId, first.json.sessionId);
    });

    it('replays an error answer too (4xx is a result), and ignores keys on safe methods', async () => {
      const key = fresh('err');
      const body = JSON.stringify({ name: fresh('s'), image: 'no-such-model' });
      const first = await gw().signed({ method: 'POST', target: '/session', as: ALICE, body, headers: { 'Idempotency-Key': key } });
      assertProblem(first, 404, 'model-not-found');
      const retry = await gw().signed({ method: 'POST', target: '/session', as: ALICE, body, headers: { 'Idempotency-Key': key } });
      assertReplayOf(retry, first);
      assertProblem(retry, 404, 'model-not-found');

      const get1 = await gw().signed({ method: 'GET', target: '/auth/test?echo=a', as: ALICE, headers: { 'Idempotency-Key': key } });
      const get2 = await gw().signed({ method: 'GET', target: '/auth/test?echo=b', as: ALICE, headers: { 'Idempotency-Key': key } });
      assert.equal(get1.json.echo, 'a');
      assert.equal(get2.json.echo, 'b');
      assert.ok(!replayed(get1) && !replayed(get2));

      const tooLong = await gw().signed({ method: 'POST', target: '/auth/test', as: ALICE, body: '{}', headers: { 'Idempotency-Key': 'x'.repeat(256) } });
      assertProblem(tooLong, 400, 'invalid-api-params');
    });

    it('concurrent duplicates on one gateway: exactly one runs, never two sessions', async () => {
      const name = fresh('c');
      const key = fresh('ck');
      const all = await Promise.all(Array.from({ length: 10 }, () => postSession(gw(), name, { 'Idempotency-Key': key })));
      assertOneExecution(all);
      assert.equal((await sessionsNamed(gw(), name)).length, 1);
    });
  });
}

/** Of identical concurrent requests: one 201 that ran, the rest 409 idempotency-conflict or its replay. */
function assertOneExecution(all: Response[]): void {
  const ran = all.filter((r) => !replayed(r) && r.status !== 409);
  assert.equal(ran.length, 1, `exactly one execution; got ${all.map((r) => `${r.status}${replayed(r) ? 'R' : ''}`).join(' ')}`);
  const [winner] = ran;
  assert.equal(winner.status, 201, winner.text);
  assert.equal(winner.json.created, true);
  for (const r of all) {
    if (r === winner) continue;
    if (r.status === 409) {
      assertProblem(r, 409, 'idempotency-conflict');
      assert.match(String(header(r, 'retry-after')), /^\d+$/);
    } else {
      assertReplayOf(r, winner);
    }
  }
}

describe('idempotency over HTTP: two replicas on one Redis', () => {
  it('first on replica A, replay on replica B', async () => {
    const key = fresh('x');
    const body = JSON.stringify({ echo: 'across' });
    const first = await replicaA.signed({ method: 'POST', target: '/auth/test', as: ALICE, body, headers: { 'Idempotency-Key': key } });
    assert.equal(first.status, 200);
    assertReplayOf(await replicaB.signed({ method: 'POST', target: '/auth/test', as: ALICE, body, headers: { 'Idempotency-Key': key } }), first);
    assertProblem(
      await replicaB.signed({ method: 'POST', target: '/auth/test', as: ALICE, body: '{"echo":"other"}', headers: { 'Idempotency-Key': key } }),
      422,
      'idempotency-mismatch',
    );

    const name = fresh('xs');
    const token = fresh('xt');
    const created = await postSession(replicaA, name, { 'X-BackendAI-Client-Token': token });
    assert.equal(created.status, 201, created.text);
    const again = await postSession(replicaB, name, { 'X-BackendAI-Client-Token': token });
    assertReplayOf(again, created);
    assert.equal(again.json.created, true);
    assert.equal((await sessionsNamed(replicaB, name)).length, 1);
  });

  it('10 identical POST /session at once across both replicas: one runs, never two sessions', async (t) => {
    for (let round = 0; round < 3; round++) {
      const name = fresh('cc');
      const key = fresh('cck');
      const all = await Promise.all(Array.from({ length: 10 }, (_, i) => postSession(i % 2 ? replicaB : replicaA, name, { 'Idempotency-Key': key })));
      assertOneExecution(all);
      assert.equal(all.filter((r) => r.status === 200).length, 0, 'no request ran the handler a second time (200 created:false)');
      assert.equal((await sessionsNamed(replicaA, name)).length, 1);
      t.diagnostic(`round ${round + 1}: ${all.map((r) => `${r.status}${replayed(r) ? 'R' : ''}`).join(' ')}`);
      // Once the first has finished every retry, on either replica, is its replay.
      const winner = all.find((r) => r.status === 201 && !replayed(r))!;
      assertReplayOf(await postSession(replicaB, name, { 'Idempotency-Key': key }), winner);
      assertReplayOf(await postSession(replicaA, name, { 'Idempotency-Key': key }), winner);
    }
  });
});

describe('idempotency over HTTP: [idempotency] ttl_seconds', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway({ config: '[idempotency]\nttl_seconds = 1\n' });
  });
  after(() => gw?.stop());

  it('forgets a key after ttl_seconds: the same request runs again', async () => {
    const key = fresh('ttl');
    const body = JSON.stringify({ echo: 'ttl' });
    const first = await gw.signed({ method: 'POST', target: '/auth/test', as: ALICE, body, headers: { 'Idempotency-Key': key } });
    assertReplayOf(await gw.signed({ method: 'POST', target: '/auth/test', as: ALICE, body, headers: { 'Idempotency-Key': key } }), first);
    await sleep(1_200);
    const later = await gw.signed({ method: 'POST', target: '/auth/test', as: ALICE, body: JSON.stringify({ echo: 'new' }), headers: { 'Idempotency-Key': key } });
    assert.equal(later.status, 200, later.text);
    assert.ok(!replayed(later));
    assert.equal(later.json.echo, 'new');
  });
});
