/**
 * Paged collections (issue 13 item 4): GET /session and GET /models take ?limit= and ?cursor= and answer
 * `Link: <...>; rel="next"` while more remain. Pages follow a stable key, so sessions that live the whole
 * time are listed exactly once while others are created and deleted, on the memory and the Redis store;
 * bad limits and cursors (garbage, tampered, too long, another listing's) are 400 problem documents; every
 * answer says Content-Language: en; the TypeScript client and `kernelgate sign --all` follow the links.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { ADMIN, ALICE, BIN, BOB, OTHER_ADMIN, ROOT, startGateway, type Response, type TestGateway, type TestKeypair } from './helpers/gateway.js';
import { assertProblem } from './helpers/problems.js';
import { startRedisServer, type TestRedisServer } from './helpers/redis-server.js';
import { KernelgateClient } from '../src/client/client.js';
import { nextLink } from '../src/client/link.js';
import { decodeCursor, encodeCursor, MAX_CURSOR_CHARS, type CursorScope } from '../src/http/pagination.js';
import { ApiError } from '../src/problems/api-error.js';
import { MemorySessionStore } from '../src/sessions/memory-store.js';
import { RedisSessionStore } from '../src/sessions/redis-store.js';
import type { SessionRecord, SessionStore } from '../src/sessions/types.js';
import { ocrModelPaths } from '../src/inference/ocr/index.js';

/** Owns many sessions: the default quota is 8. */
const MANY: TestKeypair = { accessKey: 'AKIAKGATEMANY0000011', secretKey: 'manySecretKey000000000000000000000000M11', role: 'user', user: 'many@example.com', maxSessions: 2000 };
const KEYPAIRS = [ALICE, BOB, ADMIN, ROOT, OTHER_ADMIN, MANY];
/** Room for a few hundred creates per window (POST /session is charged like any request). */
const CONFIG = '[server]\nbody_limit_bytes = 4194304\n[ratelimit]\ndefault_limit = 100000\n[sessions]\ndefault_max_sessions = 8\n';

const STABLE = 250;
const names = (res: Response): string[] => res.json.sessions.map((s: { sessionName: string }) => s.sessionName);

async function inBatches<T>(items: T[], width: number, run: (item: T) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < items.length; i += width) await Promise.all(items.slice(i, i + width).map(run));
}

/** The target a rel="next" link names, resolved against the page's own target as a client does. */
function follow(res: Response, target: string): string | undefined {
  const link = nextLink(res.headers.link as string | undefined);
  if (link === undefined) return undefined;
  const url = new URL(link, `http://gateway${target}`);
  return url.pathname + url.search;
}

async function pageAll(gw: TestGateway, as: TestKeypair, first: string): Promise<{ pages: string[][]; links: string[] }> {
  const pages: string[][] = [];
  const links: string[] = [];
  let target: string | undefined = first;
  while (target !== undefined) {
    const res = await gw.signed({ method: 'GET', target, as });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.headers['content-language'], 'en');
    pages.push(names(res));
    if (res.headers.link) links.push(String(res.headers.link));
    target = follow(res, target);
    assert.ok(pages.length < 50, 'the walk ends');
  }
  return { pages, links };
}

function collectionBehaviour(label: string, storeConfig: () => string, extras: boolean) {
  describe(`GET /session pages (${label})`, () => {
    let gw: TestGateway;
    const create = (name: string, as: TestKeypair = MANY) =>
      gw.signed({ method: 'POST', target: '/session', as, body: JSON.stringify({ name, image: 'ocr' }) });
    const del = (name: string) => gw.signed({ method: 'DELETE', target: `/session/${name}`, as: MANY });

    before(async () => {
      gw = await startGateway({ config: CONFIG + storeConfig(), keypairs: KEYPAIRS });
    });
    after(() => gw.stop());

    it('250 sessions by 100: three pages, no duplicates, no gaps, Link only while more remain', async () => {
      const stable = Array.from({ length: STABLE }, (_, i) => `s-${String(i).padStart(3, '0')}`);
      await inBatches(stable, 16, async (n) => assert.equal((await create(n)).status, 201));
      const { pages, links } = await pageAll(gw, MANY, '/session?limit=100');
      assert.deepEqual(pages.map((p) => p.length), [100, 100, 50]);
      assert.equal(links.length, 2, 'Link on the first two pages, absent on the last');
      for (const link of links) assert.match(link, /^<session\?limit=100&cursor=[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{22}>; rel="next"$/);
      const all = pages.flat();
      assert.equal(new Set(all).size, all.length, 'no duplicates');
      assert.deepEqual([...all].sort(), stable, 'no gaps');
      // The default page is 100 too.
      const plain = await gw.signed({ method: 'GET', target: '/session', as: MANY });
      assert.equal(names(plain).length, 100);
      assert.ok(plain.headers.link);
    });

    it('sessions that live throughout are listed exactly once while others are created and deleted', async () => {
      // The 250 of the test before: every third is deleted while the listing runs (so deletions fall
      // before, on and after each cursor), the rest live throughout.
      const all = Array.from({ length: STABLE }, (_, i) => `s-${String(i).padStart(3, '0')}`);
      const victims = all.filter((_, i) => i % 3 === 0);
      const stable = all.filter((_, i) => i % 3 !== 0);
      let churning = true;
      let created = 0;
      let deleted = 0;
      const churn = (async () => {
        // New sessions (after every stable one in the order) and deletions of victims (spread across the pages).
        let i = 0;
        while (churning) {
          const victim = victims[i % victims.length]!;
          const [a, b] = await Promise.all([create(`new-${i}`), del(victim)]);
          assert.equal(a.status, 201, a.text);
          if (b.status === 200) deleted++;
          created++;
          i++;
        }
      })();
      const seen: string[] = [];
      let pages = 0;
      try {
        let target: string | undefined = '/session?limit=100';
        while (target !== undefined) {
          const res = await gw.signed({ method: 'GET', target, as: MANY });
          assert.equal(res.status, 200, res.text);
          seen.push(...names(res));
          pages++;
          target = follow(res, target);
          // Let the churn run between pages.
          await new Promise((r) => setTimeout(r, 40));
        }
      } finally {
        churning = false;
        await churn;
      }
      assert.ok(created > 0 && deleted > 0, `the listing ran while others changed (${created} created, ${deleted} deleted)`);
      assert.ok(pages >= 3, `${pages} pages`);
      assert.equal(new Set(seen).size, seen.length, 'nothing listed twice');
      for (const n of stable) assert.equal(seen.filter((s) => s === n).length, 1, `${n} listed exactly once`);
      for (const s of seen) assert.match(s, /^(s|new)-/);
      for (const n of [...all, ...Array.from({ length: created }, (_, i) => `new-${i}`)]) await del(n);
    });

    it('keeps owner_access_key in the link, and an admin pages through its user\'s sessions', async () => {
      for (const n of ['a-1', 'a-2', 'a-3']) assert.equal((await create(n, ALICE)).status, 201);
      const first = `/session?owner_access_key=${ALICE.accessKey}&limit=2`;
      const res = await gw.signed({ method: 'GET', target: first, as: ADMIN });
      assert.deepEqual(names(res), ['a-1', 'a-2']);
      const next = follow(res, first)!;
      assert.match(next, new RegExp(`^/session\\?owner_access_key=${ALICE.accessKey}&limit=2&cursor=`));
      const rest = await gw.signed({ method: 'GET', target: next, as: ADMIN });
      assert.deepEqual(names(rest), ['a-3']);
      assert.equal(rest.headers.link, undefined);

      // Bound to listing, owner and requester: Alice cannot use her admin's cursor, nor Bob hers.
      const cursor = new URL(next, 'http://x').searchParams.get('cursor')!;
      assertProblem(await gw.signed({ method: 'GET', target: `/session?limit=2&cursor=${cursor}`, as: ALICE }), 400, 'invalid-api-params');
      const own = await gw.signed({ method: 'GET', target: '/session?limit=1', as: ALICE });
      const ownCursor = new URL(follow(own, '/session?limit=1')!, 'http://x').searchParams.get('cursor')!;
      assertProblem(await gw.signed({ method: 'GET', target: `/session?cursor=${ownCursor}`, as: BOB }), 400, 'invalid-api-params');
      assertProblem(await gw.signed({ method: 'GET', target: `/models?cursor=${ownCursor}`, as: ALICE }), 400, 'invalid-api-params');
      assert.deepEqual(names(await gw.signed({ method: 'GET', target: `/session?cursor=${ownCursor}`, as: ALICE })), ['a-2', 'a-3']);
    });

    it('refuses bad limits and cursors (garbage, tampered, too long) with 400 problem documents in English', async () => {
      const good = await gw.signed({ method: 'GET', target: '/session?limit=1', as: ALICE });
      const cursor = new URL(follow(good, '/session?limit=1')!, 'http://x').searchParams.get('cursor')!;
      const [payload, tag] = cursor.split('.') as [string, string];
      const flip = (s: string, i: number) => s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1);
      const bad = [
        'limit=0', 'limit=1001', 'limit=abc', 'limit=-1', 'limit=1.5', 'limit=1&limit=2', 'limit=99999999',
        'cursor=', 'cursor=garbage', 'cursor=%00%ff', `cursor=${cursor}&cursor=${cursor}`,
        `cursor=${flip(payload, 2)}.${tag}`, `cursor=${payload}.${flip(tag, 0)}`, `cursor=${payload}.${tag.slice(0, -1)}`,
        `cursor=${Buffer.from(JSON.stringify(['0000000000000001', 'x'])).toString('base64url')}.${tag}`,
        `cursor=${'A'.repeat(MAX_CURSOR_CHARS + 1)}`, `cursor=${payload}${'A'.repeat(4000)}.${tag}`,
      ];
      for (const q of bad) {
        const res = await gw.signed({ method: 'GET', target: `/session?${q}`, as: ALICE });
        assertProblem(res, 400, 'invalid-api-params');
        assert.equal(res.headers['content-language'], 'en', q);
      }
      const missing = await gw.signed({ method: 'GET', target: '/session/none-such', as: ALICE });
      assertProblem(missing, 404, 'session-not-found');
      assert.equal(missing.headers['content-language'], 'en');
      const nowhere = await gw.request({ method: 'GET', target: '/no/such/route' });
      assert.equal(nowhere.status, 404);
      assert.equal(nowhere.headers['content-language'], 'en');
      const unsigned = await gw.request({ method: 'GET', target: '/session' });
      assert.equal(unsigned.status, 401);
      assert.equal(unsigned.headers['content-language'], 'en');
      assert.equal((await gw.request({ method: 'GET', target: '/' })).headers['content-language'], 'en');
    });

    it('the TypeScript client and `kernelgate sign --all` follow rel="next"', async () => {
      const client = new KernelgateClient({ endpoint: gw.url, accessKey: ALICE.accessKey, secretKey: ALICE.secretKey });
      const all = await client.all<{ sessionName: string }>('/session', 'sessions', { query: { limit: 1 } });
      assert.deepEqual(all.map((s) => s.sessionName), ['a-1', 'a-2', 'a-3']);
      let pages = 0;
      for await (const r of client.pages('/session', { query: { limit: 2 } })) {
        assert.equal(r.status, 200);
        pages++;
      }
      assert.equal(pages, 2);
      if (!extras) return; // the same code on either store: one CLI process and one models walk are enough

      const out = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, [BIN, 'sign', 'GET', '/session?limit=1', '--all', '--endpoint', gw.url], {
          env: { ...process.env, KERNELGATE_ACCESS_KEY: ALICE.accessKey, KERNELGATE_SECRET_KEY: ALICE.secretKey },
        });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d) => (stdout += d));
        child.stderr.on('data', (d) => (stderr += d));
        child.on('exit', (code) => resolve({ code, stdout, stderr }));
      });
      assert.equal(out.code, 0, out.stderr);
      const lines = out.stdout.trim().split('\n').map((l) => JSON.parse(l));
      assert.deepEqual(lines.map((p) => p.sessions.map((s: { sessionName: string }) => s.sessionName)), [['a-1'], ['a-2'], ['a-3']]);
    });

    if (extras) {
      // GET /models (the same gateway: its store plays no part).
      it('a superadmin pages through every domain, a domain admin through its own; the link keeps ?domain=', async () => {
        const onnx = readFileSync(ocrModelPaths().classifier).toString('base64');
        const upload = (as: TestKeypair, name: string) =>
          gw.signed({ method: 'POST', target: '/models', as, body: JSON.stringify({ name, task: 'classify', input: { width: 192, height: 48 }, labels: ['0', '180'], model: onnx }) });
        for (const [as, name] of [[ADMIN, 'm-b'], [ADMIN, 'm-a'], [OTHER_ADMIN, 'm-c']] as const) assert.equal((await upload(as, name)).status, 201);

        const walk = async (as: TestKeypair, first: string) => {
          const seen: string[] = [];
          let target: string | undefined = first;
          let pages = 0;
          while (target !== undefined) {
            const res = await gw.signed({ method: 'GET', target, as });
            assert.equal(res.status, 200, res.text);
            seen.push(...res.json.models.map((m: { name: string; domain?: string }) => `${m.domain ?? '-'}/${m.name}`));
            pages++;
            target = follow(res, target);
          }
          return { seen, pages };
        };
        assert.deepEqual(await walk(ROOT, '/models?limit=1'), { seen: ['-/face', '-/ocr', 'default/m-a', 'default/m-b', 'other/m-c'], pages: 5 });
        assert.deepEqual(await walk(ROOT, '/models?limit=3'), { seen: ['-/face', '-/ocr', 'default/m-a', 'default/m-b', 'other/m-c'], pages: 2 });
        assert.deepEqual(await walk(ADMIN, '/models?limit=2'), { seen: ['-/face', '-/ocr', 'default/m-a', 'default/m-b'], pages: 2 });
        const scoped = await gw.signed({ method: 'GET', target: '/models?domain=other&limit=1', as: ROOT });
        assert.match(String(scoped.headers.link), /^<models\?domain=other&limit=1&cursor=/);
        assert.deepEqual((await walk(ROOT, '/models?domain=other&limit=1')).seen, ['-/face', '-/ocr', 'other/m-c']);
        // A cursor of one domain's listing is refused on another's.
        const cursor = new URL(follow(scoped, '/models?domain=other&limit=1')!, 'http://x').searchParams.get('cursor')!;
        assertProblem(await gw.signed({ method: 'GET', target: `/models?cursor=${cursor}`, as: ROOT }), 400, 'invalid-api-params');
        assertProblem(await gw.signed({ method: 'GET', target: '/models?limit=0', as: ROOT }), 400, 'invalid-api-params');
      });
    }
  });
}

collectionBehaviour('memory store', () => '', true);

let redis: TestRedisServer | undefined;
before(async () => {
  redis = await startRedisServer();
});
after(() => redis?.stop());
collectionBehaviour('Redis store', () => `[store]\nkind = "redis"\nredis_url = "${redis!.url}"\n`, false);

describe('session stores page by (created, name), ties included', () => {
  const owner = 'AKIAPAGETIES00000001';
  const record = (name: string, createdAt: number): SessionRecord => ({
    sessionId: name, sessionName: name, owner, image: 'ocr', status: 'RUNNING', createdBy: owner, createdAt, lastUsedAt: Date.now(), config: {},
  });
  const walk = async (store: SessionStore, limit: number) => {
    const seen: string[] = [];
    let after: { createdAt: number; name: string } | undefined;
    for (;;) {
      const page = await store.page(owner, 60_000, after, limit);
      seen.push(...page.sessions.map((s) => s.sessionName));
      if (!page.more) return seen;
      const last = page.sessions[page.sessions.length - 1]!;
      after = { createdAt: last.createdAt, name: last.sessionName };
    }
  };
  for (const kind of ['memory', 'redis'] as const) {
    it(`${kind}: many sessions created in the same millisecond, and a cursor whose session was deleted`, async () => {
      const store: SessionStore = kind === 'memory' ? new MemorySessionStore() : new RedisSessionStore({ url: redis!.url, idleMs: 60_000 });
      if (store instanceof RedisSessionStore) await store.ready(5000);
      try {
        const t = Date.now();
        // 30 at one instant, then 10 at the next: names sort within an instant.
        const made = [...Array.from({ length: 30 }, (_, i) => record(`t${String(29 - i).padStart(2, '0')}`, t)), ...Array.from({ length: 10 }, (_, i) => record(`u${i}`, t + 1))];
        for (const r of made) assert.equal((await store.create(r, 100, 60_000)).state, 'created');
        const expected = [...Array.from({ length: 30 }, (_, i) => `t${String(i).padStart(2, '0')}`), ...Array.from({ length: 10 }, (_, i) => `u${i}`)];
        for (const limit of [1, 7, 30, 40, 100]) assert.deepEqual(await walk(store, limit), expected, `limit ${limit}`);
        // The cursor's own session is gone: the page still starts right after its place.
        const first = await store.page(owner, 60_000, undefined, 5);
        assert.equal(await store.delete(owner, 't04'), true);
        const next = await store.page(owner, 60_000, { createdAt: t, name: 't04' }, 3);
        assert.deepEqual(next.sessions.map((s) => s.sessionName), ['t05', 't06', 't07']);
        assert.equal(first.more, true);
        // Idle sessions are skipped, not counted.
        const idle = await store.page(owner, 0, undefined, 10);
        assert.deepEqual(idle, { sessions: [], more: false });
      } finally {
        await store.close();
      }
    });
  }
});

describe('the cursor parser (fast-check)', () => {
  const scope: CursorScope = { collection: 'session', scope: 'AKIAKGATEALICE000001', secret: 'aliceSecretKey0000000000000000000000000A', arity: 2 };

  it('accepts exactly what it issued, round-trip', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), fc.string({ maxLength: 200 }), (a, b) => {
        assert.deepEqual(decodeCursor(scope, encodeCursor(scope, [a, b])), [a, b]);
      }),
      { numRuns: 300 },
    );
  });

  it('answers any other string, long and adversarial ones included, with a 400 ApiError and nothing else, quickly', () => {
    const valid = encodeCursor(scope, ['0001733140000000', 'name']);
    const inputs = fc.oneof(
      fc.string({ maxLength: 2000 }),
      fc.string({ unit: fc.constantFrom('A', '_', '-', '.', '=', '%', '\u0000', '\ud800'), maxLength: 5000 }),
      // Single edits of a valid cursor.
      fc.tuple(fc.nat({ max: valid.length - 1 }), fc.constantFrom('A', 'B', '_', '-', '.', '0', '')).map(([i, c]) => valid.slice(0, i) + c + valid.slice(i + 1)),
      fc.nat({ max: 200_000 }).map((n) => `${'A'.repeat(n)}.${'A'.repeat(22)}`),
    );
    const started = Date.now();
    fc.assert(
      fc.property(inputs, (input) => {
        if (input === valid) return;
        assert.throws(() => decodeCursor(scope, input), (e: unknown) => e instanceof ApiError && e.status === 400 && e.slug === 'invalid-api-params');
      }),
      { numRuns: 2000 },
    );
    assert.ok(Date.now() - started < 10_000, 'linear: 2000 inputs up to 200 kB well within 10 s');
    // Another keypair, owner or collection: refused.
    for (const other of [{ ...scope, secret: 'x'.repeat(40) }, { ...scope, scope: 'AKIAKGATEBOB00000002' }, { ...scope, collection: 'models' }]) {
      assert.throws(() => decodeCursor(other, valid), ApiError);
    }
  });

  it('reads rel="next" from any Link header without backtracking', () => {
    assert.equal(nextLink('<a?x=1>; rel="prev", <b?x=2>; rel="next"'), 'b?x=2');
    assert.equal(nextLink('<c>; title="a, b"; rel="last next"'), 'c');
    assert.equal(nextLink('<c>; rel=next'), 'c');
    assert.equal(nextLink('<c>; rel="nextish"'), undefined);
    fc.assert(fc.property(fc.string({ unit: fc.constantFrom('<', '>', ';', ' ', 'r', 'e', 'l', '=', '"', ','), maxLength: 20_000 }), (h) => {
      const r = nextLink(h);
      assert.ok(r === undefined || typeof r === 'string');
    }), { numRuns: 200 });
  });
});
