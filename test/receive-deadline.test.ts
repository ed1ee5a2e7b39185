/**
 * Two deadlines for a body to arrive: a spooled upload gets `server.upload_timeout_ms`, every other request
 * `server.request_timeout_ms` (src/http/receive-deadline.ts). Driven over raw sockets that dribble a signed
 * body in pieces, as a slow link does.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { signRequest } from '../src/signing/sign-request.js';
import { multipartBody } from './helpers/deepstack.js';
import { ADMIN, ALICE, startGateway, type TestGateway, type TestKeypair } from './helpers/gateway.js';
import { tinyClassifier } from './helpers/onnx.js';

interface Slow {
  status: number;
  text: string;
  /** When the answer's first byte came, ms after the headers were sent. */
  answeredAfterMs: number;
}

/** Sends the signed headers, then `body` in `pieces` parts `gapMs` apart; reads until the server closes. */
function dribble(gw: TestGateway, as: TestKeypair, target: string, body: Buffer, contentType: string, pieces: number, gapMs: number): Promise<Slow> {
  const host = `127.0.0.1:${gw.port}`;
  const { headers } = signRequest({ method: 'POST', target, host, accessKey: as.accessKey, secretKey: as.secretKey, body, contentType });
  const head = [`POST ${target} HTTP/1.1`, `Host: ${host}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), `Content-Length: ${body.length}`, 'Connection: close', '', ''].join('\r\n');
  return new Promise((resolve, reject) => {
    const socket = connect(gw.port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let sentAt = 0;
    let firstByteAt = 0;
    let timer: NodeJS.Timeout | undefined;
    socket.on('connect', () => {
      socket.write(head);
      sentAt = performance.now();
      const size = Math.ceil(body.length / pieces);
      let i = 0;
      const next = () => {
        if (socket.destroyed || i >= pieces) return;
        socket.write(body.subarray(i * size, (i + 1) * size));
        i++;
        timer = setTimeout(next, gapMs);
      };
      timer = setTimeout(next, gapMs);
    });
    socket.on('data', (c: Buffer) => {
      firstByteAt ||= performance.now();
      chunks.push(c);
    });
    socket.on('error', () => undefined); // a reset after the answer is fine: the answer is what counts
    socket.on('close', () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString('utf8');
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
      if (status === 0) reject(new Error(`no answer: ${JSON.stringify(text.slice(0, 200))}`));
      else resolve({ status, text, answeredAfterMs: firstByteAt - sentAt });
    });
  });
}

describe('receive deadlines: uploads get server.upload_timeout_ms, every other body server.request_timeout_ms', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway({ config: '[server]\nrequest_timeout_ms = 1000\nupload_timeout_ms = 4000\n' });
  });
  after(async () => {
    await gw?.stop();
  });

  const form = (name: string) =>
    multipartBody([
      { name: 'model', file: tinyClassifier(8, 8), filename: 'model.onnx' },
      { name: 'config', file: Buffer.from(JSON.stringify({ name, task: 'classify', input: { width: 8, height: 8 }, labels: ['a', 'b'] })), filename: 'config.json' },
    ]);

  it('a multipart model upload that takes 2.4 s to arrive (over request_timeout_ms) is installed', async () => {
    const { body, contentType } = form('slowpoke');
    const res = await dribble(gw, ADMIN, '/models', body, contentType, 6, 400);
    assert.equal(res.status, 201, res.text);
    const listed = await gw.signed({ method: 'GET', target: '/models', as: ADMIN });
    assert.ok(JSON.stringify(listed.json).includes('"slowpoke"'), listed.text);
  });

  it('an ordinary JSON body that takes as long is answered 408 at request_timeout_ms and its connection closed', async () => {
    const body = Buffer.from(JSON.stringify({ name: 'late', image: 'ocr', padding: 'x'.repeat(600) }));
    const res = await dribble(gw, ALICE, '/session', body, 'application/json', 6, 400);
    assert.equal(res.status, 408, res.text);
    assert.match(res.text, /Content-Type: application\/problem\+json/i);
    assert.match(res.text, /Connection: close/i);
    assert.ok(res.answeredAfterMs >= 900 && res.answeredAfterMs < 2300, `answered after ${res.answeredAfterMs} ms`);
    const sessions = await gw.signed({ method: 'GET', target: '/session', as: ALICE });
    assert.ok(!sessions.text.includes('"late"'), 'nothing was created');
  });

  it('an upload slower than upload_timeout_ms is answered 408 too, and nothing is installed', async () => {
    const { body, contentType } = form('tooslow');
    const res = await dribble(gw, ADMIN, '/models', body, contentType, 10, 600);
    assert.equal(res.status, 408, res.text);
    assert.ok(res.answeredAfterMs >= 3500 && res.answeredAfterMs < 6000, `answered after ${res.answeredAfterMs} ms`);
    const listed = await gw.signed({ method: 'GET', target: '/models', as: ADMIN });
    assert.ok(!JSON.stringify(listed.json).includes('"tooslow"'), listed.text);
  });
});
