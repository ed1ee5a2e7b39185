/**
 * Spool folders left by killed gateways (README "Upload limits and spooling", src/http/spool-sweep.ts): a
 * gateway killed mid-upload leaves its folder and half-written body; the next gateway to start removes it,
 * and nothing else: not a live gateway's folder (nor its upload in flight), not a folder it cannot judge, not
 * what a symlink points to, not a parent folder that is not safely ours. Real gateway processes and folders.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import fc from 'fast-check';
import { join } from 'node:path';
import { currentOwner, ownerGone, parseOwner, type SpoolOwner } from '../src/http/spool-owner.js';
import { createSpoolDir } from '../src/http/spool.js';
import { openSpoolParent, sweepSpools } from '../src/http/spool-sweep.js';
import { multipartBody, tinyModelForm } from './helpers/deepstack.js';
import { ADMIN, startGateway, waitForLine, type TestGateway } from './helpers/gateway.js';
import { dribble } from './helpers/slow-client.js';

const uid = process.getuid!();
const parentIn = (tmp: string) => join(tmp, `kernelgate-spools-${uid}`);

/** A gateway's spool folder: the one under the parent named after its PID. */
function spoolOf(tmp: string, gw: TestGateway): string {
  const names = readdirSync(parentIn(tmp)).filter((n) => n.startsWith(`${gw.proc.pid}-`) && !n.endsWith('.owner'));
  assert.equal(names.length, 1, `one spool folder of pid ${gw.proc.pid}: ${names.join(', ')}`);
  return join(parentIn(tmp), names[0]!);
}

async function waitFor<T>(what: string, probe: () => T | undefined, ms = 10_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > until) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The size of the one file in `dir` once it holds at least `min` bytes. */
const fileOver = (dir: string, min: number) => () => {
  const names = readdirSync(dir);
  if (names.length !== 1) return undefined;
  const size = statSync(join(dir, names[0]!)).size;
  return size >= min ? { name: names[0]!, size } : undefined;
};

describe('spool sweep: a killed gateway\'s folder goes at the next start, a live one\'s stays', () => {
  let tmp: string;
  const gateways: TestGateway[] = [];
  const start = async (level = 'warn') => {
    const gw = await startGateway({ env: { TMPDIR: tmp }, config: `[log]\nlevel = "${level}"\n[server]\nupload_limit_bytes = ${16 * 1024 * 1024}\n` });
    gateways.push(gw);
    return gw;
  };
  before(() => {
    tmp = mkdtempSync(join(tmpdir(), 'kernelgate-sweep-'));
  });
  after(async () => {
    // A killed gateway has no exit left to wait for: only its files go.
    await Promise.all(gateways.map((g) => (g.proc.signalCode === null ? g.stop() : rmSync(g.dir, { recursive: true, force: true }))));
    rmSync(tmp, { recursive: true, force: true });
  });

  it('SIGKILL mid-upload leaves the half-written body; the next gateway removes that folder only, logging count and bytes', async () => {
    const dead = await start();
    const live = await start();
    const deadDir = spoolOf(tmp, dead);
    const liveDir = spoolOf(tmp, live);
    assert.equal(statSync(parentIn(tmp)).mode & 0o777, 0o700);

    // The doomed upload: 4 MiB arriving slowly, killed with its body partly on disk.
    const junk = multipartBody([{ name: 'model', file: Buffer.alloc(4 * 1024 * 1024, 7), filename: 'model.onnx' }]);
    const doomed = dribble(dead, ADMIN, '/models', junk.body, junk.contentType, 40, 100).catch(() => undefined);
    await waitFor('part of the doomed body on disk', fileOver(deadDir, 300_000));
    const exited = new Promise((r) => dead.proc.once('exit', r));
    dead.proc.kill('SIGKILL');
    await exited;
    await doomed;
    const left = fileOver(deadDir, 1)()!;
    assert.ok(left.size > 0 && left.size < junk.body.length, `a half-written body is left: ${left.size} of ${junk.body.length}`);
    assert.ok(existsSync(`${deadDir}.owner`));

    // An upload in flight on the live gateway while a third one starts and sweeps.
    const form = tinyModelForm('survivor');
    const survivor = dribble(live, ADMIN, '/models', form.body, form.contentType, 25, 250);
    const inFlight = await waitFor('the live upload on disk', fileOver(liveDir, 1));
    const third = await start('info');
    const line = JSON.parse(await waitForLine(third, (l) => l.includes('removed spool folders')));
    assert.equal(line.level, 30, 'info');
    assert.equal(line.folders, 1);
    assert.equal(line.bytes, left.size);
    assert.ok(!JSON.stringify(line).includes(left.name), 'no file name in the log');

    assert.ok(!existsSync(deadDir), 'the dead gateway\'s folder is gone');
    assert.ok(!existsSync(`${deadDir}.owner`), 'and its marker');
    assert.ok(existsSync(`${liveDir}.owner`));
    const still = fileOver(liveDir, 1)();
    assert.equal(still?.name, inFlight.name, 'the live gateway\'s upload in flight is untouched');
    assert.equal((await survivor).status, 201, 'and completes');
    await waitFor('the live spool file to go', () => (readdirSync(liveDir).length === 0 ? true : undefined));
    assert.ok(existsSync(spoolOf(tmp, third)), 'the sweeping gateway has its own folder');

    // Closing removes a gateway's folder and marker.
    await live.stop();
    assert.ok(!existsSync(liveDir) && !existsSync(`${liveDir}.owner`));
  });
});

describe('spool sweep: what it judges and what it leaves alone', () => {
  let tmp: string;
  let parent: string;
  const here = currentOwner();
  before(() => {
    tmp = mkdtempSync(join(tmpdir(), 'kernelgate-sweep-unit-'));
    parent = (openSpoolParent(tmp) as { path: string }).path;
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  let n = 0;
  /** A spool folder holding `bytes` bytes, with a marker holding `marker` (an owner, or raw text). */
  const folder = (marker: SpoolOwner | string | undefined, bytes = 1000) => {
    const name = `${typeof marker === 'object' ? marker.pid : 4242}-${(++n).toString(16).padStart(16, '0')}`;
    const path = join(parent, name);
    mkdirSync(path, { mode: 0o700 });
    writeFileSync(join(path, 'x.body'), Buffer.alloc(bytes));
    if (marker !== undefined) writeFileSync(`${path}.owner`, typeof marker === 'string' ? marker : JSON.stringify(marker), { mode: 0o600 });
    return path;
  };

  it('removes only folders whose owner is surely gone (an exited PID, a reused PID, an earlier boot)', async () => {
    const exited = spawnSync(process.execPath, ['-e', '']).pid!;
    const gone = [
      folder({ ...here, pid: exited, start: '1' }, 100),
      folder({ ...here, start: '1' }, 200), // our own PID with another start time: a reused PID
      folder({ ...here, boot: 'an-earlier-boot' }, 300),
    ];
    const kept = [
      folder(here), // alive: this very process
      folder({ ...here, host: 'another-host', pid: exited }), // another machine sharing the temp folder
      folder({ ...here, pidns: 'pid:[1]', pid: exited }), // another PID namespace (a container)
      folder(undefined), // no marker: never judged
      folder('{"pid": "1"'), // a marker that does not parse
    ];
    // A marker that is a symlink to a dead owner's marker, and a dead owner's "folder" that is a symlink.
    const outside = mkdtempSync(join(tmp, 'outside-'));
    writeFileSync(join(outside, 'keep'), 'keep');
    writeFileSync(join(outside, 'dead.owner'), JSON.stringify({ ...here, pid: exited, start: '1' }));
    const linkedMarker = join(parent, `${exited}-${'f'.repeat(16)}`);
    mkdirSync(linkedMarker);
    symlinkSync(join(outside, 'dead.owner'), `${linkedMarker}.owner`);
    const linkedFolder = join(parent, `${exited}-${'e'.repeat(16)}`);
    symlinkSync(outside, linkedFolder);
    writeFileSync(`${linkedFolder}.owner`, JSON.stringify({ ...here, pid: exited, start: '1' }));

    assert.deepEqual(await sweepSpools(parent, here), { folders: 3, bytes: 600 });
    for (const p of gone) assert.ok(!existsSync(p) && !existsSync(`${p}.owner`), p);
    for (const p of kept) assert.ok(existsSync(join(p, 'x.body')), p);
    assert.ok(existsSync(linkedMarker) && lstatSync(`${linkedMarker}.owner`).isSymbolicLink());
    assert.ok(lstatSync(linkedFolder).isSymbolicLink() && existsSync(`${linkedFolder}.owner`));
    assert.deepEqual(readdirSync(outside).sort(), ['dead.owner', 'keep']);
    assert.deepEqual(await sweepSpools(parent, here), { folders: 0, bytes: 0 }, 'a second sweep finds nothing more');
  });

  it('reads markers strictly and never throws on one', () => {
    assert.deepEqual(parseOwner(JSON.stringify(here)), here);
    for (const bad of ['', 'null', '[]', '{"pid":0,"host":"h","start":null,"pidns":null,"boot":null}', '{"pid":1.5}', '{"pid":1,"host":2}', '{"pid":1,"host":"h","start":5,"pidns":null,"boot":null}', '{'.repeat(100_000)]) {
      assert.equal(parseOwner(bad), undefined, bad.slice(0, 40));
    }
    assert.equal(ownerGone(here, here), false);
    const isOwner = (o: SpoolOwner | undefined) => o === undefined || (Number.isSafeInteger(o.pid) && o.pid > 0 && typeof o.host === 'string');
    fc.assert(fc.property(fc.oneof(fc.string(), fc.json(), fc.jsonValue().map((v) => JSON.stringify({ ...here, pid: v }))), (text) => isOwner(parseOwner(text))), { numRuns: 2000 });
    // Long adversarial markers (the sweep reads at most 1 KiB of one, but the parser does not rely on it).
    for (const text of ['['.repeat(500_000), `{"pid":1,"host":"${'\\'.repeat(500_000)}`, '"'.repeat(1_000_000)]) {
      const started = performance.now();
      assert.equal(parseOwner(text), undefined);
      assert.ok(performance.now() - started < 500, 'parsed in linear time');
    }
  });

  it('refuses a parent that is a symlink, not 0700, or another user\'s, and spools in a private folder instead', () => {
    const cases: Array<[string, (p: string) => void, RegExp]> = [
      ['symlink', (p) => symlinkSync(mkdtempSync(join(tmp, 'target-')), p), /symlink/],
      ['mode', (p) => {
        mkdirSync(p);
        chmodSync(p, 0o755);
      }, /mode is 755/],
      ['file', (p) => writeFileSync(p, ''), /not a folder/],
    ];
    // Another user's folder can only be made as root.
    if (uid === 0) {
      cases.push(['owner', (p) => {
        mkdirSync(p, { mode: 0o700 });
        chownSync(p, 65534, 65534);
      }, /belongs to uid 65534/]);
    }
    for (const [what, plant, reason] of cases) {
      const base = mkdtempSync(join(tmp, `${what}-`));
      plant(parentIn(base));
      const before = lstatSync(parentIn(base));
      const spool = createSpoolDir(base);
      assert.match(spool.refused ?? '', reason, what);
      assert.ok(spool.path.startsWith(join(base, 'kernelgate-spool-')), what);
      assert.equal(statSync(spool.path).mode & 0o777, 0o700);
      const afterwards = lstatSync(parentIn(base));
      assert.deepEqual([afterwards.mode, afterwards.uid, afterwards.ino], [before.mode, before.uid, before.ino], `${what}: the parent is left as it was`);
      spool.close();
      assert.ok(!existsSync(spool.path));
    }
  });
});

describe('spool sweep: a gateway whose spool parent is refused still starts and uploads', () => {
  let tmp: string;
  let gw: TestGateway;
  let target: string;
  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'kernelgate-sweep-refused-'));
    // The parent's name is a symlink to a folder of ours holding what looks like a dead gateway's spool.
    target = mkdtempSync(join(tmp, 'elsewhere-'));
    chmodSync(target, 0o700);
    mkdirSync(join(target, `999999-${'a'.repeat(16)}`));
    writeFileSync(join(target, `999999-${'a'.repeat(16)}.owner`), JSON.stringify({ ...currentOwner(), pid: 999999, start: '1' }));
    symlinkSync(target, parentIn(tmp));
    gw = await startGateway({ env: { TMPDIR: tmp } });
  });
  after(async () => {
    await gw?.stop();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('warns, leaves the symlink\'s target alone, and spools in kernelgate-spool-* instead', async () => {
    const warning = JSON.parse(await waitForLine(gw, (l) => l.includes('spool parent folder refused')));
    assert.equal(warning.level, 40);
    assert.equal(warning.reason, 'it is a symlink');
    assert.deepEqual(readdirSync(target).sort(), [`999999-${'a'.repeat(16)}`, `999999-${'a'.repeat(16)}.owner`]);
    const form = tinyModelForm('refused-parent');
    const res = await gw.signed({ method: 'POST', target: '/models', as: ADMIN, body: form.body, contentType: form.contentType });
    assert.equal(res.status, 201, res.text);
    assert.equal(readdirSync(tmp).filter((n) => n.startsWith('kernelgate-spool-')).length, 1);
  });
});
