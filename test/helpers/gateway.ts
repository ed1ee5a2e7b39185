/**
 * Runs a real kernelgate process (the built `bin/kernelgate.js serve`) on a
 * free port with its own temp config and keypair folder, as a user would.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { formatKeypair, type Keypair } from '../../src/keypairs/keypair.js';
import { signRequest, type SignRequestInput } from '../../src/signing/sign-request.js';

export const BIN = resolve(import.meta.dirname, '../../bin/kernelgate.js');

export interface TestKeypair {
  accessKey: string;
  secretKey: string;
  role?: Keypair['role'];
  domain?: string;
  user?: string;
  rateLimit?: number;
  maxSessions?: number;
  isActive?: boolean;
  expiresAt?: number;
  oidcSubjects?: string[];
}

export const ALICE: TestKeypair = { accessKey: 'AKIAKGATEALICE000001', secretKey: 'aliceSecretKey0000000000000000000000000A', role: 'user', user: 'alice@example.com' };
export const BOB: TestKeypair = { accessKey: 'AKIAKGATEBOB00000002', secretKey: 'bobSecretKey00000000000000000000000000B2', role: 'user', user: 'bob@example.com' };
export const ADMIN: TestKeypair = { accessKey: 'AKIAKGATEADMIN000003', secretKey: 'adminSecretKey000000000000000000000000A3', role: 'admin', user: 'admin@example.com' };
export const ROOT: TestKeypair = { accessKey: 'AKIAKGATEROOT0000004', secretKey: 'rootSecretKey0000000000000000000000000R4', role: 'superadmin', user: 'root@example.com' };
export const OTHER_DOMAIN_USER: TestKeypair = { accessKey: 'AKIAKGATECAROL000005', secretKey: 'carolSecretKey00000000000000000000000C5', role: 'user', domain: 'other', user: 'carol@other.example' };
export const OTHER_ADMIN: TestKeypair = { accessKey: 'AKIAKGATEDAVE0000006', secretKey: 'daveSecretKey00000000000000000000000DA6', role: 'admin', domain: 'other', user: 'dave@other.example' };

export function writeKeypair(dir: string, k: TestKeypair, apiKeys?: Keypair['apiKeys']): string {
  const file = join(dir, `${k.accessKey}.toml`);
  writeFileSync(
    file,
    formatKeypair({
      accessKey: k.accessKey,
      secretKey: k.secretKey,
      role: k.role ?? 'user',
      domain: k.domain ?? 'default',
      user: k.user ?? '',
      rateLimit: k.rateLimit,
      maxSessions: k.maxSessions,
      isActive: k.isActive ?? true,
      expiresAt: k.expiresAt,
      oidcSubjects: k.oidcSubjects,
      apiKeys,
    }),
  );
  chmodSync(file, 0o600);
  return file;
}

/**
 * A keypair file with one static API key (as `kernelgate keypair apikey add` writes it, which
 * test/apikey.test.ts covers), written before the gateway starts, so no wait for the folder watcher.
 * Returns the key.
 */
export function writeKeypairWithApiKey(dir: string, k: TestKeypair, scope: 'read' | 'full' = 'full'): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  const key = `kg_${[...randomBytes(32)].map((b) => alphabet[b % 62]).join('')}`;
  writeKeypair(dir, k, [{ id: randomBytes(3).toString('hex'), sha256: createHash('sha256').update(key).digest('hex'), scope, createdAt: Date.now() }]);
  return key;
}

export interface Response {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  text: string;
  json: any;
}

export interface RawRequest {
  method: string;
  /** Sent exactly as given. */
  target: string;
  headers?: Array<[string, string]> | Record<string, string>;
  body?: Buffer | string;
  timeoutMs?: number;
}

/**
 * The first output line from index `from` on that `match`es, waiting for it: the access log is written after
 * the response (asynchronously), so its line can reach the test's pipe a moment after the answer.
 */
export async function waitForLine(gw: { output: string[] }, match: (line: string) => boolean, from = 0, ms = 5000): Promise<string> {
  const deadline = Date.now() + ms;
  for (;;) {
    const line = gw.output.slice(from).find(match);
    if (line !== undefined) return line;
    if (Date.now() > deadline) throw new Error(`no matching output line within ${ms} ms; last lines:\n${gw.output.slice(-10).join('\n')}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** One HTTP request with full control of the target and headers (fetch normalizes both). */
export function rawRequest(port: number, req: RawRequest): Promise<Response> {
  return new Promise((resolvePromise, reject) => {
    const headerList = Array.isArray(req.headers) ? req.headers.flat() : Object.entries(req.headers ?? {}).flat();
    const body = req.body === undefined ? undefined : Buffer.from(req.body);
    const hasHost = headerList.some((v, i) => i % 2 === 0 && v.toLowerCase() === 'host');
    if (!hasHost) headerList.push('Host', `127.0.0.1:${port}`);
    if (body !== undefined) headerList.push('Content-Length', String(body.length));
    const r = httpRequest(
      { host: '127.0.0.1', port, method: req.method, path: req.target, headers: headerList as unknown as Record<string, string>, setHost: false, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const buf = Buffer.concat(chunks);
          const text = buf.toString('utf8');
          let json: unknown;
          try {
            json = text ? JSON.parse(text) : undefined;
          } catch {
            json = undefined;
          }
          resolvePromise({ status: res.statusCode ?? 0, headers: res.headers, body: buf, text, json });
        });
        res.on('error', reject);
      },
    );
    r.setTimeout(req.timeoutMs ?? 30_000, () => r.destroy(new Error('request timed out')));
    r.on('error', reject);
    if (body !== undefined) r.write(body);
    r.end();
  });
}

export interface SignedCall {
  method: string;
  target: string;
  as: TestKeypair;
  body?: Buffer | string;
  contentType?: string;
  headers?: Record<string, string>;
  sign?: Partial<SignRequestInput>;
  timeoutMs?: number;
}

export interface TestGateway {
  port: number;
  url: string;
  dir: string;
  keypairDir: string;
  proc: ChildProcess;
  output: string[];
  request(req: RawRequest): Promise<Response>;
  signed(call: SignedCall): Promise<Response>;
  stop(): Promise<void>;
}

export interface GatewayOptions {
  /** TOML appended to the generated config (sections other than [keypairs]). */
  config?: string;
  keypairs?: TestKeypair[];
  env?: NodeJS.ProcessEnv;
  /** Share a keypair folder with another gateway (replicas). */
  keypairDir?: string;
}

export async function startGateway(opts: GatewayOptions = {}): Promise<TestGateway> {
  const dir = mkdtempSync(join(tmpdir(), 'kernelgate-test-'));
  const keypairDir = opts.keypairDir ?? join(dir, 'keypairs');
  mkdirSync(keypairDir, { recursive: true });
  for (const k of opts.keypairs ?? [ALICE, BOB, ADMIN, ROOT, OTHER_DOMAIN_USER, OTHER_ADMIN]) writeKeypair(keypairDir, k);
  const configFile = join(dir, 'config.toml');
  const config = opts.config ?? '';
  writeFileSync(configFile, `${config.includes('[log]') ? '' : '[log]\nlevel = "warn"\n'}${config}\n[keypairs]\ndir = ${JSON.stringify(keypairDir)}\n`);
  const proc = spawn(process.execPath, [BIN, 'serve', '--config', configFile, '--port', '0'], {
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  const port = await new Promise<number>((resolvePort, reject) => {
    const timer = setTimeout(() => reject(new Error(`gateway did not start:\n${output.join('\n')}`)), 30_000);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`gateway exited with ${code}:\n${output.join('\n')}`));
    });
    proc.stderr!.on('data', (d: Buffer) => output.push(d.toString()));
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      output.push(line);
      if (output.length > 2000) output.splice(0, 1000);
      if (line.includes('kernelgate listening')) {
        clearTimeout(timer);
        resolvePort(JSON.parse(line).port);
      }
    });
  });
  proc.removeAllListeners('exit');
  const gateway: TestGateway = {
    port,
    url: `http://127.0.0.1:${port}`,
    dir,
    keypairDir,
    proc,
    output,
    request: (req) => rawRequest(port, req),
    signed: (call) => {
      const host = `127.0.0.1:${port}`;
      const signedReq = signRequest({
        method: call.method,
        target: call.target,
        host,
        accessKey: call.as.accessKey,
        secretKey: call.as.secretKey,
        body: call.body,
        contentType: call.contentType ?? (call.body !== undefined ? 'application/json' : undefined),
        ...call.sign,
      });
      return rawRequest(port, {
        method: call.method,
        target: call.target,
        headers: { ...signedReq.headers, ...call.headers },
        body: call.body,
        timeoutMs: call.timeoutMs,
      });
    },
    async stop() {
      if (proc.exitCode === null) {
        const exited = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGTERM');
        const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return gateway;
}
