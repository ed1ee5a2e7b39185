import { parseArgs } from 'node:util';
import { credentials } from './credentials.js';
import { createSigningProxy } from '../proxy/proxy.js';

const list = (value: string | undefined) => value?.split(',').map((p) => p.trim()).filter(Boolean);

/**
 * `kernelgate proxy -k KEYPAIR.toml [--upstream URL] [--host H] [--port N] [--allow /a,/b]
 * [--client-limit N] [--client-window S] [--trusted-proxies LIST] [--allow-admin] [--allow-owner]`
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
    },
  });
  const schemes = list(values.auth) ?? [];
  for (const s of schemes) if (s !== 'apikey') throw new Error(`--auth: unsupported scheme ${s} (supported: apikey)`);
  let identify: ((req: import('node:http').IncomingMessage) => { accessKey: string; secretKey: string; role: string }) | undefined;
  if (schemes.length > 0) {
    // Per-visitor identity: each visitor's API key names its keypair in this folder; its secret signs upstream.
    const { resolve } = await import('node:path');
    const { KeypairStore } = await import('../keypairs/keypair-store.js');
    const { checkApiKey } = await import('../auth/authenticators/apikey.js');
    const { ApiError } = await import('../problems/api-error.js');
    const store = new KeypairStore(resolve(values.dir ?? 'keypairs'));
    store.start();
    identify = (req) => {
      const header = req.headers['x-api-key'];
      if (typeof header !== 'string' || header === '') {
        throw new ApiError(401, 'auth-failed', 'No credentials were given: send your API key as x-api-key.');
      }
      return checkApiKey(header, false, (h) => store.byApiKeyHash(h), Date.now()).keypair;
    };
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
