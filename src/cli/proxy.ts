import { parseArgs } from 'node:util';
import { credentials } from './credentials.js';
import { createSigningProxy } from '../proxy/proxy.js';

const list = (value: string | undefined) => value?.split(',').map((p) => p.trim()).filter(Boolean);

/**
 * `kernelgate proxy -k KEYPAIR.toml [--upstream URL] [--host H] [--port N] [--allow /a,/b]
 * [--client-limit N] [--client-window S] [--trusted-proxies LIST] [--allow-admin] [--allow-owner]
 * [--auth apikey,oidc [--config GATEWAY.toml] [--dir KEYPAIRS]]`
 */
export async function proxyCommand(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      keypair: { type: 'string', short: 'k' },
      upstream: { type: 'string', default: 'http://127.0.0.1:8080' },
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '8081' },
      allow: { type: 'string' },
      'client-limit': { type: 'string', default: '600' },
      'client-window': { type: 'string', default: '60' },
      'trusted-proxies': { type: 'string' },
      'allow-admin': { type: 'boolean', default: false },
      'allow-owner': { type: 'boolean', default: false },
      auth: { type: 'string' },
      dir: { type: 'string' },
      config: { type: 'string' },
    },
  });
  const schemes = list(values.auth) ?? [];
  for (const s of schemes) if (s !== 'apikey' && s !== 'oidc') throw new Error(`--auth: unsupported scheme ${s} (supported: apikey, oidc)`);
  let identify: Parameters<typeof createSigningProxy>[0]['identify'];
  if (schemes.length > 0) {
    // Per-visitor identity: each visitor's API key or bearer token names its keypair in the folder; its secret signs upstream.
    const { resolve } = await import('node:path');
    const { KeypairStore } = await import('../keypairs/keypair-store.js');
    const { visitorIdentity } = await import('../proxy/visitors.js');
    const config = values.config === undefined ? undefined : (await import('../config/config.js')).loadConfigFile(values.config);
    const issuers = config?.auth.oidc ?? [];
    if (schemes.includes('oidc') && issuers.length === 0) throw new Error('--auth oidc needs --config FILE with at least one [[auth.oidc]] issuer (the gateway\'s own config will do)');
    const store = new KeypairStore(resolve(values.dir ?? config?.keypairs.dir ?? 'keypairs'));
    store.start();
    identify = visitorIdentity({
      schemes: schemes as Array<'apikey' | 'oidc'>,
      apiKeys: (h) => store.byApiKeyHash(h),
      bySubject: (s) => store.bySubject(s),
      issuers,
      warn: (fields) => process.stderr.write(`${JSON.stringify({ level: 40, msg: 'authentication failed', ...fields })}\n`),
    });
  }
  const { accessKey, secretKey, role } = identify === undefined ? await credentials(values.keypair, process.env) : { accessKey: '', secretKey: '', role: undefined };
  const allowAdmin = values['allow-admin']!;
  if (role !== undefined && role !== 'user' && !allowAdmin) {
    throw new Error(`refusing to sign with the ${role} keypair ${values.keypair}: every visitor would hold its powers. Use a user keypair, or pass --allow-admin.`);
  }
  const number = (name: string, value: string, max: number) => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || n > max) throw new Error(`--${name} must be a whole number up to ${max}`);
    return n;
  };
  const proxy = createSigningProxy({
    upstream: values.upstream!,
    accessKey,
    secretKey,
    host: values.host,
    port: number('port', values.port!, 65535),
    allow: list(values.allow),
    clientLimit: number('client-limit', values['client-limit']!, Number.MAX_SAFE_INTEGER),
    clientWindowSeconds: number('client-window', values['client-window']!, 86400 * 366),
    trustedProxies: list(values['trusted-proxies']),
    allowAdmin,
    allowOwner: values['allow-owner'],
    identify,
  });
  const address = await proxy.listen();
  process.stdout.write(`${JSON.stringify({ msg: 'kernelgate proxy listening', host: address.address, port: address.port, upstream: values.upstream, accessKey })}\n`);
  const stop = () => proxy.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
