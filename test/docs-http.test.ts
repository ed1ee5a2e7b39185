/**
 * /docs and /playground over HTTP (the browser test drives them): public, only with `[docs] enabled`,
 * a strict CSP and nosniff on every file, an allow-list of assets with caching, no inline script or
 * style in the pages; the OpenAPI document's examples and security schemes; the playground's result
 * shapes for every kind of kernel.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { gunzipSync } from 'node:zlib';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ALICE, startGateway, type TestGateway } from './helpers/gateway.js';
import { assertProblem } from './helpers/problems.js';
import { shapesOf } from '../src/docs/assets/draw.js';

const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; connect-src 'self'; " +
  "frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

describe('/docs and /playground over HTTP', () => {
  let gw: TestGateway;
  let off: TestGateway;
  before(async () => {
    [gw, off] = await Promise.all([
      startGateway({ keypairs: [ALICE], config: '[auth]\nschemes = ["backendai", "apikey", "oidc"]\n' }),
      startGateway({ keypairs: [ALICE], config: '[docs]\nenabled = false\n' }),
    ]);
  });
  after(async () => {
    await Promise.all([gw?.stop(), off?.stop()]);
  });

  const get = (target: string, headers: Record<string, string> = {}) => gw.request({ method: 'GET', target, headers });

  it('serves both pages without a signature, with the CSP, nosniff, no-referrer and no-cache', async () => {
    for (const target of ['/docs', '/playground']) {
      const res = await get(target);
      assert.equal(res.status, 200, target);
      assert.equal(res.headers['content-type'], 'text/html; charset=utf-8');
      assert.equal(res.headers['content-security-policy'], CSP);
      assert.equal(res.headers['x-content-type-options'], 'nosniff');
      assert.equal(res.headers['referrer-policy'], 'no-referrer');
      assert.equal(res.headers['cache-control'], 'no-cache');
      assert.match(res.text, /Your secret stays in this browser tab\./);
      assert.match(res.text, /kernelgate proxy/);
      // No inline script or style: every script has a src, no <style>, no style or on* attributes.
      for (const tag of res.text.match(/<script\b[^>]*>/g) ?? []) assert.match(tag, / src="\/docs\/assets\/[a-z0-9.-]+\.js"/, tag);
      assert.doesNotMatch(res.text, /<style|\sstyle=|\son[a-z]+=/i);
      assert.doesNotMatch(res.text, /https?:\/\//, 'no CDN or other origin');
    }
  });

  it('both pages carry the same credentials panel', async () => {
    const panel = (html: string) => html.slice(html.indexOf('<section class="panel credentials"'), html.indexOf('</section>') + 10);
    const [docs, playground] = await Promise.all([get('/docs'), get('/playground')]);
    assert.ok(panel(docs.text).length > 500);
    assert.equal(panel(docs.text), panel(playground.text));
  });

  it('serves the allow-listed assets with their types, ETags and caching; 304 on revalidation; gzip when asked', async () => {
    const cases: Array<[string, string, string]> = [
      ['swagger-ui-bundle.js', 'text/javascript; charset=utf-8', 'public, max-age=86400'],
      ['swagger-ui.css', 'text/css; charset=utf-8', 'public, max-age=86400'],
      ['favicon-32x32.png', 'image/png', 'public, max-age=86400'],
      ['signing.js', 'text/javascript; charset=utf-8', 'no-cache'],
      ['docs.js', 'text/javascript; charset=utf-8', 'no-cache'],
      ['kernelgate.css', 'text/css; charset=utf-8', 'no-cache'],
    ];
    for (const [name, type, cache] of cases) {
      const res = await get(`/docs/assets/${name}`);
      assert.equal(res.status, 200, name);
      assert.equal(res.headers['content-type'], type, name);
      assert.equal(res.headers['cache-control'], cache, name);
      assert.equal(res.headers['x-content-type-options'], 'nosniff');
      assert.equal(res.headers['content-security-policy'], CSP);
      const etag = String(res.headers.etag);
      assert.match(etag, /^"[A-Za-z0-9_-]{27}"$/);
      const again = await get(`/docs/assets/${name}`, { 'If-None-Match': etag });
      assert.equal(again.status, 304, name);
      assert.equal(again.body.length, 0);
    }
    const plain = await get('/docs/assets/swagger-ui-bundle.js');
    const original = readFileSync(resolve(import.meta.dirname, '../node_modules/swagger-ui-dist/swagger-ui-bundle.js'));
    assert.ok(plain.body.equals(original), 'the file from swagger-ui-dist, unchanged');
    const zipped = await get('/docs/assets/swagger-ui-bundle.js', { 'Accept-Encoding': 'gzip' });
    assert.equal(zipped.headers['content-encoding'], 'gzip');
    assert.ok(zipped.body.length < original.length / 2);
    assert.ok(gunzipSync(zipped.body).equals(original));
    assert.notEqual(zipped.headers.etag, plain.headers.etag, 'each encoding has its own ETag');
    assert.equal(zipped.headers.vary, 'Accept-Encoding');
  });

  it('anything not on the allow-list is a 404 problem document', async () => {
    for (const name of ['swagger-ui-bundle.js.map', 'index.html', 'docs.html', 'package.json', '..%2F..%2Fpackage.json', '%2e%2e', 'signing.d.ts', 'routes.ts', 'oauth2-redirect.html', 'constructor', '__proto__']) {
      assertProblem(await get(`/docs/assets/${name}`), 404, 'url-not-found');
    }
    assertProblem(await get('/docs/assets/../../package.json'), 404, 'url-not-found');
    assertProblem(await get('/docs/assets/'), 404, 'url-not-found');
  });

  it('with [docs] enabled = false neither page nor any asset exists', async () => {
    for (const target of ['/docs', '/playground', '/docs/assets/signing.js', '/docs/assets/swagger-ui-bundle.js']) {
      assertProblem(await off.request({ method: 'GET', target }), 404, 'url-not-found');
    }
    assert.equal((await off.request({ method: 'GET', target: '/openapi.json' })).status, 200);
  });

  it('/openapi.json: examples for every operation, problem documents for errors, the enabled schemes, no docs routes', async () => {
    const doc = (await get('/openapi.json')).json;
    assert.deepEqual(Object.keys(doc.components.securitySchemes).sort(), ['ApiKey', 'BackendAI', 'Bearer']);
    assert.deepEqual(doc.security, [{ BackendAI: [] }, { ApiKey: [] }, { Bearer: [] }]);
    assert.equal(doc.components.securitySchemes.ApiKey.name, 'x-api-key');
    assert.equal(doc.components.securitySchemes.Bearer.scheme, 'bearer');
    const onlyHmac = (await off.request({ method: 'GET', target: '/openapi.json' })).json;
    assert.deepEqual(Object.keys(onlyHmac.components.securitySchemes), ['BackendAI']);
    assert.ok(doc.components.schemas.Problem.example);
    const missing: string[] = [];
    let operations = 0;
    for (const [path, ops] of Object.entries(doc.paths as Record<string, Record<string, any>>)) {
      assert.ok(!path.startsWith('/docs') && path !== '/playground', `${path} is a page, not API`);
      for (const [method, op] of Object.entries(ops)) {
        operations++;
        const where = `${method.toUpperCase()} ${path}`;
        const ok = Object.entries(op.responses as Record<string, any>).filter(([s]) => /^2/.test(s));
        assert.ok(ok.length > 0, where);
        const exampled = ok.some(([, r]) => r.content?.['application/json']?.example !== undefined || /e\.g\./.test(r.description));
        if (!exampled) missing.push(`${where} response`);
        const json = op.requestBody?.content?.['application/json'];
        if (json && json.example === undefined) missing.push(`${where} body`);
        assert.equal(op.responses.default.content['application/problem+json'].schema.$ref, '#/components/schemas/Problem', where);
        if (op.security === undefined) {
          const unauthorized = op.responses['401'].content['application/problem+json'];
          assert.match(unauthorized.example.type, /auth-failed$/, where);
        }
      }
    }
    assert.ok(operations >= 15, `${operations} operations`);
    assert.deepEqual(missing, []);
    // Upload routes say they stream to disk under their own limit and deadline; ordinary routes do not.
    for (const [path, method] of [['/models', 'post'], ['/models/restore', 'post'], ['/v1/vision/addmodel', 'post'], ['/v1/restore', 'post']] as const) {
      const op = doc.paths[path][method];
      assert.match(op.requestBody.description, /server\.upload_limit_bytes/, path);
      assert.match(op.responses['413'].description, /server\.upload_limit_bytes/, path);
      assert.match(op.responses['408'].description, /server\.upload_timeout_ms/, path);
    }
    assert.equal(doc.paths['/session'].post.responses['413'], undefined);
    const infer = doc.paths['/session/{name}/infer'].post.requestBody.content['multipart/form-data'].schema;
    assert.equal(infer.properties.image.format, 'binary');
  });
});

describe('playground: the shapes drawn for each kind of result', () => {
  it('OCR lines (box polygon + text), detections and faces (x_min..y_max), classifications (nothing to draw)', () => {
    const ocr = shapesOf({ predictions: [{ text: 'Hi', confidence: 0.9, box: [[1, 2], [30, 2], [30, 12], [1, 12]], x_min: 1, y_min: 2, x_max: 30, y_max: 12 }] });
    assert.deepEqual(ocr, [{ points: [[1, 2], [30, 2], [30, 12], [1, 12]], label: 'Hi', confidence: 0.9, landmarks: [] }]);
    const detect = shapesOf({ success: true, predictions: [{ label: 'dog', confidence: 0.8, x_min: 5, y_min: 6, x_max: 50, y_max: 60 }] });
    assert.deepEqual(detect[0]!.points, [[5, 6], [50, 6], [50, 60], [5, 60]]);
    assert.equal(detect[0]!.label, 'dog');
    const face = shapesOf({ predictions: [{ confidence: 0.95, x_min: 0, y_min: 0, x_max: 9, y_max: 9, landmarks: [[3, 3], [6, 3], 'x'] }] });
    assert.equal(face[0]!.label, 'face');
    assert.deepEqual(face[0]!.landmarks, [[3, 3], [6, 3]]);
    assert.deepEqual(shapesOf({ predictions: [{ label: 'rose', confidence: 0.7 }] }), []);
    for (const junk of [null, 'x', { predictions: 'x' }, { predictions: [null, 1, { box: [[1, 'a']] }, { x_min: '1', y_min: 0, x_max: 1, y_max: 1 }] }]) {
      assert.deepEqual(shapesOf(junk), []);
    }
  });
});
