/**
 * The config schema: defaults, the [store] section and its deprecated [ratelimit] names, and a loaded
 * config that nothing can change afterwards.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildConfig, ConfigError, configFromObject, defaultConfig, readConfigFile } from '../src/config/config.js';
import { ALICE, startGateway } from './helpers/gateway.js';

describe('config: [store]', () => {
  it('defaults to the memory store, one Redis node at the default URL', () => {
    assert.deepEqual(defaultConfig().store, {
      kind: 'memory',
      redis_url: 'redis://127.0.0.1:6379',
      redis_mode: 'single',
      redis_nodes: [],
      redis_sentinel_name: 'mymaster',
    });
  });

  it('[store] keys are read, and the old [ratelimit] names mirror them', () => {
    const { config, warnings } = buildConfig({
      store: { kind: 'redis', redis_url: 'redis://r:1', redis_mode: 'sentinel', redis_nodes: ['a:26379', 'b:26379'], redis_sentinel_name: 'm' },
    });
    assert.deepEqual(config.store, { kind: 'redis', redis_url: 'redis://r:1', redis_mode: 'sentinel', redis_nodes: ['a:26379', 'b:26379'], redis_sentinel_name: 'm' });
    assert.equal(config.ratelimit.store, 'redis');
    assert.equal(config.ratelimit.redis_url, 'redis://r:1');
    assert.deepEqual(warnings, []);
  });

  it('[ratelimit] store and redis_url still work, with one deprecation warning naming both', () => {
    const { config, warnings } = buildConfig({ ratelimit: { store: 'redis', redis_url: 'redis://old:2' } }, { source: 'x.toml' });
    assert.equal(config.store.kind, 'redis');
    assert.equal(config.store.redis_url, 'redis://old:2');
    assert.equal(warnings.length, 1);
    assert.match(warnings[0], /^x\.toml: ratelimit\.store and ratelimit\.redis_url are deprecated: use store\.kind and store\.redis_url/);
    assert.equal(buildConfig({ ratelimit: { store: 'memory' } }).warnings.length, 1);
  });

  it('an old and a new key that agree are accepted (with the warning); that disagree stop the start naming both', () => {
    const same = buildConfig({ ratelimit: { store: 'redis' }, store: { kind: 'redis' } });
    assert.equal(same.config.store.kind, 'redis');
    assert.equal(same.warnings.length, 1);
    assert.throws(
      () => configFromObject({ ratelimit: { store: 'redis' }, store: { kind: 'memory' } }),
      (e: Error) => e instanceof ConfigError && /"ratelimit\.store"/.test(e.message) && /"store\.kind"/.test(e.message),
    );
    assert.throws(
      () => configFromObject({ ratelimit: { redis_url: 'redis://a:1' }, store: { redis_url: 'redis://b:1' } }),
      (e: Error) => e instanceof ConfigError && /"ratelimit\.redis_url"/.test(e.message) && /"store\.redis_url"/.test(e.message),
    );
  });

  it('refuses unknown store keys and modes, naming them', () => {
    assert.throws(() => configFromObject({ store: { mode: 'single' } }), /unknown key "store\.mode"/);
    assert.throws(() => configFromObject({ store: { redis_mode: 'ring' } }), /"store\.redis_mode" must be one of "single", "sentinel", "cluster"/);
    assert.throws(() => configFromObject({ store: { redis_nodes: 'a:1' } }), /"store\.redis_nodes" must be array/);
  });
});

describe('config: loaded once, then frozen', () => {
  it('a loaded config and every section and list in it are frozen', () => {
    const config = configFromObject({ server: { port: 1 } });
    for (const value of [config, config.server, config.server.trusted_proxies, config.auth.algorithms, config.store, config.store.redis_nodes]) {
      assert.ok(Object.isFrozen(value));
    }
    assert.throws(() => {
      (config.server as { port: number }).port = 2;
    }, TypeError);
  });

  it('does not change the object it was given', () => {
    const raw = { server: { port: 1 } };
    configFromObject(raw);
    assert.deepEqual(raw, { server: { port: 1 } });
  });

  it('adjust (command-line overrides) runs before freezing; relative paths resolve against the file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kg-config-'));
    const file = join(dir, 'c.toml');
    writeFileSync(file, '[keypairs]\ndir = "k"\n[server]\nport = 1\n');
    const { config } = readConfigFile(file, { adjust: (c) => (c.server.port = 2) });
    assert.equal(config.server.port, 2);
    assert.equal(config.keypairs.dir, join(dir, 'k'));
    assert.equal(config.inference.models_dir, join(dir, 'models'));
    assert.ok(Object.isFrozen(config.server));
  });

  it('defaultConfig() is a fresh copy each time, for tests to adjust', () => {
    const a = defaultConfig();
    a.server.trusted_proxies.push('10.0.0.0/8');
    assert.deepEqual(defaultConfig().server.trusted_proxies, []);
  });
});

describe('kernelgate serve: the deprecation warning', () => {
  it('is logged once at start', async () => {
    const gw = await startGateway({ keypairs: [ALICE], config: '[ratelimit]\nstore = "memory"\n' });
    try {
      const deadline = Date.now() + 5000;
      const warnings = () => gw.output.filter((line) => line.includes('deprecated: use store.kind'));
      while (warnings().length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.equal(warnings().length, 1, gw.output.join('\n'));
      assert.equal(JSON.parse(warnings()[0]).level, 40, 'at warn');
    } finally {
      await gw.stop();
    }
  });
});
