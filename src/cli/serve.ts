import { parseArgs } from 'node:util';
import type { LoadedConfig } from '../config/config.js';
import { listenConfig } from './listen-config.js';
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
  return listenConfig(values, (config) => config.server);
}

export async function serve(argv: string[]): Promise<void> {
  const { config, warnings } = configFromArgs(argv);
  const gateway = await startGateway(config);
  for (const warning of warnings) gateway.log.warn(warning);
}
