/**
 * Keypair folders as an operator meets them: the published example keypairs
 * (examples/keypairs/) never open a gateway to the network, a broken file is
 * reported once per change, `keypair create` is atomic, and a missing folder
 * says how to make one.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { parseKeypair } from '../src/keypairs/keypair.js';
import { hasPublishedSecret, isLoopbackHost, PUBLISHED_SECRET_SHA256 } from '../src/keypairs/published.js';
import { ALICE, BIN, startGateway, writeKeypair, type TestGateway } from './helpers/gateway.js';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '..');
const EXAMPLES = join(ROOT, 'examples', 'keypairs');
const EXAMPLE_CONFIG = join(ROOT, 'examples', 'config.toml');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Served {
  proc: ChildProcess;
  output: string[];
  /** The exit code if the process ended before it listened, else the port. */
  result: Promise<{ exitCode: number } | { port: number }>;
  stop(): Promise<void>;
}

function serve(args: string[], cwd = ROOT): Served {
  const proc = spawn(process.execPath, [BIN, 'serve', '--port', '0', ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  const output: string[] = [];
  proc.stderr!.on('data', (d: Buffer) => output.push(d.toString()));
  const result = new Promise<{ exitCode: number } | { port: number }>((resolveResult, reject) => {
    const timer = setTimeout(() => reject(new Error(`neither listened nor exited:\n${output.join('\n')}`)), 30_000);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      resolveResult({ exitCode: code ?? -1 });
    });
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      output.push(line);
      if (line.includes('kernelgate listening')) {
        clearTimeout(timer);
        resolveResult({ port: JSON.parse(line).port });
      }
    });
  });
  return {
    proc,
    output,
    result,
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      await exited;
    },
  };
}

describe('published example keypairs', () => {
  const running: Served[] = [];
  after(async () => {
    for (const s of running) await s.stop();
  });

  it('lists the SHA-256 of every example secret and the AWS documentation example', () => {
    const files = readdirSync(EXAMPLES).filter((n) => n.endsWith('.toml'));
    assert.ok(files.length >= 3);
    for (const name of files) {
      const k = parseKeypair(readFileSync(join(EXAMPLES, name), 'utf8'));
      assert.ok(hasPublishedSecret(k), `${name} is not in the published list`);
    }
    assert.ok(PUBLISHED_SECRET_SHA256.has(createHash('sha256').update('wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY').digest('hex')));
    assert.ok(!hasPublishedSecret({ secretKey: ALICE.secretKey }));
  });

  it('are not in the default keypair folder, which a fresh clone still has', () => {
    const names = readdirSync(join(ROOT, 'keypairs'));
    assert.ok(names.includes('README.md'), 'keypairs/ exists (kept in git by its README)');
    for (const name of names.filter((n) => n.endsWith('.toml'))) {
      let secretKey: string;
      try {
        secretKey = parseKeypair(readFileSync(join(ROOT, 'keypairs', name), 'utf8')).secretKey;
      } catch {
        continue; // a developer's broken file is not a published secret
      }
      assert.ok(!hasPublishedSecret({ secretKey }), `keypairs/${name} carries a published secret`);
    }
    assert.ok(readdirSync(EXAMPLES).includes('AKIAEXAMPLESUPER0001.toml'));
  });

  it('stop a gateway from listening on a non-loopback address, naming the file', async () => {
    for (const host of ['0.0.0.0', '::']) {
      const s = serve(['--config', EXAMPLE_CONFIG, '--host', host]);
      running.push(s);
      const r = await s.result;
      assert.ok('exitCode' in r, `the gateway listened on ${host}:\n${s.output.join('\n')}`);
      assert.notEqual(r.exitCode, 0);
      const text = s.output.join('\n');
      assert.match(text, new RegExp(`refusing to listen on ${host.replace(/\./g, '\\.')}`));
      assert.ok(text.includes(join(EXAMPLES, 'AKIAEXAMPLESUPER0001.toml')), text);
      assert.match(text, /published in the kernelgate repository/);
    }
  });

  it('run on 127.0.0.1 with a warning naming the files', async () => {
    const s = serve(['--config', EXAMPLE_CONFIG, '--host', '127.0.0.1']);
    running.push(s);
    const r = await s.result;
    assert.ok('port' in r, s.output.join('\n'));
    const warning = s.output.find((l) => l.includes('published in the kernelgate repository'));
    assert.ok(warning, s.output.join('\n'));
    assert.ok(warning.includes(join(EXAMPLES, 'AKIAIOSFODNN7EXAMPLE.toml')));
    assert.equal(JSON.parse(s.output.find((l) => l.includes('kernelgate listening'))!).keypairs, 3);
    const signed = await run(process.execPath, [BIN, 'sign', 'GET', '/auth/role', '-k', join(EXAMPLES, 'AKIAEXAMPLEADMIN0001.toml'), '--endpoint', `http://127.0.0.1:${r.port}`]);
    assert.equal(JSON.parse(signed.stdout).role, 'admin');
    await s.stop();
  });

  it('are refused when one appears in the folder of a gateway listening on 0.0.0.0', async () => {
    const gw = await startGateway({ config: '[server]\nhost = "0.0.0.0"\n[log]\nlevel = "warn"\n', keypairs: [ALICE] });
    try {
      copyFileSync(join(EXAMPLES, 'AKIAEXAMPLEADMIN0001.toml'), join(gw.keypairDir, 'AKIAEXAMPLEADMIN0001.toml'));
      writeKeypair(gw.keypairDir, { ...ALICE, accessKey: 'AKIAKGATEPLAIN000009' });
      await sleep(2500); // one rescan at the latest
      const admin = parseKeypair(readFileSync(join(EXAMPLES, 'AKIAEXAMPLEADMIN0001.toml'), 'utf8'));
      const refused = await gw.signed({ method: 'GET', target: '/auth/test', as: admin });
      assert.equal(refused.status, 401);
      const plain = await gw.signed({ method: 'GET', target: '/auth/test', as: { ...ALICE, accessKey: 'AKIAKGATEPLAIN000009' } });
      assert.equal(plain.status, 200, 'other keypairs still load');
      const lines = gw.output.filter((l) => l.includes('refusing keypair file'));
      assert.equal(lines.length, 1, gw.output.join('\n'));
      assert.ok(lines[0].includes(join(gw.keypairDir, 'AKIAEXAMPLEADMIN0001.toml')));
    } finally {
      await gw.stop();
    }
  });

  it('knows which listen addresses are loopback', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', '::1', '0:0:0:0:0:0:0:1', '[::1]', 'localhost', '::ffff:127.0.0.1']) assert.ok(isLoopbackHost(h), h);
    for (const h of ['0.0.0.0', '::', '', '10.0.0.1', '192.168.1.1', 'example.com', '::ffff:10.0.0.1', '128.0.0.1']) assert.ok(!isLoopbackHost(h), h);
  });
});

describe('keypair folder changes', () => {
  let gw: TestGateway;
  after(() => gw?.stop());

  it('reports a broken keypair file once per change, not on every rescan', async () => {
    gw = await startGateway({ keypairs: [ALICE] });
    const broken = join(gw.keypairDir, 'AKIAKGATEBROKEN00001.toml');
    writeFileSync(broken, 'access_key = "AKIAKGATEBROKEN00001"\nsecret_key = \n');
    const warnings = () => gw.output.filter((l) => l.includes('ignoring invalid keypair file') && l.includes('AKIAKGATEBROKEN00001'));
    await sleep(5500); // two rescans and more
    assert.equal(warnings().length, 1, gw.output.join('\n'));
    // A change to the file is reported again (once).
    writeFileSync(broken, 'access_key = "AKIAKGATEBROKEN00001"\nsecret_key = "short"\n');
    await sleep(2500);
    assert.equal(warnings().length, 2, gw.output.join('\n'));
    // Fixed: it loads.
    writeKeypair(gw.keypairDir, { ...ALICE, accessKey: 'AKIAKGATEBROKEN00001' });
    await sleep(2500);
    const ok = await gw.signed({ method: 'GET', target: '/auth/test', as: { ...ALICE, accessKey: 'AKIAKGATEBROKEN00001' } });
    assert.equal(ok.status, 200);
    assert.equal(warnings().length, 2);
  });

  it('never sees half a file from keypair create (written to a temp file, then renamed, mode 0600)', async () => {
    const before = gw.output.length;
    const created = await Promise.all(
      Array.from({ length: 8 }, () => run(process.execPath, [BIN, 'keypair', 'create', '--dir', gw.keypairDir, '--json']).then((r) => JSON.parse(r.stdout))),
    );
    await sleep(500);
    const noise = gw.output.slice(before).filter((l) => l.includes('invalid keypair'));
    assert.deepEqual(noise, []);
    for (const c of created) {
      const res = await gw.signed({ method: 'GET', target: '/auth/test', as: { accessKey: c.access_key, secretKey: c.secret_key } });
      assert.equal(res.status, 200);
    }
    const files = readdirSync(gw.keypairDir);
    assert.deepEqual(files.filter((f) => !f.endsWith('.toml')), [], 'no temp files left behind');
  });

  it('says once that a missing folder does not exist and how to create one', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'kg-nofolder-'));
    writeFileSync(join(cwd, 'config.toml'), '[log]\nlevel = "warn"\n');
    const s = serve(['--config', join(cwd, 'config.toml')], cwd);
    try {
      const r = await s.result;
      assert.ok('port' in r, s.output.join('\n'));
      await sleep(4500);
      const lines = s.output.filter((l) => l.includes('does not exist'));
      assert.equal(lines.length, 1, s.output.join('\n'));
      assert.ok(lines[0].includes(`folder ${join(cwd, 'keypairs')}/ does not exist; create one with kernelgate keypair create`), lines[0]);
      assert.ok(!s.output.some((l) => l.includes('cannot watch')), s.output.join('\n'));
    } finally {
      await s.stop();
      rmSync(cwd, { recursive: true, force: true });
    }
  });
});
