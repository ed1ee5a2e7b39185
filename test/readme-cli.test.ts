/**
 * README "CLI" rows that no test ran: keypair create's flags, revoke and revoke --delete, serve's
 * flags overriding the config file, and sign's -d @file and -H.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { parseKeypair } from '../src/keypairs/keypair.js';
import { ocrModelPaths } from '../src/inference/ocr/index.js';
import { ADMIN, ALICE, BIN, startGateway, type TestGateway } from './helpers/gateway.js';

const run = promisify(execFile);

describe('README "CLI": kernelgate keypair', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'kg-readme-cli-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('create writes every flag into a 0600 file named after the key; revoke deactivates; revoke --delete removes', async () => {
    const expires = '2031-05-06T07:08:09Z';
    const created = await run(process.execPath, [
      BIN, 'keypair', 'create', '--dir', dir, '--json',
      '--role', 'admin', '--domain', 'research', '--user', 'ops@example.com',
      '--rate-limit', '77', '--max-sessions', '3', '--expires-at', expires,
    ]);
    const { access_key, secret_key, file } = JSON.parse(created.stdout);
    assert.equal(file, join(dir, `${access_key}.toml`));
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const k = parseKeypair(readFileSync(file, 'utf8'));
    assert.deepEqual(
      { ...k },
      { accessKey: access_key, secretKey: secret_key, role: 'admin', domain: 'research', user: 'ops@example.com', rateLimit: 77, maxSessions: 3, isActive: true, expiresAt: Date.parse(expires) },
    );

    const bad = await run(process.execPath, [BIN, 'keypair', 'create', '--dir', dir, '--role', 'root']).then(() => undefined, (e: { code: number; stderr: string }) => e);
    assert.ok(bad && bad.code !== 0, 'an unknown role is refused');

    await run(process.execPath, [BIN, 'keypair', 'revoke', access_key, '--dir', dir]);
    assert.equal(parseKeypair(readFileSync(file, 'utf8')).isActive, false, 'revoke sets is_active = false');
    assert.ok(existsSync(file), 'revoke alone keeps the file');
    await run(process.execPath, [BIN, 'keypair', 'revoke', access_key, '--dir', dir, '--delete']);
    assert.ok(!existsSync(file), 'revoke --delete removes the file');
  });
});

describe('README "CLI": kernelgate serve flags override the file', () => {
  it('--host and --port win over [server] host and port; --port 0 picks a free port and the log line names it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kg-readme-serve-'));
    const config = join(dir, 'config.toml');
    writeFileSync(config, `[server]\nhost = "203.0.113.1"\nport = 1\n[log]\nlevel = "warn"\n[keypairs]\ndir = ${JSON.stringify(join(dir, 'kp'))}\n`);
    const proc = spawn(process.execPath, [BIN, 'serve', '--config', config, '--host', '127.0.0.1', '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      const listening = await new Promise<Record<string, unknown>>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no listening line')), 20_000);
        let err = '';
        proc.stderr!.on('data', (d) => (err += d));
        proc.once('exit', (code) => reject(new Error(`exited ${code}: ${err}`)));
        createInterface({ input: proc.stdout! }).on('line', (line) => {
          if (line.includes('kernelgate listening')) {
            clearTimeout(timer);
            resolve(JSON.parse(line));
          }
        });
      });
      assert.equal(listening.host, '127.0.0.1');
      assert.equal(typeof listening.port, 'number');
      assert.ok((listening.port as number) > 1024, `port ${listening.port}`);
      const res = await fetch(`http://127.0.0.1:${listening.port}/`);
      assert.equal(res.status, 200);
    } finally {
      proc.kill('SIGTERM');
      await new Promise((r) => (proc.exitCode !== null ? r(undefined) : proc.once('exit', r)));
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('README "CLI": kernelgate sign -d @file and -H', () => {
  let gw: TestGateway;
  let dir: string;
  before(async () => {
    gw = await startGateway({ keypairs: [ALICE] });
    dir = mkdtempSync(join(tmpdir(), 'kg-readme-sign-'));
  });
  after(async () => {
    await gw?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('sends a file body as signed JSON and extra headers (here an Idempotency-Key that replays)', async () => {
    const file = join(dir, 'body.json');
    writeFileSync(file, JSON.stringify({ echo: 'from a file' }));
    const env = { ...process.env, KERNELGATE_ENDPOINT: gw.url, KERNELGATE_ACCESS_KEY: ALICE.accessKey, KERNELGATE_SECRET_KEY: ALICE.secretKey };
    const sign = async (args: string[]) => (await run(process.execPath, [BIN, 'sign', ...args], { env })).stdout;
    const out = await sign(['POST', '/auth/test', '-d', `@${file}`]);
    assert.deepEqual(JSON.parse(out), { authorized: 'yes', echo: 'from a file' });
    const key = `cli-${Date.now()}`;
    const first = await sign(['POST', '/auth/test', '-d', `@${file}`, '-H', `Idempotency-Key: ${key}`, '-i']);
    assert.match(first, /^HTTP\/1\.1 200/);
    assert.doesNotMatch(first, /idempotent-replayed/i);
    const again = await sign(['POST', '/auth/test', '-d', `@${file}`, '-H', `Idempotency-Key: ${key}`, '-i']);
    assert.match(again, /^idempotent-replayed: true$/im, 'the -H header reached the gateway');
  });

  it('takes the keypair from -k FILE or BACKEND_ACCESS_KEY/BACKEND_SECRET_KEY, the endpoint from --endpoint or BACKEND_ENDPOINT', async () => {
    const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(KERNELGATE|BACKEND)_/.test(k)));
    const sign = async (args: string[], env: NodeJS.ProcessEnv) => JSON.parse((await run(process.execPath, [BIN, 'sign', ...args], { env: { ...clean, ...env } })).stdout);
    const viaBackendEnv = await sign(['GET', '/auth/test?echo=backend-env'], { BACKEND_ENDPOINT: gw.url, BACKEND_ACCESS_KEY: ALICE.accessKey, BACKEND_SECRET_KEY: ALICE.secretKey });
    assert.deepEqual(viaBackendEnv, { authorized: 'yes', echo: 'backend-env' });
    const file = join(gw.keypairDir, `${ALICE.accessKey}.toml`);
    const viaFile = await sign(['GET', '/auth/test?echo=file', '-k', file, '--endpoint', gw.url], {});
    assert.deepEqual(viaFile, { authorized: 'yes', echo: 'file' });
  });
});

describe('README "CLI": kernelgate model backup > b.json, model restore b.json', () => {
  let from: TestGateway;
  let to: TestGateway;
  let dir: string;
  before(async () => {
    [from, to] = await Promise.all([
      startGateway({ keypairs: [ADMIN], config: '[server]\nbody_limit_bytes = 4194304\n' }),
      startGateway({ keypairs: [ADMIN], config: '[server]\nbody_limit_bytes = 4194304\n' }),
    ]);
    dir = mkdtempSync(join(tmpdir(), 'kg-readme-backup-'));
  });
  after(async () => {
    await Promise.all([from?.stop(), to?.stop()]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('carries a custom model from one gateway to another', async () => {
    const adminFile = join(from.keypairDir, `${ADMIN.accessKey}.toml`);
    const model = async (gw: TestGateway, args: string[]) => (await run(process.execPath, [BIN, 'model', ...args, '-k', adminFile, '--endpoint', gw.url], { maxBuffer: 64 * 1024 * 1024 })).stdout;
    const config = join(dir, 'textdir.json');
    writeFileSync(config, JSON.stringify({ name: 'textdir', task: 'classify', input: { width: 192, height: 48 }, normalize: { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] }, labels: ['0', '180'] }));
    await model(from, ['upload', '--config', config, '--onnx', ocrModelPaths().classifier]);
    const backup = join(dir, 'b.json');
    writeFileSync(backup, await model(from, ['backup']));
    assert.equal(JSON.parse(readFileSync(backup, 'utf8')).models.length, 1);
    const restored = JSON.parse(await model(to, ['restore', backup]));
    assert.deepEqual(restored.restored, ['textdir']);
    const listed = JSON.parse(await model(to, ['list']));
    const textdir = listed.models.find((m: { name: string }) => m.name === 'textdir');
    assert.ok(textdir, JSON.stringify(listed));
    assert.equal(textdir.sha256, JSON.parse(await model(from, ['list'])).models.find((m: { name: string }) => m.name === 'textdir').sha256);
  });
});
