import { ConfigError } from '../config/config.js';
import { keypairCommand } from './keypair.js';
import { serve } from './serve.js';
import { signCommand } from './sign.js';

const USAGE = `usage: kernelgate <command>
  serve   [--config FILE] [--host ADDR] [--port N]   run the gateway
  keypair create|list|revoke [...]                   manage keypair files
  sign    METHOD PATH [--data ...] [--endpoint URL]  sign and send one request
  model   upload|list|remove|backup|restore [...]     manage custom models (admin keypair)
  proxy   [--config FILE] [...]                      run the server-side signing proxy`;

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const io = {
    out: (chunk: string | Uint8Array) => process.stdout.write(chunk),
    err: (line: string) => process.stderr.write(`${line}\n`),
    env: process.env,
  };
  try {
    switch (command) {
      case 'serve':
        await serve(rest);
        return -1; // keep running
      case 'keypair':
        return keypairCommand(rest, (line) => io.out(`${line}\n`));
      case 'sign':
        return await signCommand(rest, io);
      case 'model': {
        const { modelCommand } = await import('./model.js');
        return await modelCommand(rest, io);
      }
      case 'proxy': {
        const { proxyCommand } = await import('./proxy.js');
        await proxyCommand(rest);
        return -1;
      }
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        io.out(`${USAGE}\n`);
        return command === undefined ? 2 : 0;
      default:
        io.err(`unknown command: ${command}\n${USAGE}`);
        return 2;
    }
  } catch (error) {
    const message = error instanceof ConfigError ? `configuration error: ${error.message}` : `kernelgate: ${(error as Error).message}`;
    io.err(message);
    return error instanceof ConfigError ? 78 : 1;
  }
}
