import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError } from '../src/problems/api-error.js';
import { WorkQueue } from '../src/inference/queue.js';

describe('work queue', () => {
  it('drops a waiting job whose caller gave up, and never runs it', async () => {
    const queue = new WorkQueue({ concurrency: 1, maxQueued: 4, timeoutMs: 10_000 });
    let release!: () => void;
    const first = queue.run(() => new Promise<string>((r) => (release = () => r('first'))));
    const gaveUp = new AbortController();
    let ranSecond = false;
    const second = queue.run(async () => {
      ranSecond = true;
      return 'second';
    }, { signal: gaveUp.signal });
    assert.equal(queue.stats.queued, 1);
    gaveUp.abort();
    await assert.rejects(second, (e: unknown) => e instanceof ApiError && e.status === 408);
    assert.equal(queue.stats.queued, 0);
    release();
    assert.equal(await first, 'first');
    const third = await queue.run(async () => 'third');
    assert.equal(third, 'third');
    assert.equal(ranSecond, false);
  });

  it('tells a running job through its signal, and keeps the slot until the job really ends', async () => {
    const queue = new WorkQueue({ concurrency: 1, maxQueued: 0, timeoutMs: 10_000 });
    const gaveUp = new AbortController();
    let sawAbort = false;
    let finish!: () => void;
    const running = queue.run((signal) => new Promise<void>((r) => {
      signal.addEventListener('abort', () => (sawAbort = true));
      finish = r;
    }), { signal: gaveUp.signal });
    gaveUp.abort();
    await assert.rejects(running, (e: unknown) => e instanceof ApiError && e.status === 408);
    assert.ok(sawAbort);
    assert.equal(queue.stats.running, 1, 'ONNX Runtime cannot be interrupted: the slot is held until the run ends');
    await assert.rejects(queue.run(async () => 1), (e: unknown) => e instanceof ApiError && e.status === 503);
    finish();
    await new Promise((r) => setImmediate(r));
    assert.equal(await queue.run(async () => 2), 2);
  });

  it('refuses a job whose caller already gave up', async () => {
    const queue = new WorkQueue({ concurrency: 1, maxQueued: 1, timeoutMs: 1000 });
    await assert.rejects(queue.run(async () => 1, { signal: AbortSignal.abort() }), (e: unknown) => e instanceof ApiError && e.status === 408);
    assert.deepEqual([queue.stats.running, queue.stats.queued], [0, 0]);
  });
});
