/**
 * Issue 7 item 5 (and the 413 detail of item 19): clients over their limit, and requests whose
 * credentials are missing or malformed, are refused before their body is read, on a closed
 * connection; connections are capped (server.max_connections); request_timeout_ms is enforced
 * within a second.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { ALICE, BOB, startGateway, type TestGateway, type TestKeypair } from './helpers/gateway.js';
import { assertProblem } from './helpers/problems.js';
import { signRequest } from '../src/signing/sign-request.js';
import { MemoryRateLimitStore, RedisRateLimitStore, type RateLimitStore } from '../src/ratelimit/index.js';
import { startRedisServer, type TestRedisServer } from './helpers/redis-server.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const BODY_BYTES = 10_000_000; // just under the default 10 MiB body limit
const BODY = Buffer.alloc(BODY_BYTES, 0x61);
const CHUNK = 256 * 1024;

const LIMITED: TestKeypair = {
  accessKey: 'AKIAKGATELIMITED0009',
  secretKey: 'limitedSecretKey0000000000000000000000L9',
  role: 'user',
  user: 'limited@example.com',
  rateLimit: 1,
};

interface RawAnswer {
  status: number;
  head: string;
  /** Body bytes the client managed to hand to its socket before the answer came. */
  sent: number;
}

/**
 * Sends `head` and then `bodyBytes` of body in chunks, as fast as the socket takes them, until an answer
 * arrives or the connection closes (a client that blasts its body, but stops once answered).
 */
function sendWithBody(port: number, head: string, bodyBytes: number): Promise<RawAnswer> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const got: Buffer[] = [];
    let sent = 0;
    let closed = false;
    const timer = setTimeout(() => socket.destroy(), 60_000);
    socket.on('data', (d: Buffer) => got.push(d));
    socket.on('error', () => {});
    socket.on('close', () => {
      closed = true;
      clearTimeout(timer);
      const text = Buffer.concat(got).toString('latin1');
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
      resolve({ status, head: text.split('\r\n\r\n')[0] ?? '', sent });
    });
    socket.on('connect', async () => {
      socket.write(head);
      while (sent < bodyBytes && got.length === 0 && !closed) {
        const n = Math.min(CHUNK, bodyBytes - sent);
        const ok = socket.write(BODY.subarray(0, n));
        sent += n;
        if (!ok) {
          await new Promise<void>((r) => {
            const done = () => {
              socket.off('drain', done);
              socket.off('close', done);
              r();
            };
            socket.once('drain', done);
            socket.once('close', done);
          });
        }
      }
      if (!closed) socket.end();
    });
  });
}

function signedHead(port: number, as: TestKeypair, body: Buffer): string {
  const host = `127.0.0.1:${port}`;
  const signed = signRequest({ method: 'POST', target: '/auth/test', host, accessKey: as.accessKey, secretKey: as.secretKey, body, contentType: 'application/octet-stream' });
  const lines = Object.entries(signed.headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
  return `POST /auth/test HTTP/1.1\r\nHost: ${host}\r\n${lines}Content-Length: ${body.length}\r\n\r\n`;
}

function rssKb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0);
}

/** Runs `work` while sampling the gateway's RSS every 5 ms; returns its result and the peak growth in MB. */
async function withRss<T>(gw: TestGateway, work: () => Promise<T>): Promise<{ result: T; growthMb: number }> {
  const pid = gw.proc.pid!;
  await sleep(200);
  const base = rssKb(pid);
  let peak = base;
  const sampler = setInterval(() => {
    peak = Math.max(peak, rssKb(pid));
  }, 5);
  try {
    const result = await work();
    await sleep(100);
    peak = Math.max(peak, rssKb(pid));
    return { result, growthMb: (peak - base) / 1024 };
  } finally {
    clearInterval(sampler);
  }
}

const tally = (answers: RawAnswer[]) => {
  const t: Record<number, number> = {};
  for (const a of answers) t[a.status] = (t[a.status] ?? 0) + 1;
  return t;
};

describe('bodies are not read for requests refused on their headers', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway({ keypairs: [ALICE, BOB, LIMITED], config: '[ratelimit]\nanonymous_limit = 1000\n' });
  });
  after(() => gw.stop());

  it('a keypair over its limit sends 30 parallel 10 MB bodies: all 429 on closed connections, RSS grows < 60 MB', async (t) => {
    assert.equal((await gw.signed({ method: 'GET', target: '/auth/test', as: LIMITED })).status, 200);
    assertProblem(await gw.signed({ method: 'GET', target: '/auth/test', as: LIMITED }), 429, 'rate-limit-exceeded');
    const head = signedHead(gw.port, LIMITED, BODY);
    const { result, growthMb } = await withRss(gw, () => Promise.all(Array.from({ length: 30 }, () => sendWithBody(gw.port, head, BODY_BYTES))));
    assert.deepEqual(tally(result), { 429: 30 });
    t.diagnostic(`gateway RSS growth ${growthMb.toFixed(1)} MB; the clients wrote ${(result.reduce((n, a) => n + a.sent, 0) / 1e6).toFixed(0)} MB before their answers`);
    assert.ok(growthMb < 60, `gateway RSS grew by ${growthMb.toFixed(1)} MB`);
    for (const a of result) {
      assert.match(a.head, /\r\nconnection: close\r\n/i);
      assert.match(a.head, /\r\nretry-after: \d+\r\n/i);
      assert.match(a.head, /\r\nratelimit-policy: "keypair";q=1;/i, 'the keypair\'s own counter is reported');
    }
  });

  it('missing or malformed credentials with 30 parallel 10 MB bodies: all 401/400 at once, RSS grows < 60 MB', async (t) => {
    const host = `127.0.0.1:${gw.port}`;
    const none = `POST /auth/test HTTP/1.1\r\nHost: ${host}\r\nContent-Length: ${BODY_BYTES}\r\n\r\n`;
    const malformed = `POST /auth/test HTTP/1.1\r\nHost: ${host}\r\nAuthorization: BackendAI nonsense\r\nX-BackendAI-Version: v8.20240915\r\nContent-Length: ${BODY_BYTES}\r\n\r\n`;
    const stale = signedHead(gw.port, ALICE, BODY).replace(/\r\nDate: [^\r]*/i, '\r\nDate: 2001-01-01T00:00:00Z').replace(/\r\nX-BackendAI-Date: [^\r]*/i, '');
    const { result, growthMb } = await withRss(gw, () =>
      Promise.all(Array.from({ length: 30 }, (_, i) => sendWithBody(gw.port, [none, malformed, stale][i % 3]!, BODY_BYTES))),
    );
    assert.deepEqual(tally(result), { 401: 10, 400: 20 });
    t.diagnostic(`gateway RSS growth ${growthMb.toFixed(1)} MB; the clients wrote ${(result.reduce((n, a) => n + a.sent, 0) / 1e6).toFixed(0)} MB before their answers`);
    assert.ok(growthMb < 60, `gateway RSS grew by ${growthMb.toFixed(1)} MB`);
    for (const a of result) assert.match(a.head, /\r\nconnection: close\r\n/i);
  });

  it('a keypair within its limit still sends a body and is verified and charged as before', async () => {
    const body = JSON.stringify({ echo: 'still here' });
    const res = await gw.signed({ method: 'POST', target: '/auth/test', as: BOB, body });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.echo, 'still here');
    assert.equal(res.headers['x-ratelimit-remaining'], '9999');
  });

  it('413 names the limit in bytes and the config key', async () => {
    const res = await gw.signed({ method: 'POST', target: '/auth/test', as: BOB, body: Buffer.alloc(10_485_761, 0x61), contentType: 'application/octet-stream' });
    assertProblem(res, 413, 'request-too-large');
    assert.match(res.json.detail, /10485760 bytes/);
    assert.match(res.json.detail, /server\.body_limit_bytes/);
  });
});

describe('an address over its anonymous limit is refused before the body, whatever key it names', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway({ keypairs: [ALICE], config: '[ratelimit]\nanonymous_limit = 3\n' });
  });
  after(() => gw.stop());

  it('forged requests fill the address; then 30 parallel 10 MB forged bodies get 429 unread, RSS grows < 60 MB', async (t) => {
    const forger: TestKeypair = { ...ALICE, secretKey: 'notAlicesSecret000000000000000000000000X' };
    for (let i = 0; i < 3; i++) assertProblem(await gw.signed({ method: 'POST', target: '/auth/test', as: forger, body: '{}' }), 401, 'auth-failed');
    const head = signedHead(gw.port, forger, BODY);
    const { result, growthMb } = await withRss(gw, () => Promise.all(Array.from({ length: 30 }, () => sendWithBody(gw.port, head, BODY_BYTES))));
    assert.deepEqual(tally(result), { 429: 30 });
    t.diagnostic(`gateway RSS growth ${growthMb.toFixed(1)} MB; the clients wrote ${(result.reduce((n, a) => n + a.sent, 0) / 1e6).toFixed(0)} MB before their answers`);
    assert.ok(growthMb < 60, `gateway RSS grew by ${growthMb.toFixed(1)} MB`);
    for (const a of result) assert.match(a.head, /\r\nratelimit-policy: "anonymous";q=3;/i);
    // ALICE's own quota was not touched, and her bodiless requests from this address still pass.
    const own = await gw.signed({ method: 'GET', target: '/auth/test', as: ALICE });
    assert.equal(own.status, 200, own.text);
    assert.equal(own.headers['x-ratelimit-remaining'], '9999');
  });
});

describe('connections: max_connections and request_timeout_ms', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway({ config: '[server]\nmax_connections = 4\nrequest_timeout_ms = 2000\n' });
  });
  after(() => gw.stop());

  /** Opens a keep-alive connection and completes one GET / on it, leaving it open. */
  function openIdle(): Promise<{ status: number; socket: ReturnType<typeof connect> }> {
    return new Promise((resolve) => {
      const socket = connect(gw.port, '127.0.0.1');
      let text = '';
      const finish = () => resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), socket });
      socket.on('error', () => {});
      socket.on('connect', () => socket.write(`GET / HTTP/1.1\r\nHost: 127.0.0.1:${gw.port}\r\n\r\n`));
      socket.on('data', (d: Buffer) => {
        text += d.toString('latin1');
        if (/\r\n\r\n[\s\S]*\}/.test(text)) finish();
      });
      socket.on('close', finish);
    });
  }

  it('past max_connections a new connection is closed without an answer; one frees, the next is served', async () => {
    const held = await Promise.all(Array.from({ length: 4 }, () => openIdle()));
    try {
      assert.deepEqual(held.map((h) => h.status), [200, 200, 200, 200]);
      const extra = await openIdle();
      assert.equal(extra.status, 0, 'the fifth connection got an answer');
      extra.socket.destroy();
      held.pop()!.socket.destroy();
      await sleep(200);
      const next = await openIdle();
      assert.equal(next.status, 200);
      next.socket.destroy();
    } finally {
      for (const h of held) h.socket.destroy();
    }
  });

  it('a client that sends its body too slowly is cut off within request_timeout_ms + 1 s', async () => {
    await sleep(200);
    const started = Date.now();
    const outcome = await new Promise<{ status: number; ms: number }>((resolve) => {
      const socket = connect(gw.port, '127.0.0.1');
      let text = '';
      let drip: NodeJS.Timeout | undefined;
      const guard = setTimeout(() => socket.destroy(), 10_000);
      socket.on('error', () => {});
      socket.on('connect', () => {
        socket.write(`GET / HTTP/1.1\r\nHost: 127.0.0.1:${gw.port}\r\nContent-Length: 1000\r\n\r\n`);
        drip = setInterval(() => socket.write('a'), 100);
      });
      socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
      socket.on('close', () => {
        clearInterval(drip);
        clearTimeout(guard);
        resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), ms: Date.now() - started });
      });
    });
    assert.ok(outcome.ms >= 1900, `cut off after ${outcome.ms} ms, before the timeout`);
    assert.ok(outcome.ms < 3000, `cut off only after ${outcome.ms} ms`);
    assert.equal(outcome.status, 408);
  });
});

describe('rate-limit stores: peek spends nothing and agrees with consume', () => {
  let redis: TestRedisServer;
  const stores: Array<[string, RateLimitStore]> = [];
  before(async () => {
    redis = await startRedisServer();
    const r = new RedisRateLimitStore({ url: redis.url });
    await r.ready(5000);
    stores.push(['memory', new MemoryRateLimitStore()], ['redis', r]);
  });
  after(async () => {
    for (const [, s] of stores) await s.close();
    await redis?.stop();
  });

  it('memory and redis', async () => {
    for (const [name, store] of stores) {
      for (let i = 0; i < 5; i++) assert.equal((await store.peek('k', 3, 60)).allowed, true, `${name}: peek ${i} on a fresh key`);
      for (let i = 0; i < 3; i++) {
        const peeked = await store.peek('k', 3, 60);
        const spent = await store.consume('k', 3, 60);
        assert.equal(spent.allowed, true, `${name}: consume ${i}`);
        assert.equal(peeked.remaining, spent.remaining, `${name}: peek predicts consume's remaining`);
      }
      const over = await store.peek('k', 3, 60);
      assert.equal(over.allowed, false, `${name}: over the limit`);
      assert.ok(over.retryAfterSeconds >= 1 && over.retryAfterSeconds <= 120);
      assert.equal((await store.consume('k', 3, 60)).allowed, false);
    }
  });
});
