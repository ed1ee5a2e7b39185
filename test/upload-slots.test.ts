/**
 * Bodies are held (in memory, or a spooled upload on disk) before their signature can be checked, so what they
 * may hold at once is bounded before a byte is read: upload slots (src/http/upload-slots.ts) and the body
 * memory budget (src/http/body-budget.ts). Real gateways, slow bodies over raw sockets, and the accounting.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { BodyBudget } from '../src/http/body-budget.js';
import { UploadSlots } from '../src/http/upload-slots.js';
import { ApiError } from '../src/problems/api-error.js';
import { tinyModelForm } from './helpers/deepstack.js';
import { ADMIN, ALICE, startGateway, type TestGateway } from './helpers/gateway.js';
import { tinyClassifier } from './helpers/onnx.js';
import { assertProblem } from './helpers/problems.js';
import { dribble } from './helpers/slow-client.js';

describe('upload slots: server.max_concurrent_uploads = 1', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway({ config: '[server]\nmax_concurrent_uploads = 1\n' });
  });
  after(async () => {
    await gw?.stop();
  });

  it('a second upload while one is spooling gets 503 + Retry-After before its body is read; then the slot is free again', async () => {
    const first = tinyModelForm('first');
    const slow = dribble(gw, ADMIN, '/models', first.body, first.contentType, 5, 300);
    await new Promise((r) => setTimeout(r, 300)); // the first has started spooling
    const second = tinyModelForm('second');
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
    const f = tinyModelForm('third');
    const bad = await gw.signed({ method: 'POST', target: '/models', as: ADMIN, body: f.body, contentType: f.contentType, sign: { secretKey: 'not-the-secret-key-0000000000000000000000' } });
    assert.equal(bad.status, 401, bad.text);
    const good = await gw.signed({ method: 'POST', target: '/models', as: ADMIN, body: f.body, contentType: f.contentType });
    assert.equal(good.status, 201, good.text);
  });
});

describe('body memory: server.body_memory_bytes = 2 MiB, body_limit_bytes = 1 MiB (one address: 1 MiB)', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway({ config: '[server]\nbody_limit_bytes = 1048576\nbody_memory_bytes = 2097152\n' });
  });
  after(async () => {
    await gw?.stop();
  });

  it("a body that would take one address past its share while another is still arriving gets 503 before it is read", async () => {
    const big = Buffer.alloc(600_000, 1);
    const slow = dribble(gw, ALICE, '/auth/test', big, 'application/octet-stream', 5, 300);
    await new Promise((r) => setTimeout(r, 300));
    const refused = await gw.signed({ method: 'POST', target: '/auth/test', as: ALICE, body: big, contentType: 'application/octet-stream' });
    assertProblem(refused, 503, 'service-unavailable');
    assert.ok(Number(refused.headers['retry-after']) >= 1);
    assert.equal(refused.headers.connection, 'close');
    // A small body still fits beside the slow one, and bodiless requests are never counted.
    const small = await gw.signed({ method: 'POST', target: '/auth/test', as: ALICE, body: Buffer.alloc(1000, 2), contentType: 'application/octet-stream' });
    assert.equal(small.status, 200, small.text);
    assert.equal((await gw.signed({ method: 'GET', target: '/auth/test', as: ALICE })).status, 200);
    assert.equal((await slow).status, 200);
    const later = await gw.signed({ method: 'POST', target: '/auth/test', as: ALICE, body: big, contentType: 'application/octet-stream' });
    assert.equal(later.status, 200, 'the slow body gave its share back when its response closed');
  });
});

describe('BodyBudget accounting', () => {
  it('bounds the total and each address (a quarter, at least one whole body), and releases each once', () => {
    const budget = new BodyBudget({ total: 4000, bodyLimit: 600 });
    const fail = (f: () => unknown) => assert.throws(f, (e: unknown) => e instanceof ApiError && e.status === 503);
    const a = budget.reserve('a', 600);
    fail(() => budget.reserve('a', 500)); // 1100 > 1000, a quarter of 4000
    const a2 = budget.reserve('a', 400);
    const rest = ['b', 'c', 'd'].map((x) => budget.reserve(x, 1000));
    fail(() => budget.reserve('e', 1)); // 4000 reserved
    a();
    a();
    assert.equal(budget.reserved, 3400);
    budget.reserve('e', 600)();
    for (const r of [a2, ...rest]) r();
    assert.equal(budget.reserved, 0);
    assert.doesNotThrow(() => new BodyBudget({ total: 100, bodyLimit: 600 }).reserve('x', 0)());
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
