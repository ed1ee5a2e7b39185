/**
 * Issue 7 item 1: base64 in JSON bodies is checked in linear time. The old
 * check `/^[A-Za-z0-9+/\s]*={0,2}\s*$/` backtracked quadratically: "A" +
 * 120000 spaces + "!" froze the event loop for 10-20 s.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decodeBase64 } from '../src/http/base64.js';
import { ADMIN, ALICE, startGateway, type Response, type TestGateway } from './helpers/gateway.js';
import { assertProblem } from './helpers/problems.js';

const HOSTILE = `A${' '.repeat(120_000)}!`;

describe('decodeBase64', () => {
  it('decodes what Buffer encodes, with whitespace, padding and a data: prefix', () => {
    const bytes = Buffer.from('kernelgate \u00ff\u0000 base64', 'latin1');
    for (let n = 0; n <= bytes.length; n++) {
      const b64 = bytes.subarray(0, n).toString('base64');
      const wrapped = b64.replace(/(.{4})/g, '$1\n ');
      for (const text of [b64, wrapped, `  ${b64}\r\n`]) {
        const r = decodeBase64(text);
        assert.ok(r.ok, text);
        assert.deepEqual(r.bytes, bytes.subarray(0, n));
      }
      const viaDataUrl = decodeBase64(`data:image/png;base64,${b64}`, { dataUrl: true });
      assert.ok(viaDataUrl.ok);
      assert.deepEqual(viaDataUrl.bytes, bytes.subarray(0, n));
    }
  });

  it('refuses what is not base64', () => {
    for (const text of ['abc!', 'ab=c', 'ab===', 'a-b_', 'data:image/png;base64,AAAA', 'ab\u00e9', '=a', HOSTILE]) {
      const r = decodeBase64(text);
      assert.equal(r.ok, false, text.slice(0, 40));
      if (!r.ok) assert.equal(r.reason, 'invalid');
    }
    assert.equal(decodeBase64('data:text/plain,AAAA', { dataUrl: true }).ok, false);
    const big = decodeBase64('AAAA'.repeat(10), { maxBytes: 29 });
    assert.ok(!big.ok && big.reason === 'too-large');
    assert.ok(decodeBase64('AAAA'.repeat(10), { maxBytes: 30 }).ok);
  });

  it('takes linear time on long adversarial strings (10 MB under a second)', () => {
    const huge = [`A${' '.repeat(10 * 1024 * 1024)}!`, `${'A'.repeat(10 * 1024 * 1024)}==!`, `${'A \t'.repeat(3 * 1024 * 1024)}=`];
    for (const text of huge) {
      const started = performance.now();
      decodeBase64(text, { dataUrl: true, maxBytes: 8 * 1024 * 1024 });
      const ms = performance.now() - started;
      assert.ok(ms < 1000, `${ms} ms`);
    }
  });
});

describe('hostile base64 over HTTP', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway();
    const created = await gw.signed({ method: 'POST', target: '/session', as: ALICE, body: JSON.stringify({ name: 'x', image: 'ocr' }) });
    assert.ok(created.status === 201 || created.status === 200, created.text);
  });
  after(() => gw.stop());

  /** The request's time, and that of a GET / sent while it runs (the event loop must stay free). */
  async function timed(send: () => Promise<Response>) {
    const started = performance.now();
    const pending = send();
    const other = gw.request({ method: 'GET', target: '/' }).then((r) => ({ status: r.status, ms: performance.now() - started }));
    const res = await pending;
    return { res, ms: performance.now() - started, other: await other };
  }

  it('POST /session/x/infer {"image": "A" + 120000 spaces + "!"} answers 400 quickly', async () => {
    const { res, ms, other } = await timed(() => gw.signed({ method: 'POST', target: '/session/x/infer', as: ALICE, body: JSON.stringify({ image: HOSTILE }) }));
    assertProblem(res, 400, 'invalid-image');
    assert.ok(ms < 1500, `took ${Math.round(ms)} ms`);
    assert.equal(other.status, 200);
    assert.ok(other.ms < 1500, `GET / took ${Math.round(other.ms)} ms meanwhile`);
    // A data: URL with the same tail, and padding followed by junk.
    const dataUrl = await gw.signed({ method: 'POST', target: '/session/x/infer', as: ALICE, body: JSON.stringify({ image: `data:image/png;base64,${HOSTILE}` }) });
    assertProblem(dataUrl, 400, 'invalid-image');
  });

  it('POST /models with the same "model" answers 400 quickly', async () => {
    const body = JSON.stringify({ name: 'hostile', task: 'classify', input: { width: 8, height: 8, color: 'RGB' }, labels: ['a', 'b'], model: HOSTILE });
    const { res, ms, other } = await timed(() => gw.signed({ method: 'POST', target: '/models', as: ADMIN, body }));
    assertProblem(res, 400, 'invalid-api-params');
    assert.ok(ms < 1500, `took ${Math.round(ms)} ms`);
    assert.equal(other.status, 200);
  });
});
