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

  it('serves owners round-robin and caps each owner\'s waiting jobs (a quiet tenant is not locked out)', async () => {
    const queue = new WorkQueue({ concurrency: 1, maxQueued: 4, timeoutMs: 10_000 });
    const order: string[] = [];
    const gates: Array<() => void> = [];
    const job = (label: string) => () => new Promise<string>((r) => gates.push(() => { order.push(label); r(label); }));
    const running = queue.run(job('noisy-0'), { owner: 'noisy' });
    const noisy = [1, 2].map((i) => queue.run(job(`noisy-${i}`), { owner: 'noisy' }));
    // Half of maxQueued per owner: the noisy tenant's third waiting job is refused with Retry-After.
    await assert.rejects(queue.run(job('noisy-3'), { owner: 'noisy' }), (e: unknown) => e instanceof ApiError && e.status === 503 && Number(e.headers['Retry-After']) >= 1);
    const quiet = queue.run(job('quiet-0'), { owner: 'quiet' });
    while (gates.length > 0 || queue.stats.running > 0) {
      await new Promise((r) => setImmediate(r));
      gates.shift()?.();
    }
    await Promise.all([running, ...noisy, quiet]);
    assert.deepEqual(order, ['noisy-0', 'noisy-1', 'quiet-0', 'noisy-2'], 'the quiet job runs after one noisy job, not after all of them');
  });

  it('pushes out the busiest owner\'s newest job when the whole queue is full and a quieter owner arrives', async () => {
    const queue = new WorkQueue({ concurrency: 1, maxQueued: 4, maxQueuedPerOwner: 4, timeoutMs: 10_000 });
    let release!: () => void;
    const first = queue.run(() => new Promise<void>((r) => (release = r)), { owner: 'noisy' });
    const noisy = [1, 2, 3, 4].map(() => queue.run(async () => 'noisy', { owner: 'noisy' }).catch((e: unknown) => e));
    assert.equal(queue.stats.queued, 4);
    const quiet = queue.run(async () => 'quiet', { owner: 'quiet' });
    assert.equal(queue.stats.queued, 4);
    const pushedOut = await noisy[3];
    assert.ok(pushedOut instanceof ApiError && pushedOut.status === 503, 'the noisy tenant\'s newest job gets the 503');
    release();
    await first;
    assert.equal(await quiet, 'quiet');
  });

  it('refuses at once (503 + Retry-After) a job that cannot finish within its deadline', async () => {
    const queue = new WorkQueue({ concurrency: 1, maxQueued: 16, timeoutMs: 1000 });
    await queue.run(() => new Promise((r) => setTimeout(r, 300))); // learns a run takes ~300 ms
    const busy = queue.run(() => new Promise((r) => setTimeout(r, 300)));
    const waiting = [1, 2].map(() => queue.run(() => new Promise((r) => setTimeout(r, 300))));
    const began = performance.now();
    // Three jobs ahead of it (~900 ms) plus its own run: past the 1000 ms deadline.
    await assert.rejects(queue.run(async () => 1), (e: unknown) => e instanceof ApiError && e.status === 503 && Number(e.headers['Retry-After']) >= 1);
    assert.ok(performance.now() - began < 200, 'refused without waiting for the deadline');
    await Promise.all([busy, ...waiting]);
  });

  it("a long job takes turns: another owner's job runs at its next stage, then it goes on; alone it never waits", async () => {
    const queue = new WorkQueue({ concurrency: 1, maxQueued: 8, timeoutMs: 10_000 });
    const order: string[] = [];
    let stageDone!: () => void;
    // Stage 1 of the long job runs until the test lets it go, so the other jobs arrive while it holds the slot.
    const long = queue.run(async (_signal, turn) => {
      order.push('long-1');
      await new Promise<void>((r) => (stageDone = r));
      await turn();
      order.push('long-2');
      await turn();
      order.push('long-3');
      return 'long';
    }, { owner: 'big' });
    const sameOwner = queue.run(async () => void order.push('big-next'), { owner: 'big' });
    const other = queue.run(async () => void order.push('small'), { owner: 'small' });
    assert.equal(queue.stats.running, 1);
    stageDone();
    assert.equal(await long, 'long');
    await Promise.all([sameOwner, other]);
    // The small tenant's job ran between stages; the big tenant's own next job waited for its first to end.
    assert.deepEqual(order, ['long-1', 'small', 'long-2', 'long-3', 'big-next']);
    assert.equal(queue.stats.running, 0);
    assert.equal(queue.stats.queued, 0);

    // Nobody else waiting: a turn resolves at once and the slot is never given up.
    let ranBetween = false;
    await queue.run(async (_s, turn) => {
      await turn();
      assert.equal(queue.stats.running, 1);
      ranBetween = queue.stats.completed > 4;
    }, { owner: 'big' });
    assert.equal(ranBetween, false);
  });

  it('a job waiting for its next turn meets its deadline and its caller leaving like a waiting job, and frees nothing twice', async () => {
    const queue = new WorkQueue({ concurrency: 1, maxQueued: 8, timeoutMs: 300 });
    // The queue's deadline timers are unref'd (they must not hold a gateway open): keep the loop alive.
    const alive = setInterval(() => undefined, 1000);
    let blockerDone!: () => void;
    let sawTurnReject: unknown;
    let firstStage!: () => void;
    const long = queue.run(async (_signal, turn) => {
      await new Promise<void>((r) => (firstStage = r));
      // Let the other owner's job in; it holds the slot past this job's deadline.
      await turn().catch((e: unknown) => {
        sawTurnReject = e;
        throw e;
      });
      return 'never';
    }, { owner: 'big' });
    const blocker = queue.run(() => new Promise<string>((r) => (blockerDone = () => r('blocker'))), { owner: 'small' });
    firstStage();
    await assert.rejects(long, (e: unknown) => e instanceof ApiError && e.status === 504);
    assert.ok(sawTurnReject instanceof ApiError && sawTurnReject.status === 504, 'its turn rejected with the same error');
    assert.equal(queue.stats.running, 1, 'only the blocker holds a slot');
    assert.equal(queue.stats.queued, 0);
    blockerDone();
    assert.equal(await blocker, 'blocker');
    assert.equal(queue.stats.running, 0);

    // The caller goes away while the job waits for its turn: 408, and the slot count stays right.
    const gone = new AbortController();
    let release!: () => void;
    let stage!: () => void;
    let turned!: () => void;
    const turning = new Promise<void>((r) => (turned = r));
    const waiting = queue.run(async (_signal, turn) => {
      await new Promise<void>((r) => (stage = r));
      const next = turn();
      turned();
      await next;
      return 'never';
    }, { owner: 'big', signal: gone.signal, timeoutMs: 10_000 });
    const holder = queue.run(() => new Promise<void>((r) => (release = r)), { owner: 'small', timeoutMs: 10_000 });
    stage();
    await turning;
    assert.deepEqual([queue.stats.running, queue.stats.queued], [1, 1], 'the holder runs, the long job waits for its turn');
    gone.abort();
    await assert.rejects(waiting, (e: unknown) => e instanceof ApiError && e.status === 408);
    release();
    await holder;
    assert.deepEqual([queue.stats.running, queue.stats.queued], [0, 0]);
    assert.equal(await queue.run(async () => 'after'), 'after');
    clearInterval(alive);
  });
});
