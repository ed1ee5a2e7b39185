/**
 * Two deadlines for a body to arrive: a spooled upload gets `server.upload_timeout_ms`, every other request
 * `server.request_timeout_ms` (src/http/receive-deadline.ts). Driven over raw sockets that dribble a signed
 * body in pieces, as a slow link does.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { tinyModelForm } from './helpers/deepstack.js';
import { ADMIN, ALICE, startGateway, type TestGateway } from './helpers/gateway.js';
import { dribble } from './helpers/slow-client.js';

describe('receive deadlines: uploads get server.upload_timeout_ms, every other body server.request_timeout_ms', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway({ config: '[server]\nrequest_timeout_ms = 1000\nupload_timeout_ms = 4000\n' });
  });
  after(async () => {
    await gw?.stop();
  });

  it('a multipart model upload that takes 2.4 s to arrive (over request_timeout_ms) is installed', async () => {
    const { body, contentType } = tinyModelForm('slowpoke');
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
    const { body, contentType } = tinyModelForm('tooslow');
    const res = await dribble(gw, ADMIN, '/models', body, contentType, 10, 600);
    assert.equal(res.status, 408, res.text);
    assert.ok(res.answeredAfterMs >= 3500 && res.answeredAfterMs < 6000, `answered after ${res.answeredAfterMs} ms`);
    const listed = await gw.signed({ method: 'GET', target: '/models', as: ADMIN });
    assert.ok(!JSON.stringify(listed.json).includes('"tooslow"'), listed.text);
  });
});
