import { parseArgs } from 'node:util';
import { credentials } from './credentials.js';
import { createSigningProxy } from '../proxy/proxy.js';

/** `kernelgate proxy --keypair FILE [--upstream URL] [--host H] [--port N] [--allow /a,/b]` */
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
    },
  });
  const { accessKey, secretKey } = await credentials(values.keypair, process.env);
  const proxy = createSigningProxy({
    upstream: values.upstream!,
    accessKey,
    secretKey,
    host: values.host,
    port: Number(values.port),
    allow: values.allow?.split(',').map((p) => p.trim()).filter(Boolean),
    clientLimit: Number(values['client-limit']),
    clientWindowSeconds: Number(values['client-window']),
  });
  const address = await proxy.listen();
  process.stdout.write(`${JSON.stringify({ msg: 'kernelgate proxy listening', host: address.address, port: address.port, upstream: values.upstream, accessKey })}\n`);
  const stop = () => proxy.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
