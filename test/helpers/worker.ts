/**
 * `kernelgate worker` as a child process on a free port (tests and benchmarks): started from the built
 * CLI, ready once `GET /v2/health/ready` answers 200 (the built-in models are loaded), stopped with
 * SIGTERM (or killed, to play a crashed GPU node).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { BIN, rawRequest } from './gateway.js';

export interface TestWorker {
  port: number;
  url: string;
  proc: ChildProcess;
  output: string[];
  /** SIGKILL, as a crashed machine. */
  kill(): Promise<void>;
  stop(): Promise<void>;
}

export interface WorkerOptions {
  /** TOML of the generated config ([inference], [worker], ...). */
  config?: string;
  port?: number;
  token?: string;
  args?: string[];
}

export async function startWorker(opts: WorkerOptions = {}): Promise<TestWorker> {
  const dir = mkdtempSync(join(tmpdir(), 'kernelgate-worker-'));
  const configFile = join(dir, 'config.toml');
  const config = opts.config ?? '';
  writeFileSync(configFile, `${config.includes('[log]') ? '' : '[log]\nlevel = "warn"\n'}${config}\n`);
  const args = [BIN, 'worker', '--config', configFile, '--port', String(opts.port ?? 0), ...(opts.args ?? [])];
  const proc = spawn(process.execPath, args, { env: { ...process.env, KERNELGATE_WORKER_TOKEN: opts.token ?? '' }, stdio: ['ignore', 'pipe', 'pipe'] });
  const output: string[] = [];
  proc.stderr!.on('data', (d: Buffer) => output.push(d.toString()));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`worker did not start:\n${output.join('\n')}`)), 30_000);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`worker exited with ${code}:\n${output.join('\n')}`));
    });
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      output.push(line);
      if (output.length > 2000) output.splice(0, 1000);
      if (line.includes('kernelgate worker listening')) {
        clearTimeout(timer);
        resolve(JSON.parse(line).port);
      }
    });
  });
  proc.removeAllListeners('exit');
  const deadline = Date.now() + 60_000;
  for (;;) {
    const res = await rawRequest(port, { method: 'GET', target: '/v2/health/ready' }).catch(() => undefined);
    if (res?.status === 200) break;
    if (Date.now() > deadline) throw new Error(`worker never became ready:\n${output.join('\n')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const exited = () => (proc.exitCode !== null || proc.signalCode !== null ? Promise.resolve() : new Promise<void>((r) => proc.once('exit', () => r())));
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    proc,
    output,
    async kill() {
      const done = exited();
      proc.kill('SIGKILL');
      await done;
      rmSync(dir, { recursive: true, force: true });
    },
    async stop() {
      const done = exited();
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await done;
      clearTimeout(timer);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
