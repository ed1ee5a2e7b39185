/**
 * Real Redis Cluster and Sentinel sets for tests, built from private redis-servers
 * (./redis-server.ts: free ports, temp folders, killed on exit). Nothing here
 * touches the shared Redis on 6379.
 */
import { execFile } from 'node:child_process';
import { Redis } from 'ioredis';
import { startRedisServer, type TestRedisServer } from './redis-server.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A one-off admin connection (no retries, no offline queue surprises). */
export function adminClient(port: number): Redis {
  const c = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: 0, enableOfflineQueue: false, lazyConnect: false, retryStrategy: () => null });
  c.on('error', () => {});
  return c;
}

async function withAdmin<T>(port: number, fn: (c: Redis) => Promise<T>): Promise<T> {
  const c = adminClient(port);
  try {
    await new Promise<void>((resolve, reject) => {
      if (c.status === 'ready') return resolve();
      c.once('ready', () => resolve());
      c.once('end', () => reject(new Error(`cannot connect to 127.0.0.1:${port}`)));
    });
    return await fn(c);
  } finally {
    c.disconnect();
  }
}

async function until(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      /* not yet */
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(100);
  }
}

const infoField = (info: string, field: string) => new RegExp(`^${field}:(.*)$`, 'm').exec(info)?.[1]?.trim();

/** Whether redis-cli (Debian's redis-tools, installed with redis-server) is on PATH. */
function hasRedisCli(): Promise<boolean> {
  return new Promise((resolve) => execFile('redis-cli', ['--version'], (err) => resolve(!err)));
}

/**
 * Resolves once every replica of the master on `port` has acknowledged all of its writes so far
 * (replication is asynchronous: what a replica has not received is lost when its master dies).
 */
export function waitReplicated(port: number, timeoutMs = 5000): Promise<void> {
  return withAdmin(port, async (c) => {
    const target = Number(infoField(await c.info('replication'), 'master_repl_offset'));
    await until(`replicas of ${port} to reach offset ${target}`, timeoutMs, async () => {
      const info = await c.info('replication');
      const offsets = [...info.matchAll(/^slave\d+:.*offset=(\d+)/gm)].map((m) => Number(m[1]));
      return offsets.length > 0 && offsets.every((o) => o >= target);
    });
  });
}

export interface TestRedisCluster {
  /** Every node; nodes[0..masters-1] start as masters, the rest as their replicas. */
  readonly nodes: TestRedisServer[];
  /** "127.0.0.1:port" of the first masters, for [store] redis_nodes. */
  readonly seeds: string[];
  /** The port of the node that serves `key`'s slot as master now. */
  masterPortFor(key: string): Promise<number>;
  /** The ports of the nodes serving slots now. */
  masterPorts(): Promise<number[]>;
  /** Resolves when every slot is served again (cluster_state:ok seen from `viaPort`). */
  waitHealthy(viaPort: number, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export interface ClusterOptions {
  masters?: number;
  /** Replicas per master (0 or 1 here). */
  replicas?: number;
  /** cluster-node-timeout: how long a master is unreachable before its replica takes over (default 1000 ms). */
  nodeTimeoutMs?: number;
}

/**
 * `masters` masters (default 3) with `replicas` replicas each, joined with
 * `redis-cli --cluster create` (or, where redis-cli is missing, by hand with
 * CLUSTER ADDSLOTSRANGE / MEET / REPLICATE), all slots covered and replicas in sync.
 */
export async function startRedisCluster(opts: ClusterOptions = {}): Promise<TestRedisCluster> {
  const masters = opts.masters ?? 3;
  const replicas = opts.replicas ?? 0;
  // repl-diskless-sync-delay 0: replicas sync at once, not after Redis's default 5 s wait for more of them.
  const args = ['--repl-diskless-sync-delay', '0', '--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', String(opts.nodeTimeoutMs ?? 1000)];
  const nodes = await Promise.all(Array.from({ length: masters * (1 + replicas) }, () => startRedisServer({ extraArgs: args })));
  try {
    const addresses = nodes.map((n) => `127.0.0.1:${n.port}`);
    if (await hasRedisCli()) {
      await new Promise<void>((resolve, reject) =>
        execFile(
          'redis-cli',
          ['--cluster', 'create', ...addresses, '--cluster-replicas', String(replicas), '--cluster-yes'],
          { timeout: 30_000 },
          (err, stdout, stderr) => (err ? reject(new Error(`redis-cli --cluster create failed: ${stderr || stdout}`)) : resolve()),
        ),
      );
    } else {
      await joinByHand(nodes, masters, replicas);
    }
    for (const n of nodes) await until(`cluster_state:ok on ${n.port}`, 20_000, () => withAdmin(n.port, async (c) => /cluster_state:ok/.test(await c.cluster('INFO'))));
    for (const n of nodes) {
      await until(`replication on ${n.port}`, 20_000, () =>
        withAdmin(n.port, async (c) => {
          const info = await c.info('replication');
          return infoField(info, 'role') === 'master' || infoField(info, 'master_link_status') === 'up';
        }),
      );
    }
  } catch (error) {
    await Promise.all(nodes.map((n) => n.stop()));
    throw error;
  }
  return {
    nodes,
    seeds: nodes.slice(0, masters).map((n) => `127.0.0.1:${n.port}`),
    async masterPortFor(key) {
      for (const n of nodes) {
        try {
          return await withAdmin(n.port, async (c) => {
            const slot = await c.cluster('KEYSLOT', key);
            const ranges = await c.cluster('SLOTS');
            const range = ranges.find(([from, to]) => slot >= from && slot <= to);
            if (!range) throw new Error(`slot ${slot} is not served`);
            return Number(range[2]![1]);
          });
        } catch {
          /* that node is down; ask another */
        }
      }
      throw new Error('no cluster node answers');
    },
    async masterPorts() {
      for (const n of nodes) {
        try {
          return await withAdmin(n.port, async (c) => {
            const ranges = await c.cluster('SLOTS');
            return [...new Set(ranges.map((r) => Number(r[2]![1])))];
          });
        } catch {
          /* that node is down; ask another */
        }
      }
      throw new Error('no cluster node answers');
    },
    waitHealthy: (viaPort, timeoutMs = 20_000) =>
      until('cluster_state:ok', timeoutMs, () => withAdmin(viaPort, async (c) => /cluster_state:ok/.test(await c.cluster('INFO')))),
    async stop() {
      await Promise.all(nodes.map((n) => n.stop()));
    },
  };
}

async function joinByHand(nodes: TestRedisServer[], masters: number, replicas: number): Promise<void> {
  const per = Math.ceil(16384 / masters);
  for (let i = 0; i < masters; i++) {
    await withAdmin(nodes[i]!.port, (c) => c.cluster('ADDSLOTSRANGE', i * per, Math.min(16383, (i + 1) * per - 1)));
  }
  for (const n of nodes.slice(1)) await withAdmin(n.port, (c) => c.cluster('MEET', '127.0.0.1', nodes[0]!.port));
  if (replicas === 0) return;
  const ids = await Promise.all(nodes.slice(0, masters).map((n) => withAdmin(n.port, (c) => c.cluster('MYID') as Promise<string>)));
  for (let r = 0; r < masters * replicas; r++) {
    const replica = nodes[masters + r]!;
    const masterId = ids[r % masters]!;
    await until(`node ${replica.port} to learn ${masterId}`, 10_000, () =>
      withAdmin(replica.port, async (c) => ((await c.cluster('NODES')) as string).includes(masterId)),
    );
    await withAdmin(replica.port, (c) => c.cluster('REPLICATE', masterId));
  }
}

export interface TestSentinelSet {
  readonly master: TestRedisServer;
  readonly replica: TestRedisServer;
  readonly sentinels: TestRedisServer[];
  readonly name: string;
  /** "127.0.0.1:port" of each sentinel, for [store] redis_nodes. */
  readonly seeds: string[];
  /** The port the sentinels name as master now. */
  masterPort(): Promise<number>;
  stop(): Promise<void>;
}

export interface SentinelOptions {
  name?: string;
  sentinels?: number;
  /** down-after-milliseconds (default 1000). */
  downAfterMs?: number;
  /** failover-timeout (default 3000). */
  failoverTimeoutMs?: number;
}

/**
 * One master, one replica in sync, and `sentinels` (default 1, quorum = majority)
 * sentinels that know both before this resolves, so a failover can start at once.
 */
export async function startRedisSentinelSet(opts: SentinelOptions = {}): Promise<TestSentinelSet> {
  const name = opts.name ?? 'kgmaster';
  const count = opts.sentinels ?? 1;
  const master = await startRedisServer({ extraArgs: ['--repl-diskless-sync-delay', '0'] });
  const replica = await startRedisServer({ extraArgs: ['--repl-diskless-sync-delay', '0', '--replicaof', '127.0.0.1', String(master.port)] });
  const sentinels: TestRedisServer[] = [];
  try {
    await until('the replica to sync', 10_000, () => withAdmin(replica.port, async (c) => infoField(await c.info('replication'), 'master_link_status') === 'up'));
    const conf = (port: number) =>
      [
        `port ${port}`,
        'bind 127.0.0.1',
        `sentinel monitor ${name} 127.0.0.1 ${master.port} ${Math.floor(count / 2) + 1}`,
        `sentinel down-after-milliseconds ${name} ${opts.downAfterMs ?? 1000}`,
        `sentinel failover-timeout ${name} ${opts.failoverTimeoutMs ?? 3000}`,
        `sentinel parallel-syncs ${name} 1`,
        '',
      ].join('\n');
    for (let i = 0; i < count; i++) sentinels.push(await startRedisServer({ sentinel: true, configText: conf }));
    for (const s of sentinels) {
      await until(`sentinel ${s.port} to see the replica${count > 1 ? ' and the other sentinels' : ''}`, 20_000, () =>
        withAdmin(s.port, async (c) => {
          const reps = (await c.call('SENTINEL', 'REPLICAS', name)) as string[][];
          const ok = reps.some((r) => {
            const f = Object.fromEntries(r.flatMap((v, i, a) => (i % 2 ? [] : [[v, a[i + 1]]])));
            return f.port === String(replica.port) && f.flags === 'slave' && f['master-link-status'] === 'ok';
          });
          if (!ok || count === 1) return ok;
          return ((await c.call('SENTINEL', 'SENTINELS', name)) as unknown[]).length === count - 1;
        }),
      );
    }
  } catch (error) {
    await Promise.all([...sentinels, replica, master].map((n) => n.stop()));
    throw error;
  }
  return {
    master,
    replica,
    sentinels,
    name,
    seeds: sentinels.map((s) => `127.0.0.1:${s.port}`),
    async masterPort() {
      for (const s of sentinels) {
        try {
          const [, port] = await withAdmin(s.port, (c) => c.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name) as Promise<[string, string]>);
          return Number(port);
        } catch {
          /* ask the next one */
        }
      }
      throw new Error('no sentinel answers');
    },
    async stop() {
      await Promise.all([...sentinels, replica, master].map((n) => n.stop()));
    },
  };
}
