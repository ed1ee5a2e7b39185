/**
 * Two gateway processes on a real Redis Cluster (3 masters, one replica each) and
 * on a real Sentinel set (master, replica, one sentinel), all started here on free
 * ports: rate limits, sessions and idempotency records are shared; then the master
 * holding the test's keys is killed (SIGKILL) under load and its replica takes over.
 * Throughout, every request is answered: 200 or 429 (rate limits fall back to
 * per-replica memory counters), 503 only for sessions while no master holds them,
 * never another 5xx; the limit stays within N replicas × limit; and what was written
 * (and replicated) before the crash is still there after. Last, every Redis process
 * goes: sessions wait once for their deadline, then the circuit breaker answers at once.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ALICE, startGateway, type Response, type TestGateway, type TestKeypair } from './helpers/gateway.js';
import {
  startRedisCluster,
  startRedisSentinelSet,
  waitReplicated,
  type TestRedisCluster,
  type TestSentinelSet,
} from './helpers/redis-topologies.js';

const LIMIT = 10;
const LIMITED: TestKeypair = {
  accessKey: 'AKIAKGATELIMITED0010',
  secretKey: 'limitedSecretKey000000000000000000000L10',
  role: 'user',
  user: 'limited@example.com',
  rateLimit: LIMIT,
};
const header = (res: Response, name: string) => {
  const v = res.headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Topology {
  /** [store] TOML for the gateways. */
  storeConfig: string;
  /** Waits until the master(s) about to be killed have replicated every write. */
  settle(): Promise<void>;
  /** Kills the master holding ALICE's sessions; returns its port. */
  killMaster(): Promise<number>;
  /** The port that is master for ALICE's sessions now. */
  masterPort(): Promise<number>;
  /** Kills every Redis process of the topology (sentinels too). */
  killAll(): Promise<void>;
}

function scenario(name: string, setUp: () => Promise<{ topology: Topology; stop(): Promise<void> }>): void {
  describe(name, () => {
    let topology: Topology;
    let stopTopology: (() => Promise<void>) | undefined;
    let a: TestGateway;
    let b: TestGateway;
    before(async () => {
      const t = await setUp();
      topology = t.topology;
      stopTopology = t.stop;
      const config = `[store]\n${topology.storeConfig}\n[ratelimit]\non_redis_failure = "memory"\n`;
      a = await startGateway({ config, keypairs: [ALICE, LIMITED] });
      b = await startGateway({ config, keypairs: [], keypairDir: a.keypairDir });
    });
    after(async () => {
      await Promise.allSettled([a?.stop(), b?.stop()]);
      await stopTopology?.();
    });

    it('two gateways share limits, sessions and idempotency records', async () => {
      for (const gw of [a, b]) {
        const health = await gw.request({ method: 'GET', target: '/health' });
        assert.equal(health.json?.ratelimit?.store, 'redis', health.text);
        assert.equal(health.json?.ratelimit?.status, 'ok', health.text);
      }
      // The limit is counted once for both: LIMIT requests spread over A and B, then both refuse.
      const remaining: number[] = [];
      for (let i = 0; i < LIMIT; i++) {
        const res = await (i % 2 ? b : a).signed({ method: 'GET', target: '/auth/test', as: LIMITED });
        assert.equal(res.status, 200, res.text);
        remaining.push(Number(header(res, 'x-ratelimit-remaining')));
      }
      assert.deepEqual(remaining, Array.from({ length: LIMIT }, (_, i) => LIMIT - 1 - i));
      for (const gw of [a, b]) assert.equal((await gw.signed({ method: 'GET', target: '/auth/test', as: LIMITED })).status, 429);

      const created = await a.signed({ method: 'POST', target: '/session', as: ALICE, body: JSON.stringify({ name: 'kept', image: 'ocr' }) });
      assert.equal(created.status, 201, created.text);
      const seen = await b.signed({ method: 'GET', target: '/session/kept', as: ALICE });
      assert.equal(seen.status, 200, seen.text);

      const body = JSON.stringify({ echo: 'once' });
      const first = await a.signed({ method: 'POST', target: '/auth/test', as: ALICE, body, headers: { 'Idempotency-Key': 'topology-1' } });
      assert.equal(first.status, 200, first.text);
      const replay = await b.signed({ method: 'POST', target: '/auth/test', as: ALICE, body, headers: { 'Idempotency-Key': 'topology-1' } });
      assert.equal(header(replay, 'idempotent-replayed'), 'true', replay.text);
      assert.equal(replay.text, first.text);
    });

    it('the master killed under load: every request answered (no 500), the limit within 3 × limit, nothing lost', async (t) => {
      await topology.settle();
      const killedPort = await topology.masterPort();
      const statuses = { limited: new Map<number, number>(), sessions: new Map<number, number>() };
      const failures: string[] = [];
      /** Session reads: when each started and ended, its status, which gateway answered. */
      const reads: Array<{ start: number; end: number; status: number; gw: TestGateway }> = [];
      let admittedLimited = 0;
      let stop = false;
      const count = (m: Map<number, number>, s: number) => m.set(s, (m.get(s) ?? 0) + 1);
      const worker = async (id: number) => {
        for (let i = 0; !stop; i++) {
          const gw = (i + id) % 2 ? b : a;
          try {
            if (i % 2) {
              const res = await gw.signed({ method: 'GET', target: '/auth/test', as: LIMITED, timeoutMs: 10_000 });
              count(statuses.limited, res.status);
              if (res.status === 200) admittedLimited++;
            } else {
              const start = Date.now();
              const res = await gw.signed({ method: 'GET', target: '/session/kept', as: ALICE, timeoutMs: 10_000 });
              reads.push({ start, end: Date.now(), status: res.status, gw });
              count(statuses.sessions, res.status);
              if (res.status !== 200) assert.equal(res.status, 503, `GET /session/kept: ${res.status} ${res.text}`);
            }
          } catch (error) {
            failures.push(String(error));
          }
          await sleep(5);
        }
      };
      const load = [0, 1, 2, 3].map(worker);
      await sleep(500);
      const killedAt = Date.now();
      await topology.killMaster();
      let newMaster = killedPort;
      const deadline = Date.now() + 20_000;
      while (newMaster === killedPort && Date.now() < deadline) {
        await sleep(100);
        newMaster = await topology.masterPort().catch(() => killedPort);
      }
      const promotedAt = Date.now();
      // Then until both gateways have read the session from the new master, and a little more load.
      const servedAfter = (gw: TestGateway) => reads.some((r) => r.gw === gw && r.start > promotedAt && r.status === 200);
      while ((!servedAfter(a) || !servedAfter(b)) && Date.now() < promotedAt + 10_000) await sleep(100);
      await sleep(500);
      stop = true;
      await Promise.all(load);

      const refused = reads.filter((r) => r.status !== 200);
      const longest = Math.max(0, ...reads.filter((r) => r.end > killedAt).map((r) => r.end - Math.max(r.start, killedAt)));
      t.diagnostic(
        `master ${killedPort} killed; ${newMaster} promoted after ${promotedAt - killedAt} ms; session reads refused (503) until ` +
          `${refused.length ? Math.max(...refused.map((r) => r.end)) - killedAt : 0} ms after the kill, longest read ${longest} ms; ` +
          `statuses: limited ${JSON.stringify([...statuses.limited])}, sessions ${JSON.stringify([...statuses.sessions])}`,
      );
      assert.ok(servedAfter(a) && servedAfter(b), 'both gateways read sessions from the new master');
      assert.deepEqual(failures, [], 'every request got an answer');
      assert.notEqual(newMaster, killedPort, 'a replica was promoted');
      // Rate limits never wait on Redis: 200 or 429 only, no 503 (on_redis_failure = "memory").
      assert.deepEqual([...statuses.limited.keys()].filter((s) => s !== 200 && s !== 429), [], 'rate-limited route: 200 or 429 only');
      assert.ok((statuses.limited.get(429) ?? 0) > 0);
      // The Redis counter (replicated) was full before; while it was unreachable each of the two
      // replicas counted alone: at most LIMIT more each.
      assert.ok(admittedLimited <= 2 * LIMIT, `${admittedLimited} admitted during the failover, bound ${2 * LIMIT}`);
      assert.deepEqual([...statuses.sessions.keys()].filter((s) => s !== 200 && s !== 503), []);

      // Nothing written before the crash is lost: the session, the idempotency record, the full counter.
      for (const gw of [a, b]) {
        const kept = await gw.signed({ method: 'GET', target: '/session/kept', as: ALICE });
        assert.equal(kept.status, 200, kept.text);
        const replay = await gw.signed({
          method: 'POST', target: '/auth/test', as: ALICE, body: JSON.stringify({ echo: 'once' }), headers: { 'Idempotency-Key': 'topology-1' },
        });
        assert.equal(header(replay, 'idempotent-replayed'), 'true', replay.text);
      }
      // Back on Redis (the fallback probes every second), the shared counter still says "full".
      const backDeadline = Date.now() + 10_000;
      let health: Response | undefined;
      for (;;) {
        health = await a.request({ method: 'GET', target: '/health' });
        const h2 = await b.request({ method: 'GET', target: '/health' });
        if ((health.json?.ratelimit?.status === 'ok' && h2.json?.ratelimit?.status === 'ok') || Date.now() > backDeadline) break;
        await sleep(200);
      }
      assert.equal(health.json?.ratelimit?.store, 'redis', health.text);
      for (const gw of [a, b]) assert.equal((await gw.signed({ method: 'GET', target: '/auth/test', as: LIMITED })).status, 429);
      // A new session is written to the new master and read by the other gateway.
      const after = await b.signed({ method: 'POST', target: '/session', as: ALICE, body: JSON.stringify({ name: 'after', image: 'ocr' }) });
      assert.equal(after.status, 201, after.text);
      assert.equal((await a.signed({ method: 'GET', target: '/session/after', as: ALICE })).status, 200);
    });

    it('every Redis process gone: limits from memory, sessions 503 within the deadline, then at once (circuit breaker)', async () => {
      await topology.killAll();
      for (const gw of [a, b]) {
        const times: number[] = [];
        for (let i = 0; i < 3; i++) {
          const t0 = performance.now();
          const res = await gw.signed({ method: 'GET', target: '/session/kept', as: ALICE, timeoutMs: 10_000 });
          times.push(performance.now() - t0);
          assert.equal(res.status, 503, res.text);
          assert.equal(res.json?.type, 'https://api.backend.ai/probs/service-unavailable');
          assert.ok(header(res, 'retry-after'), 'Retry-After');
          const limited = await gw.signed({ method: 'GET', target: '/auth/test', as: LIMITED, timeoutMs: 10_000 });
          assert.ok(limited.status === 200 || limited.status === 429, `rate-limited route answered ${limited.status}`);
        }
        // The first waits for the 1 s session deadline (queued, not hung forever); the breaker then answers at once.
        assert.ok(times[0]! < 3000, `first ${Math.round(times[0]!)} ms`);
        assert.ok(times.slice(1).every((ms) => ms < 800), `then ${times.map(Math.round).join(', ')} ms`);
        const health = await gw.request({ method: 'GET', target: '/health' });
        assert.equal(health.status, 200);
        assert.equal(health.json?.ratelimit?.status, 'degraded', health.text);
      }
    });
  });
}

const SESSION_KEY = `kg:sess:{${ALICE.accessKey}}:idx`;

scenario('Redis Cluster: 3 masters with a replica each', async () => {
  const cluster: TestRedisCluster = await startRedisCluster({ masters: 3, replicas: 1, nodeTimeoutMs: 1000 });
  const topology: Topology = {
    storeConfig: `kind = "redis"\nredis_mode = "cluster"\nredis_url = "redis://${cluster.seeds[0]}"\nredis_nodes = ${JSON.stringify(cluster.seeds)}\n`,
    async settle() {
      for (const port of await cluster.masterPorts()) await waitReplicated(port);
    },
    masterPort: () => cluster.masterPortFor(SESSION_KEY),
    async killMaster() {
      const port = await cluster.masterPortFor(SESSION_KEY);
      await cluster.nodes.find((n) => n.port === port)!.kill();
      return port;
    },
    killAll: async () => void (await Promise.all(cluster.nodes.map((n) => n.kill()))),
  };
  return { topology, stop: () => cluster.stop() };
});

scenario('Redis Sentinel: master, replica, one sentinel', async () => {
  const set: TestSentinelSet = await startRedisSentinelSet({ downAfterMs: 1000, failoverTimeoutMs: 3000 });
  const topology: Topology = {
    storeConfig:
      `kind = "redis"\nredis_mode = "sentinel"\nredis_url = "redis://${set.seeds[0]}/0"\n` +
      `redis_nodes = ${JSON.stringify(set.seeds)}\nredis_sentinel_name = "${set.name}"\n`,
    settle: () => waitReplicated(set.master.port),
    masterPort: () => set.masterPort(),
    async killMaster() {
      await set.master.kill();
      return set.master.port;
    },
    killAll: async () => void (await Promise.all([set.master, set.replica, ...set.sentinels].map((n) => n.kill()))),
  };
  return { topology, stop: () => set.stop() };
});
