/**
 * createGateway straight from src/ (no build, no spawned process): listens on port 0, answers a
 * signed request, closes.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { KernelgateClient } from '../src/client/client.js';
import { defaultConfig } from '../src/config/config.js';
import { createGateway } from '../src/gateway.js';
import { signRequest } from '../src/signing/sign-request.js';
import { ALICE, writeKeypair } from './helpers/gateway.js';

describe('createGateway in-process', () => {
  it('listens on port 0, answers a signed GET /auth/test and a 401 without credentials, closes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kg-inproc-'));
    writeKeypair(dir, ALICE);
    const config = defaultConfig();
    config.server.host = '127.0.0.1';
    config.server.port = 0;
    config.keypairs.dir = dir;
    config.log.access = false;
    const gateway = await createGateway(config, { log: pino({ level: 'silent' }) });
    try {
      assert.equal(gateway.keypairs.size, 1);
      const { port } = await gateway.listen();
      assert.ok(port > 0);
      const client = new KernelgateClient({ endpoint: `http://127.0.0.1:${port}`, accessKey: ALICE.accessKey, secretKey: ALICE.secretKey });
      const res = await client.request('GET', '/auth/test', { query: { echo: 'in-process' } });
      assert.equal(res.status, 200, await res.clone().text());
      const body = (await res.json()) as { echo?: string; authorized?: string };
      assert.equal(body.echo, 'in-process');
      assert.ok(res.headers.get('x-ratelimit-remaining') !== null, 'charged to the keypair');
      const anonymous = await fetch(`http://127.0.0.1:${port}/auth/test`);
      assert.equal(anonymous.status, 401);
      assert.equal(((await anonymous.json()) as { type: string }).type.endsWith('auth-failed'), true);
    } finally {
      await gateway.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('KernelgateClient behind a base path', () => {
  it('signs the target as sent: the endpoint path included', async () => {
    let sent: { url: string; headers: Record<string, string> } | undefined;
    const client = new KernelgateClient({
      endpoint: 'http://gateway.example:8080/kernelgate/',
      accessKey: ALICE.accessKey,
      secretKey: ALICE.secretKey,
      fetch: (async (url: URL, init: RequestInit) => {
        sent = { url: String(url), headers: init.headers as Record<string, string> };
        return new Response('{}');
      }) as typeof fetch,
    });
    await client.request('GET', '/auth/test', { query: { echo: 'x' } });
    assert.equal(sent!.url, 'http://gateway.example:8080/kernelgate/auth/test?echo=x');
    const expected = signRequest({
      method: 'GET',
      target: '/kernelgate/auth/test?echo=x',
      host: 'gateway.example:8080',
      accessKey: ALICE.accessKey,
      secretKey: ALICE.secretKey,
      date: sent!.headers.Date ?? sent!.headers['X-BackendAI-Date'],
    });
    assert.equal(sent!.headers.Authorization, expected.headers.Authorization);
  });
});
