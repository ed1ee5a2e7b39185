/**
 * A private, throw-away redis-server for tests.
 *
 * Every test file starts its own server on a free port with persistence off and
 * a temp working directory, so tests never read, write or flush a shared Redis.
 * This holds even when REDIS_URL is set in the environment: that variable
 * usually points at a developer's or CI's shared instance (127.0.0.1:6379),
 * and a test that ran FLUSHALL or filled it with 100,000 keys there would
 * destroy someone else's data. REDIS_URL is deliberately ignored here.
 *
 * The server is killed when the test process exits (normally or by
 * SIGINT/SIGTERM). A SIGKILL of the test process cannot be intercepted; the
 * orphan then lives on an ephemeral port and holds no data of value.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestRedisServer {
  /** redis://127.0.0.1:<port> */
  readonly url: string;
  readonly port: number;
  /** Stops the server (SIGTERM, waits for exit). Idempotent. */
  stop(): Promise<void>;
  /** Starts it again on the SAME port (an outage that ends), data empty; works after stop() too. */
  restart(): Promise<void>;
  /** Kills the process (SIGKILL): a crash, no shutdown work; restart() works afterwards. */
  kill(): Promise<void>;
  /** Freezes the process (SIGSTOP): connections stay open but nothing answers, like a hung Redis. */
  pause(): void;
  /** Undoes pause() (SIGCONT). */
  resume(): void;
}

export interface StartOptions {
  /** Give up waiting for PING after this long (default 10 s). */
  readyTimeoutMs?: number;
  /** Extra redis-server arguments, e.g. ['--maxmemory', '64mb']. */
  extraArgs?: string[];
  /**
   * A config file's text, written to the server's temp folder and given as its first argument
   * (a sentinel needs a writable config file: it records what it learns there).
   */
  configText?: (port: number) => string;
  /** Run as a Redis Sentinel (`redis-server <config> --sentinel`); needs configText. */
  sentinel?: boolean;
}

const live = new Set<ChildProcess>();
const tempDirs = new Set<string>();
let exitHooksInstalled = false;

function installExitHooks(): void {
  if (exitHooksInstalled) return;
  exitHooksInstalled = true;
  const killAll = () => {
    for (const child of live) {
      try {
        child.kill('SIGKILL');
      } catch {
        /* already gone */
      }
    }
    live.clear();
    for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
    tempDirs.clear();
  };
  process.on('exit', killAll);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    const onSignal = () => {
      killAll();
      // Re-raise with the default disposition so the exit status still says "killed by signal".
      process.removeListener(signal, onSignal);
      process.kill(process.pid, signal);
    };
    process.on(signal, onSignal);
  }
}

/** Asks the kernel for a free port, then releases it for redis-server to bind. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      if (address === null || typeof address === 'string') {
        srv.close();
        reject(new Error('could not determine a free port'));
        return;
      }
      srv.close(() => resolve(address.port));
    });
  });
}

/** One raw RESP PING; avoids pulling ioredis (and its reconnect logic) into readiness checks. */
function pingOnce(port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let buf = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      buf += chunk.toString('latin1');
      if (buf.includes('\r\n')) done(buf.startsWith('+PONG'));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function startRedisServer(opts: StartOptions = {}): Promise<TestRedisServer> {
  installExitHooks();
  const readyTimeoutMs = opts.readyTimeoutMs ?? 10_000;
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'kg-redis-'));
  tempDirs.add(dir);
  let child: ChildProcess | undefined;
  let stderrTail = '';

  const launch = async () => {
    mkdirSync(dir, { recursive: true }); // stop() removes it; restart() after stop() needs it back
    const configFile = join(dir, opts.sentinel ? 'sentinel.conf' : 'redis.conf');
    if (opts.configText) writeFileSync(configFile, opts.configText(port));
    const args = [
      ...(opts.configText ? [configFile] : []),
      ...(opts.sentinel ? ['--sentinel'] : []),
      '--port', String(port),
      '--bind', '127.0.0.1',
      ...(opts.sentinel ? [] : ['--save', '', '--appendonly', 'no']),
      '--dir', dir,
      '--daemonize', 'no',
      '--loglevel', 'warning',
      ...(opts.extraArgs ?? []),
    ];
    const proc = spawn('redis-server', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    child = proc;
    live.add(proc);
    proc.stderr?.on('data', (chunk: Buffer) => {
      stderrTail = (stderrTail + chunk.toString()).slice(-2000);
    });
    let exited = false;
    let spawnError: Error | undefined;
    proc.once('exit', () => {
      exited = true;
      live.delete(proc);
    });
    proc.once('error', (err) => {
      spawnError = err;
    });
    const deadline = Date.now() + readyTimeoutMs;
    while (Date.now() < deadline) {
      if (spawnError) throw new Error(`cannot start redis-server: ${spawnError.message}`);
      if (exited) throw new Error(`redis-server exited during start-up: ${stderrTail}`);
      if (await pingOnce(port, 500)) return;
      await sleep(25);
    }
    proc.kill('SIGKILL');
    throw new Error(`redis-server on port ${port} did not answer PING within ${readyTimeoutMs} ms`);
  };

  const stopChild = async () => {
    const proc = child;
    child = undefined;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.kill('SIGCONT'); // a paused server cannot act on SIGTERM
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  };

  await launch();

  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    async stop() {
      await stopChild();
      rmSync(dir, { recursive: true, force: true });
      tempDirs.delete(dir);
    },
    async restart() {
      await stopChild();
      tempDirs.add(dir);
      await launch();
    },
    async kill() {
      const proc = child;
      child = undefined;
      if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
      proc.kill('SIGKILL');
      await exited;
    },
    pause() {
      child?.kill('SIGSTOP');
    },
    resume() {
      child?.kill('SIGCONT');
    },
  };
}
