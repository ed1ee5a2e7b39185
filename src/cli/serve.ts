import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import { ConfigError, defaultConfig, loadConfigFile, type Config } from '../config/config.js';
import { startGateway } from './start.js';

export function configFromArgs(argv: string[]): Config {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: 'string', short: 'c' },
      host: { type: 'string' },
      port: { type: 'string', short: 'p' },
    },
    strict: true,
  });
  const config = values.config ? loadConfigFile(values.config) : defaultConfig();
  if (!values.config) {
    config.keypairs.dir = resolve(config.keypairs.dir);
    config.inference.models_dir = resolve(config.inference.models_dir);
  }
  if (values.host !== undefined) config.server.host = values.host;
  if (values.port !== undefined) {
    const port = Number(values.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ConfigError(`--port: not a port number: ${values.port}`);
    config.server.port = port;
  }
  return config;
}

export async function serve(argv: string[]): Promise<void> {
  const config = configFromArgs(argv);
  await startGateway(config);
}
