/**
 * The zip reader and writer of model backups (src/inference/store/model-archive.ts), without HTTP: archives
 * made with yazl round-trip; hostile archives written byte by byte (test/helpers/zip.ts) are refused with a
 * 400 before anything outside the extraction folder is touched; random and mutated bytes never throw
 * anything else, in bounded time (fast-check).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import yazl from 'yazl';
import { ApiError } from '../src/problems/api-error.js';
import { archiveLimits, extractModelArchive, writeModelArchive, type ExtractedModel } from '../src/inference/store/model-archive.js';
import { ModelStore } from '../src/inference/store/model-store.js';
import { tinyClassifier } from './helpers/onnx.js';
import { config, goodEntries, hostileArchives, MODEL } from './helpers/hostile-zips.js';
import { craftZip } from './helpers/zip.js';

describe('model backup archives', () => {
  let root: string;
  let n = 0;
  const freshDir = () => {
    const d = join(root, `x${n++}`);
    mkdirSync(d);
    return d;
  };
  before(() => {
    root = mkdtempSync(join(tmpdir(), 'kg-archive-'));
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  it('round-trips the models of several domains, written by yazl', async () => {
    const store = new ModelStore(join(root, 'store'));
    store.save('default', config('m1'), MODEL);
    store.save('other', config('m1'), tinyClassifier(4, 4));
    store.save('dots.and/slashes', config('weird'), MODEL);
    const zip = await writeModelArchive(store.list());
    const out: ExtractedModel[] = await extractModelArchive(zip, freshDir());
    assert.deepEqual(
      out.map((m) => [m.domain, m.config.name, m.sha256, m.bytes]).sort(),
      store.list().map((m) => [m.domain, m.config.name, m.sha256, m.bytes]).sort(),
    );
    assert.deepEqual(out.find((m) => m.domain === 'other')!.config, config('m1'));
    // yazl's own output is what our reader expects, and a hand-written equivalent reads the same.
    assert.equal((await extractModelArchive(craftZip(goodEntries()), freshDir())).length, 1);
  });

  it('reads an archive with directory entries, as `zip -r` makes them', async () => {
    const zip = new yazl.ZipFile();
    for (const e of goodEntries()) zip.addBuffer(e.data!, e.name);
    zip.addEmptyDirectory('models/');
    zip.addEmptyDirectory('models/default/');
    zip.end();
    const chunks: Buffer[] = [];
    for await (const c of zip.outputStream as AsyncIterable<Buffer>) chunks.push(c);
    assert.equal((await extractModelArchive(Buffer.concat(chunks), freshDir())).length, 1);
  });

  for (const hostile of hostileArchives()) {
    it(`refuses ${hostile.name} with a 400, writing nothing outside its folder`, async () => {
      const dir = freshDir();
      const before = readdirSync(root).sort();
      await assert.rejects(extractModelArchive(hostile.zip, dir), (error: unknown) => {
        assert.ok(error instanceof ApiError, String(error));
        assert.equal(error.status, 400);
        assert.match(error.message, /^The backup archive was refused, and nothing was changed: /);
        assert.match(error.message, hostile.says);
        return true;
      });
      assert.deepEqual(readdirSync(root).sort(), before, 'nothing appeared beside the extraction folder');
      for (const f of readdirSync(dir)) assert.match(f, /^\d+\.onnx$/, 'only files named by the reader');
    });
  }

  it('limits scale with the archive: 100 times its size plus 1 MiB, never past 4 GiB', () => {
    assert.equal(archiveLimits(1000).maxTotalBytes, 100_000 + 1024 * 1024);
    assert.equal(archiveLimits(1e12).maxTotalBytes, 4 * 1024 ** 3);
  });

  it('never throws anything but a 400 on random or mutated bytes, in bounded time (fuzz)', async () => {
    const store = new ModelStore(join(root, 'fuzz-store'));
    store.save('default', config('m1'), MODEL);
    const good = await writeModelArchive(store.list());
    const check = async (bytes: Buffer) => {
      const dir = freshDir();
      const started = performance.now();
      try {
        await extractModelArchive(bytes, dir);
      } catch (error) {
        assert.ok(error instanceof ApiError && error.status === 400, `threw ${String(error)}`);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
      assert.ok(performance.now() - started < 2000, 'one archive took over 2 s');
    };
    await fc.assert(fc.asyncProperty(fc.uint8Array({ maxLength: 2048 }), (b) => check(Buffer.from(b))), { numRuns: 150 });
    // Mutations of a real archive reach past the end record into entries, names and sizes.
    const mutation = fc.array(fc.tuple(fc.nat({ max: good.length - 1 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 });
    await fc.assert(
      fc.asyncProperty(mutation, fc.nat({ max: good.length }), (changes, cut) => {
        const bytes = Buffer.from(good);
        for (const [at, value] of changes) bytes[at] = value;
        return check(cut % 5 === 0 ? bytes.subarray(0, cut) : bytes);
      }),
      { numRuns: 300 },
    );
  });
});

describe('restore staging and commit (ModelStore)', () => {
  let root: string;
  before(() => {
    root = mkdtempSync(join(tmpdir(), 'kg-staging-'));
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  it('changes nothing until the commit; the commit replaces models and drops the files they replaced', () => {
    const store = new ModelStore(join(root, 'a'));
    const old = store.save('default', config('m1'), MODEL);
    const staging = store.newStaging();
    const source = join(staging, 'new.onnx');
    const next = tinyClassifier(4, 4);
    writeFileSync(source, next);
    store.stage(staging, 'default', config('m1'), source, createHash('sha256').update(next).digest('hex'), next.length);
    store.stage(staging, 'other', config('m2'), (writeFileSync(join(staging, 'b.onnx'), MODEL), join(staging, 'b.onnx')), old.sha256, MODEL.length);
    assert.equal(store.get('default', 'm1')!.sha256, old.sha256, 'staged, not yet visible');
    assert.deepEqual(store.domains(), ['default'], 'the staging folder is no domain');
    store.commit(staging);
    assert.equal(store.get('default', 'm1')!.bytes, next.length);
    assert.equal(store.get('other', 'm2')!.sha256, old.sha256);
    assert.deepEqual(readdirSync(join(root, 'a')).sort(), ['default', 'other']);
    assert.deepEqual(readdirSync(join(root, 'a', 'default')).sort(), [`m1.${createHash('sha256').update(next).digest('hex').slice(0, 16)}.onnx`, 'm1.json']);
  });

  it('finishes a restore that a crash interrupted after its commit, and clears stale staging folders', () => {
    const store = new ModelStore(join(root, 'b'));
    const staging = store.newStaging();
    writeFileSync(join(staging, 'x.onnx'), MODEL);
    store.stage(staging, 'default', config('m1'), join(staging, 'x.onnx'), createHash('sha256').update(MODEL).digest('hex'), MODEL.length);
    // A crash right after the commit's rename: the models are not moved in yet.
    renameSync(staging, staging.replace(/\.tmp$/, '.commit'));
    const stale = store.newStaging();
    const young = store.newStaging();
    utimesSync(stale, new Date(Date.now() - 2 * 3_600_000), new Date(Date.now() - 2 * 3_600_000));
    assert.equal(store.get('default', 'm1'), undefined);
    assert.equal(store.recoverRestores().length, 1);
    assert.equal(store.get('default', 'm1')!.bytes, MODEL.length);
    assert.deepEqual(readdirSync(join(root, 'b')).sort(), [young.split('/').pop(), 'default'].sort(), 'the stale staging folder is gone, a young one (another replica at work) stays');
  });
});
