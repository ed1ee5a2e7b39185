import { helpFor, USAGE, wantsHelp } from './help.js';

/**
 * Each command loads only its own modules (dynamic imports): `kernelgate sign`
 * must not pay for Koa, ONNX Runtime and the config schema on every call.
 */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const io = {
    out: (chunk: string | Uint8Array) => process.stdout.write(chunk),
    err: (line: string) => process.stderr.write(`${line}\n`),
    env: process.env,
  };
  if (command === 'help' && rest.length > 0) {
    const text = helpFor(rest[0], rest.slice(1));
    io.out(`${text ?? USAGE}\n`);
    return text === undefined ? 2 : 0;
  }
  if (command !== undefined && wantsHelp(rest)) {
    const text = helpFor(command, rest);
    if (text !== undefined) {
      io.out(`${text}\n`);
      return 0;
    }
  }
  try {
    switch (command) {
      case 'serve': {
        const { serve } = await import('./serve.js');
        await serve(rest);
        return -1; // keep running
      }
      case 'keypair': {
        const { keypairCommand } = await import('./keypair.js');
        return await keypairCommand(rest, (line) => io.out(`${line}\n`));
      }
      case 'sign': {
        const { signCommand } = await import('./sign.js');
        return await signCommand(rest, io);
      }
      case 'model': {
        const { modelCommand } = await import('./model.js');
        return await modelCommand(rest, io);
      }
      case 'worker': {
        const { workerCommand } = await import('./worker.js');
        return await workerCommand(rest, (line) => io.out(`${line}\n`));
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
    // By name, not instanceof: importing config.js here would load the schema compiler for every command.
    const isConfigError = (error as Error)?.name === 'ConfigError';
    const message = isConfigError ? `configuration error: ${(error as Error).message}` : `kernelgate ${command}: ${(error as Error).message}`;
    io.err(message);
    return isConfigError ? 78 : 1;
  }
}
