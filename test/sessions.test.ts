/**
 * Compute sessions over HTTP on spawned gateway processes: create/list/get/delete, owner_access_key
 * scoping on every session route, max_sessions, idle expiry, and two replicas sharing one Redis.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  ADMIN,
  ALICE,
  BOB,
  OTHER_ADMIN,
  OTHER_DOMAIN_USER,
  ROOT,
  startGateway,
  type Response,
  type TestGateway,
  type TestKeypair,
} from './helpers/gateway.js';
import { startRedisServer, type TestRedisServer } from './helpers/redis-server.js';
import { renderText } from './helpers/render-text.js';
import { assertProblem } from './helpers/problems.js';

const BASE = 'https://api.backend.ai/probs/';
const UNKNOWN_KEY = 'AKIAKGATEUNKNOWN0099'; // well-formed, no such keypair
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const QUOTA: TestKeypair = {
  accessKey: 'AKIAKGATEQUOTA000007',
  secretKey: 'quotaSecretKey00000000000000000000000Q7',
  role: 'user',
  user: 'quota@example.com',
  maxSessions: 2,
};
const INACTIVE: TestKeypair = {
  accessKey: 'AKIAKGATEGONE0000008',
  secretKey: 'goneSecretKey000000000000000000000000G8',
  role: 'user',
  user: 'gone@example.com',
  isActive: false,
};
const ALL = [ALICE, BOB, ADMIN, ROOT, OTHER_DOMAIN_USER, OTHER_ADMIN, QUOTA, INACTIVE];


const q = (owner?: string) => (owner === undefined ? '' : `?owner_access_key=${encodeURIComponent(owner)}`);

function api(gw: TestGateway) {
  return {
    create: (as: TestKeypair, body: Record<string, unknown>, owner?: string) =>
      gw.signed({ method: 'POST', target: `/session${q(owner)}`, as, body: JSON.stringify(body) }),
    list: (as: TestKeypair, owner?: string) => gw.signed({ method: 'GET', target: `/session${q(owner)}`, as }),
    get: (as: TestKeypair, name: string, owner?: string) => gw.signed({ method: 'GET', target: `/session/${encodeURIComponent(name)}${q(owner)}`, as }),
    del: (as: TestKeypair, name: string, owner?: string) => gw.signed({ method: 'DELETE', target: `/session/${encodeURIComponent(name)}${q(owner)}`, as }),
    /** An empty image/png body: a request that passed scoping and found its session ends in 400 invalid-image. */
    inferEmpty: (as: TestKeypair, name: string, owner?: string) =>
      gw.signed({ method: 'POST', target: `/session/${encodeURIComponent(name)}/infer${q(owner)}`, as, body: Buffer.alloc(0), contentType: 'image/png' }),
    /** JSON body carrying owner_access_key and an (invalid, empty) image. */
    inferJsonOwner: (as: TestKeypair, name: string, owner: string) =>
      gw.signed({ method: 'POST', target: `/session/${encodeURIComponent(name)}/infer`, as, body: JSON.stringify({ image: '', owner_access_key: owner }) }),
  };
}

const names = (res: Response): string[] => res.json.sessions.map((s: { sessionName: string }) => s.sessionName);

describe('sessions: one gateway, memory store', () => {
  let gw: TestGateway;
  let s: ReturnType<typeof api>;
  before(async () => {
    gw = await startGateway({ config: '[log]\nlevel = "info"\n', keypairs: ALL });
    s = api(gw);
  });
  after(() => gw.stop());

  it('creates a session (201), returns the same one again (200), names are unique per owner', async () => {
    const first = await s.create(ALICE, { name: 'ocr-1', image: 'ocr' });
    assert.equal(first.status, 201, first.text);
    assert.equal(first.json.created, true);
    assert.equal(first.json.sessionName, 'ocr-1');
    assert.equal(typeof first.json.sessionId, 'string');
    assert.ok(first.json.sessionId.length > 0);
    assert.equal(first.json.status, 'RUNNING');
    assert.equal(first.json.owner_access_key, ALICE.accessKey);

    const again = await s.create(ALICE, { name: 'ocr-1', image: 'ocr' });
    assert.equal(again.status, 200, again.text);
    assert.equal(again.json.created, false);
    assert.equal(again.json.sessionId, first.json.sessionId);

    const bobs = await s.create(BOB, { name: 'ocr-1', image: 'ocr' });
    assert.equal(bobs.status, 201, bobs.text);
    assert.equal(bobs.json.created, true);
    assert.notEqual(bobs.json.sessionId, first.json.sessionId);
    assert.equal(bobs.json.owner_access_key, BOB.accessKey);
  });

  it('refuses bad create requests with problem documents', async () => {
    for (const name of ['', '-lead', 'has space', 'a/b', 'x'.repeat(65), 'ünï']) {
      assertProblem(await s.create(ALICE, { name, image: 'ocr' }), 400, 'invalid-api-params');
    }
    assertProblem(await s.create(ALICE, { name: 42, image: 'ocr' }), 400, 'invalid-api-params');
    assertProblem(await s.create(ALICE, { name: 'no-image' }), 400, 'invalid-api-params');
    assertProblem(await s.create(ALICE, { image: 'ocr' }), 400, 'invalid-api-params');
    assertProblem(await s.create(ALICE, { name: 'bad-model', image: 'no-such-model' }), 404, 'model-not-found');
    assertProblem(await gw.signed({ method: 'POST', target: '/session', as: ALICE, body: '{"name": "x", ' }), 400, 'invalid-api-params');
    assertProblem(await gw.signed({ method: 'POST', target: '/session', as: ALICE, body: '["x"]' }), 400, 'invalid-api-params');
    assertProblem(await gw.signed({ method: 'POST', target: '/session', as: ALICE, body: 'name=x&image=ocr', contentType: 'text/plain' }), 400, 'invalid-api-params');
    assertProblem(await gw.signed({ method: 'POST', target: '/session', as: ALICE }), 400, 'invalid-api-params');
    // None of those created anything.
    const list = await s.list(ALICE);
    assert.ok(!names(list).includes('bad-model') && !names(list).includes('no-image'));
  });

  it('lists only the owner’s sessions, gets one, deletes it, then 404', async () => {
    assert.equal((await s.create(ALICE, { name: 'listed-a', image: 'ocr' })).status, 201);
    assert.equal((await s.create(BOB, { name: 'listed-b', image: 'ocr' })).status, 201);
    const alice = await s.list(ALICE);
    assert.equal(alice.status, 200, alice.text);
    assert.ok(names(alice).includes('listed-a'));
    assert.ok(!names(alice).includes('listed-b'));
    for (const sess of alice.json.sessions) assert.equal(sess.owner_access_key, ALICE.accessKey);
    const bob = await s.list(BOB);
    assert.ok(names(bob).includes('listed-b'));
    assert.ok(!names(bob).includes('listed-a'));

    const one = await s.get(ALICE, 'listed-a');
    assert.equal(one.status, 200, one.text);
    assert.equal(one.json.sessionName, 'listed-a');
    assert.equal(one.json.image, 'ocr');

    const del = await s.del(ALICE, 'listed-a');
    assert.equal(del.status, 200, del.text);
    assertProblem(await s.get(ALICE, 'listed-a'), 404, 'session-not-found');
    assertProblem(await s.del(ALICE, 'listed-a'), 404, 'session-not-found');
    assert.ok(!names(await s.list(ALICE)).includes('listed-a'));
    // Deleting Alice's did nothing to Bob's.
    assert.equal((await s.get(BOB, 'listed-b')).status, 200);
  });

  it("another owner's session is 404 (never 403) without owner_access_key", async () => {
    assert.equal((await s.create(ALICE, { name: 'private-a', image: 'ocr' })).status, 201);
    assertProblem(await s.get(BOB, 'private-a'), 404, 'session-not-found');
    assertProblem(await s.del(BOB, 'private-a'), 404, 'session-not-found');
    assertProblem(await s.inferEmpty(BOB, 'private-a'), 404, 'session-not-found');
    assertProblem(await s.get(ADMIN, 'private-a'), 404, 'session-not-found');
    assertProblem(await s.get(ROOT, 'private-a'), 404, 'session-not-found');
    // Still there for Alice, and her own infer passes scoping (the empty image is what is refused).
    assert.equal((await s.get(ALICE, 'private-a')).status, 200);
    assertProblem(await s.inferEmpty(ALICE, 'private-a'), 400, 'invalid-image');
  });

  it('a user may name itself on every route (query and body)', async () => {
    const me = ALICE.accessKey;
    assert.equal((await s.create(ALICE, { name: 'self-q', image: 'ocr' }, me)).status, 201);
    assert.equal((await s.create(ALICE, { name: 'self-b', image: 'ocr', owner_access_key: me })).status, 201);
    assert.equal((await s.create(ALICE, { name: 'self-qb', image: 'ocr', owner_access_key: me }, me)).status, 201);
    assert.ok(names(await s.list(ALICE, me)).includes('self-q'));
    assert.equal((await s.get(ALICE, 'self-q', me)).status, 200);
    assertProblem(await s.inferEmpty(ALICE, 'self-q', me), 400, 'invalid-image');
    assertProblem(await s.inferJsonOwner(ALICE, 'self-q', me), 400, 'invalid-image');
    assert.equal((await s.del(ALICE, 'self-q', me)).status, 200);
  });

  it('a user naming another keypair gets 403 on every route, whether or not the key exists', async () => {
    assert.equal((await s.create(BOB, { name: 'bobs', image: 'ocr' })).status, 201);
    for (const other of [BOB.accessKey, ADMIN.accessKey, OTHER_DOMAIN_USER.accessKey, UNKNOWN_KEY, INACTIVE.accessKey]) {
      assertProblem(await s.create(ALICE, { name: 'stolen', image: 'ocr' }, other), 403, 'generic-forbidden');
      assertProblem(await s.create(ALICE, { name: 'stolen', image: 'ocr', owner_access_key: other }), 403, 'generic-forbidden');
      assertProblem(await s.list(ALICE, other), 403, 'generic-forbidden');
      assertProblem(await s.get(ALICE, 'bobs', other), 403, 'generic-forbidden');
      assertProblem(await s.del(ALICE, 'bobs', other), 403, 'generic-forbidden');
      assertProblem(await s.inferEmpty(ALICE, 'bobs', other), 403, 'generic-forbidden');
      assertProblem(await s.inferJsonOwner(ALICE, 'bobs', other), 403, 'generic-forbidden');
    }
    // An admin is just another keypair to a user.
    assertProblem(await s.list(OTHER_DOMAIN_USER, ALICE.accessKey), 403, 'generic-forbidden');
    assert.ok(!names(await s.list(BOB)).includes('stolen'));
    assert.equal((await s.get(BOB, 'bobs')).status, 200, 'the forbidden DELETE did not delete');
  });

  it('query and body owner_access_key must agree', async () => {
    assertProblem(await s.create(ADMIN, { name: 'mixed', image: 'ocr', owner_access_key: ALICE.accessKey }, BOB.accessKey), 400, 'invalid-api-params');
  });

  it('an admin may act for a user of its own domain on every route; the user owns the session', async () => {
    const a = ALICE.accessKey;
    const viaQuery = await s.create(ADMIN, { name: 'by-admin', image: 'ocr' }, a);
    assert.equal(viaQuery.status, 201, viaQuery.text);
    assert.equal(viaQuery.json.owner_access_key, a);
    const viaBody = await s.create(ADMIN, { name: 'by-admin-body', image: 'ocr', owner_access_key: a });
    assert.equal(viaBody.status, 201, viaBody.text);
    assert.equal(viaBody.json.owner_access_key, a);

    // The user sees both in its own list; the admin's own list does not have them.
    const aliceList = names(await s.list(ALICE));
    assert.ok(aliceList.includes('by-admin') && aliceList.includes('by-admin-body'), aliceList.join());
    const adminOwn = names(await s.list(ADMIN));
    assert.ok(!adminOwn.includes('by-admin'));
    assert.ok(names(await s.list(ADMIN, a)).includes('by-admin'));

    assert.equal((await s.get(ADMIN, 'by-admin', a)).status, 200);
    assertProblem(await s.get(ADMIN, 'by-admin'), 404, 'session-not-found');
    assertProblem(await s.inferEmpty(ADMIN, 'by-admin', a), 400, 'invalid-image');
    assertProblem(await s.inferJsonOwner(ADMIN, 'by-admin', a), 400, 'invalid-image');
    // Same name again on behalf of the user: the user's existing session.
    const again = await s.create(ADMIN, { name: 'by-admin', image: 'ocr' }, a);
    assert.equal(again.status, 200);
    assert.equal(again.json.sessionId, viaQuery.json.sessionId);
    assert.equal((await s.del(ADMIN, 'by-admin', a)).status, 200);
    assertProblem(await s.get(ALICE, 'by-admin'), 404, 'session-not-found');
  });

  it("the log records both the requester and the acting owner of an admin's on-behalf request", async () => {
    const res = await s.create(ADMIN, { name: 'logged', image: 'ocr' }, BOB.accessKey);
    assert.equal(res.status, 201, res.text);
    let line: Record<string, unknown> | undefined;
    for (let i = 0; i < 50 && !line; i++) {
      for (const raw of gw.output) {
        if (!raw.startsWith('{')) continue;
        let rec: Record<string, unknown>;
        try {
          rec = JSON.parse(raw);
        } catch {
          continue;
        }
        if (rec.method === 'POST' && rec.status === 201 && rec.accessKey === ADMIN.accessKey && rec.owner === BOB.accessKey) line = rec;
      }
      if (!line) await sleep(20);
    }
    assert.ok(line, `no request log line with accessKey=${ADMIN.accessKey} and owner=${BOB.accessKey}:\n${gw.output.slice(-10).join('\n')}`);
    // Secrets never reach the log.
    for (const raw of gw.output) {
      for (const k of ALL) assert.ok(!raw.includes(k.secretKey), 'a secret key appeared in the log');
    }
  });

  it('an admin may not act for another domain, for a superadmin or for unknown keys (one 403 for all)', async () => {
    assert.equal((await s.create(OTHER_DOMAIN_USER, { name: 'carols', image: 'ocr' })).status, 201);
    const carol = OTHER_DOMAIN_USER.accessKey;
    assertProblem(await s.create(ADMIN, { name: 'x', image: 'ocr' }, carol), 403, 'generic-forbidden');
    assertProblem(await s.create(ADMIN, { name: 'x', image: 'ocr', owner_access_key: carol }), 403, 'generic-forbidden');
    assertProblem(await s.list(ADMIN, carol), 403, 'generic-forbidden');
    assertProblem(await s.get(ADMIN, 'carols', carol), 403, 'generic-forbidden');
    assertProblem(await s.del(ADMIN, 'carols', carol), 403, 'generic-forbidden');
    assertProblem(await s.inferEmpty(ADMIN, 'carols', carol), 403, 'generic-forbidden');
    assertProblem(await s.inferJsonOwner(ADMIN, 'carols', carol), 403, 'generic-forbidden');
    // ...and the other domain's admin may not act for our users either.
    assertProblem(await s.list(OTHER_ADMIN, ALICE.accessKey), 403, 'generic-forbidden');
    // Superadmin: not even from the same domain.
    assertProblem(await s.create(ADMIN, { name: 'x', image: 'ocr' }, ROOT.accessKey), 403, 'generic-forbidden');
    assertProblem(await s.list(ADMIN, ROOT.accessKey), 403, 'generic-forbidden');
    // An admin gets the same 403 for a key that does not exist (so it learns nothing about other
    // domains' keys); inactive keys of its own domain, and anything unknown to a superadmin: 400.
    const forbidden = await s.list(ADMIN, UNKNOWN_KEY);
    assertProblem(forbidden, 403, 'generic-forbidden');
    assert.equal(forbidden.json.detail, (await s.list(ADMIN, carol)).json.detail, 'unknown and other-domain keys get one answer');
    assert.equal(forbidden.json.detail, (await s.list(ADMIN, ROOT.accessKey)).json.detail, 'unknown keys and superadmins get one answer');
    assert.match(forbidden.json.detail, /own domain.*not superadmins/);
    assertProblem(await s.create(ADMIN, { name: 'x', image: 'ocr', owner_access_key: UNKNOWN_KEY }), 403, 'generic-forbidden');
    assertProblem(await s.list(ADMIN, INACTIVE.accessKey), 400, 'invalid-api-params');
    for (const who of [ROOT]) {
      assertProblem(await s.create(who, { name: 'x', image: 'ocr' }, UNKNOWN_KEY), 400, 'invalid-api-params');
      assertProblem(await s.create(who, { name: 'x', image: 'ocr', owner_access_key: UNKNOWN_KEY }), 400, 'invalid-api-params');
      assertProblem(await s.list(who, UNKNOWN_KEY), 400, 'invalid-api-params');
      assertProblem(await s.get(who, 'x', UNKNOWN_KEY), 400, 'invalid-api-params');
      assertProblem(await s.del(who, 'x', UNKNOWN_KEY), 400, 'invalid-api-params');
      assertProblem(await s.inferEmpty(who, 'x', UNKNOWN_KEY), 400, 'invalid-api-params');
      assertProblem(await s.list(who, INACTIVE.accessKey), 400, 'invalid-api-params');
    }
    assert.equal((await s.get(OTHER_DOMAIN_USER, 'carols')).status, 200, 'nothing was deleted');
  });

  it('a superadmin may act for anyone, on every route', async () => {
    const carol = OTHER_DOMAIN_USER.accessKey;
    for (const target of [carol, ADMIN.accessKey, OTHER_ADMIN.accessKey, ALICE.accessKey]) {
      const created = await s.create(ROOT, { name: 'by-root', image: 'ocr' }, target);
      assert.equal(created.status, 201, created.text);
      assert.equal(created.json.owner_access_key, target);
      assert.ok(names(await s.list(ROOT, target)).includes('by-root'));
      assert.equal((await s.get(ROOT, 'by-root', target)).status, 200);
      assertProblem(await s.inferEmpty(ROOT, 'by-root', target), 400, 'invalid-image');
      assertProblem(await s.inferJsonOwner(ROOT, 'by-root', target), 400, 'invalid-image');
      assert.equal((await s.del(ROOT, 'by-root', target)).status, 200);
    }
    const viaBody = await s.create(ROOT, { name: 'by-root-body', image: 'ocr', owner_access_key: carol });
    assert.equal(viaBody.status, 201);
    assert.ok(names(await s.list(OTHER_DOMAIN_USER)).includes('by-root-body'), 'the named owner sees it');
  });

  it('max_sessions: the third create is 412 quota-exceeded; after a DELETE one fits again', async () => {
    assert.equal((await s.create(QUOTA, { name: 'q1', image: 'ocr' })).status, 201);
    assert.equal((await s.create(QUOTA, { name: 'q2', image: 'ocr' })).status, 201);
    assertProblem(await s.create(QUOTA, { name: 'q3', image: 'ocr' }), 412, 'quota-exceeded');
    // Asking for an existing one is not a new session.
    assert.equal((await s.create(QUOTA, { name: 'q2', image: 'ocr' })).status, 200);
    // An admin acting for the keypair is held to the owner's quota.
    assertProblem(await s.create(ADMIN, { name: 'q3', image: 'ocr' }, QUOTA.accessKey), 412, 'quota-exceeded');
    assert.equal((await s.del(QUOTA, 'q1')).status, 200);
    assert.equal((await s.create(QUOTA, { name: 'q3', image: 'ocr' })).status, 201);
    assert.deepEqual(names(await s.list(QUOTA)).sort(), ['q2', 'q3']);
  });
});

describe('sessions: idle expiry', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway({ config: '[sessions]\nidle_timeout_seconds = 2\n' });
  });
  after(() => gw.stop());

  it('an idle session disappears after the timeout; GET does not keep it alive', async () => {
    const s = api(gw);
    assert.equal((await s.create(ALICE, { name: 'idle', image: 'ocr' })).status, 201);
    assert.ok(names(await s.list(ALICE)).includes('idle'));
    const created = Date.now();
    await sleep(1000);
    assert.equal((await s.get(ALICE, 'idle')).status, 200, 'still alive half-way');
    await sleep(Math.max(0, created + 2300 - Date.now()));
    assert.ok(!names(await s.list(ALICE)).includes('idle'), 'gone from the list');
    assertProblem(await s.get(ALICE, 'idle'), 404, 'session-not-found');
    // The name is free again, and an expired session no longer counts against the quota.
    const again = await s.create(ALICE, { name: 'idle', image: 'ocr' });
    assert.equal(again.status, 201);
    assert.equal(again.json.created, true);
  });

  it('an inference restarts the idle timer', async () => {
    const s = api(gw);
    const png = await renderText(['Idle 42'], { size: 24 });
    const infer = (name: string) => gw.signed({ method: 'POST', target: `/session/${name}/infer`, as: BOB, body: png, contentType: 'image/png' });
    // Load the model first, so the timed part below is ~100 ms per inference.
    assert.equal((await s.create(BOB, { name: 'warm', image: 'ocr' })).status, 201);
    const warm = await infer('warm');
    assert.equal(warm.status, 200, warm.text);

    assert.equal((await s.create(BOB, { name: 'used', image: 'ocr' })).status, 201);
    assert.equal((await s.create(BOB, { name: 'unused', image: 'ocr' })).status, 201);
    const created = Date.now();
    await sleep(1200);
    const sent = Date.now();
    const used = await infer('used');
    const answered = Date.now(); // the touch happened between sent and answered
    assert.equal(used.status, 200, used.text);
    assert.deepEqual(used.json.predictions.map((p: { text: string }) => p.text), ['Idle 42']);
    await sleep(Math.max(0, created + 2300 - Date.now()));
    const list = names(await s.list(BOB));
    assert.ok(!list.includes('unused'), `unused session still listed after ${Date.now() - created} ms`);
    const age = Date.now() - sent;
    assert.ok(age < 1900, `the check ran too late to be meaningful (${age} ms after the inference)`);
    assert.ok(list.includes('used'), `the used session expired ${age} ms after its inference`);
    assert.equal((await s.get(BOB, 'used')).status, 200);
    // ...and it too goes once idle.
    await sleep(Math.max(0, answered + 2300 - Date.now()));
    assertProblem(await s.get(BOB, 'used'), 404, 'session-not-found');
  });
});

describe('sessions: two replicas on one Redis', () => {
  let redis: TestRedisServer;
  let a: TestGateway;
  let b: TestGateway;
  before(async () => {
    redis = await startRedisServer();
    const config = `[ratelimit]\nstore = "redis"\nredis_url = "${redis.url}"\n`;
    a = await startGateway({ config, keypairs: ALL });
    b = await startGateway({ config, keypairs: [], keypairDir: a.keypairDir });
  });
  after(async () => {
    await Promise.allSettled([a?.stop(), b?.stop()]);
    await redis?.stop();
  });

  it('both replicas see the same sessions', async () => {
    const A = api(a);
    const B = api(b);
    const created = await A.create(ALICE, { name: 'shared', image: 'ocr' });
    assert.equal(created.status, 201, created.text);
    const listed = await B.list(ALICE);
    assert.equal(listed.status, 200, listed.text);
    assert.deepEqual(names(listed), ['shared']);
    const got = await B.get(ALICE, 'shared');
    assert.equal(got.status, 200);
    assert.equal(got.json.sessionId, created.json.sessionId);
    // Same name on the other replica: the same session.
    const again = await B.create(ALICE, { name: 'shared', image: 'ocr' });
    assert.equal(again.status, 200);
    assert.equal(again.json.sessionId, created.json.sessionId);
    // Scoping holds there too.
    assertProblem(await B.get(BOB, 'shared'), 404, 'session-not-found');
    assert.ok(names(await B.list(ADMIN, ALICE.accessKey)).includes('shared'));

    assert.equal((await B.del(ALICE, 'shared')).status, 200);
    assertProblem(await A.get(ALICE, 'shared'), 404, 'session-not-found');
    assert.deepEqual(names(await A.list(ALICE)), []);
  });

  it('max_sessions holds across replicas under concurrent creates', async () => {
    const A = api(a);
    const B = api(b);
    const results = await Promise.all(
      ['c1', 'c2', 'c3', 'c4', 'c5', 'c6'].map((name, i) => (i % 2 === 0 ? A : B).create(QUOTA, { name, image: 'ocr' })),
    );
    const statuses = results.map((r) => r.status);
    assert.equal(statuses.filter((st) => st === 201).length, 2, `statuses ${statuses.join()}`);
    for (const r of results.filter((r) => r.status !== 201)) assertProblem(r, 412, 'quota-exceeded');
    const onA = names(await A.list(QUOTA)).sort();
    const onB = names(await B.list(QUOTA)).sort();
    assert.equal(onA.length, 2);
    assert.deepEqual(onA, onB);
    // Free one on B; A can create again.
    assert.equal((await B.del(QUOTA, onA[0]!)).status, 200);
    assert.equal((await A.create(QUOTA, { name: 'c7', image: 'ocr' })).status, 201);
    assertProblem(await B.create(QUOTA, { name: 'c8', image: 'ocr' }), 412, 'quota-exceeded');
  });
});
