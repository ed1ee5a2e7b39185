/**
 * README's configuration table, example keypairs and commands, checked against the code: every
 * default the table prints is the embedded default, and the table still prints it.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultConfig } from '../src/config/config.js';
import { parseKeypair } from '../src/keypairs/keypair.js';

const ROOT = join(import.meta.dirname, '..');
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');

/** The cells of the configuration table row whose first cell is exactly `cell`. */
function row(cell: string): string[] {
  const line = README.split('\n').find((l) => l.startsWith(`| ${cell} |`));
  assert.ok(line, `README's configuration table has no row ${cell}`);
  return line.split(' | ').map((c) => c.replace(/^\| |\s*\|$/g, '').trim());
}

const MiB = 1024 * 1024;

describe('README "Configuration": the table\'s defaults are the embedded defaults', () => {
  const c = defaultConfig();
  // [first cell, second cell as README prints it, the values the code has]
  const rows: Array<[string, string, unknown, unknown]> = [
    ['`server.host`, `server.port`', '`127.0.0.1`, `8080`', [c.server.host, c.server.port], ['127.0.0.1', 8080]],
    ['`server.body_limit_bytes`', '10 MiB', c.server.body_limit_bytes, 10 * MiB],
    ['`server.body_memory_bytes`', '256 MiB', c.server.body_memory_bytes, 256 * MiB],
    ['`server.upload_limit_bytes`', '256 MiB', c.server.upload_limit_bytes, 256 * MiB],
    ['`server.header_limit_bytes`', '16 KiB', c.server.header_limit_bytes, 16 * 1024],
    ['`server.request_timeout_ms`', '30000', c.server.request_timeout_ms, 30000],
    ['`server.upload_timeout_ms`', '600000', c.server.upload_timeout_ms, 600000],
    ['`server.max_concurrent_uploads`', '4', c.server.max_concurrent_uploads, 4],
    ['`server.max_connections`', '1024', c.server.max_connections, 1024],
    ['`server.trusted_proxies`', '`[]`', c.server.trusted_proxies, []],
    ['`server.metrics_allow`', '`["127.0.0.1/32", "::1/128"]`', c.server.metrics_allow, ['127.0.0.1/32', '::1/128']],
    ['`auth.skew_seconds`', '900', c.auth.skew_seconds, 900],
    ['`auth.algorithms`', 'sha256, sha384, sha512', c.auth.algorithms, ['sha256', 'sha384', 'sha512']],
    ['`auth.body_hash`', '`strict`', c.auth.body_hash, 'strict'],
    ['`auth.api_versions`', 'v4.20181215 … v8.20240915', [c.auth.api_versions[0], c.auth.api_versions.at(-1)], ['v4.20181215', 'v8.20240915']],
    ['`auth.problem_base_uri`', '`https://api.backend.ai/probs/`', c.auth.problem_base_uri, 'https://api.backend.ai/probs/'],
    ['`auth.oidc`', '`[]`', c.auth.oidc, []],
    ['`auth.schemes`', '`["backendai"]`', c.auth.schemes, ['backendai']],
    ['`keypairs.dir`', '`keypairs`', c.keypairs.dir, 'keypairs'],
    ['`store.kind`', '`memory`', c.store.kind, 'memory'],
    ['`store.redis_url`', '`redis://127.0.0.1:6379`', c.store.redis_url, 'redis://127.0.0.1:6379'],
    ['`store.redis_mode`', '`single`', c.store.redis_mode, 'single'],
    ['`store.redis_nodes`', '`[]`', c.store.redis_nodes, []],
    ['`store.redis_sentinel_name`', '`mymaster`', c.store.redis_sentinel_name, 'mymaster'],
    ['`ratelimit.store`', '`memory`', c.ratelimit.store, 'memory'],
    ['`ratelimit.redis_url`', '`redis://127.0.0.1:6379`', c.ratelimit.redis_url, 'redis://127.0.0.1:6379'],
    ['`ratelimit.window_seconds`', '900', c.ratelimit.window_seconds, 900],
    ['`ratelimit.default_limit`', '10000', c.ratelimit.default_limit, 10000],
    ['`ratelimit.anonymous_limit`', '2000', c.ratelimit.anonymous_limit, 2000],
    ['`ratelimit.redis_timeout_ms`', '50', c.ratelimit.redis_timeout_ms, 50],
    ['`ratelimit.on_redis_failure`', '`memory`', c.ratelimit.on_redis_failure, 'memory'],
    ['`idempotency.ttl_seconds`', '86400', c.idempotency.ttl_seconds, 86400],
    ['`sessions.idle_timeout_seconds`', '3600', c.sessions.idle_timeout_seconds, 3600],
    ['`sessions.default_max_sessions`', '8', c.sessions.default_max_sessions, 8],
    ['`inference.providers`', '`["cuda", "cpu"]`', c.inference.providers, ['cuda', 'cpu']],
    ['`inference.max_image_bytes` / `max_image_pixels`', '8 MiB / 40 M', [c.inference.max_image_bytes, c.inference.max_image_pixels], [8 * MiB, 40_000_000]],
    ['`inference.concurrency` / `max_queue` / `timeout_ms`', '1 / 16 / 30000', [c.inference.concurrency, c.inference.max_queue, c.inference.timeout_ms], [1, 16, 30000]],
    ['`inference.max_queue_per_owner`', '0', c.inference.max_queue_per_owner, 0],
    ['`inference.model_memory_mb`', '2048', c.inference.model_memory_mb, 2048],
    ['`inference.threads`', '0', c.inference.threads, 0],
    ['`inference.face_tiles`', '`true`', c.inference.face_tiles, true],
    ['`inference.models_dir`', '`models`', c.inference.models_dir, 'models'],
    ['`docs.enabled`', '`true`', c.docs.enabled, true],
    ['`vision.enabled`', '`true`', c.vision.enabled, true],
    ['`vision.detection_model`', '`""`', c.vision.detection_model, ''],
    ['`vision.scene_model`', '`""`', c.vision.scene_model, ''],
    ['`inference.backend`', '`local`', c.inference.backend, 'local'],
    ['`inference.kserve_urls` / `kserve_token`', '`[]` / `""`', [c.inference.kserve_urls, c.inference.kserve_token], [[], '']],
    ['`inference.kserve_tensors`', '`auto`', c.inference.kserve_tensors, 'auto'],
    ['`inference.kserve_timeout_ms` / `kserve_connect_timeout_ms`', '30000 / 2000', [c.inference.kserve_timeout_ms, c.inference.kserve_connect_timeout_ms], [30000, 2000]],
    ['`inference.kserve_health_interval_ms` / `kserve_eject_ms`', '2000 / 5000', [c.inference.kserve_health_interval_ms, c.inference.kserve_eject_ms], [2000, 5000]],
    ['`inference.kserve_max_response_bytes`', '256 MiB', c.inference.kserve_max_response_bytes, 256 * MiB],
    ['`worker.host`, `worker.port`', '`127.0.0.1`, `8000`', [c.worker.host, c.worker.port], ['127.0.0.1', 8000]],
    ['`worker.token`', '`""`', c.worker.token, ''],
    ['`worker.max_body_bytes` / `max_connections`', '64 MiB / 256', [c.worker.max_body_bytes, c.worker.max_connections], [64 * MiB, 256]],
    ['`log.level`', '`info`', c.log.level, 'info'],
    ['`log.access`', '`true`', c.log.access, true],
  ];

  for (const [key, printed, actual, expected] of rows) {
    it(`${key}: README prints ${printed}, and that is the default`, () => {
      assert.equal(row(key)[1], printed, `README's default for ${key}`);
      assert.deepEqual(actual, expected, `the embedded default for ${key}`);
    });
  }

  it('the table has no row this test does not check', () => {
    const start = README.indexOf('| key | default | meaning |');
    assert.ok(start > 0);
    const table = README.slice(start).split('\n\n')[0].split('\n').slice(2);
    const keys = table.map((l) => l.split(' | ')[0].replace(/^\| /, ''));
    assert.deepEqual(keys.filter((k) => !rows.some(([r]) => r === k)), []);
    assert.equal(keys.length, rows.length, `table rows: ${keys.join(' ')}`);
  });
});

describe('README "Example keypairs": the three example keypairs in examples/keypairs/', () => {
  it('AKIAIOSFODNN7EXAMPLE (user), AKIAEXAMPLEADMIN0001 (admin), AKIAEXAMPLESUPER0001 (superadmin), all in domain default', () => {
    const expected: Array<[string, string]> = [
      ['AKIAIOSFODNN7EXAMPLE', 'user'],
      ['AKIAEXAMPLEADMIN0001', 'admin'],
      ['AKIAEXAMPLESUPER0001', 'superadmin'],
    ];
    for (const [accessKey, role] of expected) {
      const k = parseKeypair(readFileSync(join(ROOT, 'examples', 'keypairs', `${accessKey}.toml`), 'utf8'));
      assert.equal(k.accessKey, accessKey);
      assert.equal(k.role, role);
      assert.equal(k.domain, 'default');
      assert.equal(k.isActive, true);
    }
    // "one is the AWS/Backend.AI documentation example"
    const docs = parseKeypair(readFileSync(join(ROOT, 'examples', 'keypairs', 'AKIAIOSFODNN7EXAMPLE.toml'), 'utf8'));
    assert.equal(docs.secretKey, 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY');
  });
});

describe('README "The two commands"', () => {
  it('`npm start` is serve with config.toml, `npm test` builds and type-checks first, .ci/run runs exactly npm test', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
    assert.match(pkg.scripts.start, /serve --config config\.toml$/);
    assert.match(pkg.scripts.prepare, /^tsc -p tsconfig\.json$/, '`npm ci` builds (prepare compiles to dist/)');
    assert.match(pkg.scripts.pretest, /tsc -p tsconfig\.json && tsc -p tsconfig\.test\.json/);
    assert.match(pkg.scripts.test, /node --import tsx --test .*test\/\*\.test\.ts$/);
    const ci = readFileSync(join(ROOT, '.ci', 'run'), 'utf8').trim().split('\n');
    assert.equal(ci.at(-1), 'npm test');
  });
});
