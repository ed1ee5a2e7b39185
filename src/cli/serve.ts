import { parseArgs } from 'node:util';
import { buildConfig, ConfigError, readConfigFile, type Config, type LoadedConfig } from '../config/config.js';
import { startGateway } from './start.js';

export function configFromArgs(argv: string[]): LoadedConfig {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: 'string', short: 'c' },
      host: { type: 'string' },
      port: { type: 'string', short: 'p' },
    },
    strict: true,
  });
  // The config is frozen once loaded: command-line overrides are its last changes.
  const adjust = (config: Config) => {
    if (values.host !== undefined) config.server.host = values.host;
    if (values.port !== undefined) {
      const port = Number(values.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ConfigError(`--port: not a port number: ${values.port}`);
      config.server.port = port;
    }
  };
  return values.config ? readConfigFile(values.config, { adjust }) : buildConfig({}, { baseDir: process.cwd(), adjust });
}

export async function serve(argv: string[]): Promise<void> {
  const { config, warnings } = configFromArgs(argv);
  const gateway = await startGateway(config);
  for (const warning of warnings) gateway.log.warn(warning);
}
