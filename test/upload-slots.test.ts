/**
 * Spooled uploads are on disk before their signature can be checked, so their number and disk use are bounded
 * before a byte is read (src/http/upload-slots.ts): a real gateway with one slot, slow uploads over raw sockets,
 * and the slot accounting itself.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { UploadSlots } from '../src/http/upload-slots.js';
import { ApiError } from '../src/problems/api-error.js';
import { multipartBody } from './helpers/deepstack.js';
import { ADMIN, startGateway, type TestGateway } from './helpers/gateway.js';
import { tinyClassifier } from './helpers/onnx.js';
import { assertProblem } from './helpers/problems.js';
import { dribble } from './helpers/slow-client.js';

const form = (name: string) =>
  multipartBody([
    { name: 'model', file: tinyClassifier(8, 8), filename: 'model.onnx' },
    { name: 'config', file: Buffer.from(JSON.stringify({ name, task: 'classify', input: { width: 8, height: 8 }, labels: ['a', 'b'] })), filename: 'config.json' },
  ]);

describe('upload slots: server.max_concurrent_uploads = 1', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway({ config: '[server]\nmax_concurrent_uploads = 1\n' });
  });
  after(async () => {
    await gw?.stop();
  });

  it('a second upload while one is spooling gets 503 + Retry-After before its body is read; then the slot is free again', async () => {
    const first = form('first');
    const slow = dribble(gw, ADMIN, '/models', first.body, first.contentType, 5, 300);
    await new Promise((r) => setTimeout(r, 300)); // the first has started spooling
    const second = form('second');
    const refused = await gw.signed({ method: 'POST', target: '/models', as: ADMIN, body: second.body, contentType: second.contentType });
    assertProblem(refused, 503, 'service-unavailable');
    assert.ok(Number(refused.headers['retry-after']) >= 1);
    assert.equal(refused.headers.connection, 'close', 'the unread body is not drained');
    // A JSON (base64) upload is held in memory under the body limit: it takes no slot.
    const json = await gw.signed({ method: 'POST', target: '/models', as: ADMIN, body: JSON.stringify({ name: 'inline', task: 'classify', input: { width: 8, height: 8 }, labels: ['a', 'b'], model: tinyClassifier(8, 8).toString('base64') }) });
    assert.equal(json.status, 201, json.text);
    assert.equal((await slow).status, 201);
    const again = await gw.signed({ method: 'POST', target: '/models', as: ADMIN, body: second.body, contentType: second.contentType });
    assert.equal(again.status, 201, again.text);
  });

  it('a refused or failed upload gives its slot back (a bad signature, then a good upload)', async () => {
    const f = form('third');
    const bad = await gw.signed({ method: 'POST', target: '/models', as: ADMIN, body: f.body, contentType: f.contentType, sign: { secretKey: 'not-the-secret-key-0000000000000000000000' } });
    assert.equal(bad.status, 401, bad.text);
    const good = await gw.signed({ method: 'POST', target: '/models', as: ADMIN, body: f.body, contentType: f.contentType });
    assert.equal(good.status, 201, good.text);
  });
});

describe('UploadSlots accounting', () => {
  const refused = (f: () => unknown, detail: RegExp) =>
    assert.throws(f, (e: unknown) => e instanceof ApiError && e.status === 503 && Number(e.headers['Retry-After']) >= 1 && detail.test(e.message));

  it('counts slots overall and per address, and releases each once', () => {
    const slots = new UploadSlots({ max: 4, limit: 1000, dir: tmpdir() });
    const a1 = slots.acquire('a', 10);
    const a2 = slots.acquire('a', 10);
    refused(() => slots.acquire('a', 10), /earlier uploads/);
    const b1 = slots.acquire('b', 10);
    const c1 = slots.acquire('c', undefined);
    refused(() => slots.acquire('d', 10), /4 uploads/);
    a1();
    a1(); // twice: released once
    assert.equal(slots.active, 3);
    const a3 = slots.acquire('a', 10);
    for (const release of [a2, a3, b1, c1]) release();
    assert.equal(slots.active, 0);
  });

  it('starts an upload only with room for twice its size beyond what the running ones may write', () => {
    let free = 10_000;
    const slots = new UploadSlots({ max: 8, limit: 4000, dir: tmpdir(), freeBytes: () => free });
    const one = slots.acquire('a', 3000); // reserves 6000
    refused(() => slots.acquire('b', 3000), /disk room/); // 6000 + 6000 > 10000
    const small = slots.acquire('b', 1500); // 6000 + 3000 <= 10000
    refused(() => slots.acquire('c', undefined), /disk room/); // unknown size: the limit, 8000
    one();
    small();
    free = 8000;
    slots.acquire('c', undefined)();
    free = 7999;
    refused(() => slots.acquire('c', undefined), /disk room/);
  });
});
