import { buildConfig, ConfigError, readConfigFile, type Config, type LoadedConfig } from '../config/config.js';

/** The options of a command that listens: `--config FILE`, `--host`, `--port`. */
export interface ListenArgs {
  config?: string;
  host?: string;
  port?: string;
}

/**
 * The config file (or the embedded defaults) with `--host` / `--port` applied to the section that says where
 * the command listens (`[server]` for serve, `[worker]` for worker). The config is frozen once loaded:
 * command-line overrides are its last changes.
 */
export function listenConfig(values: ListenArgs, section: (config: Config) => { host: string; port: number }): LoadedConfig {
  const adjust = (config: Config) => {
    const target = section(config);
    if (values.host !== undefined) target.host = values.host;
    if (values.port !== undefined) {
      const port = Number(values.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ConfigError(`--port: not a port number: ${values.port}`);
      target.port = port;
    }
  };
  return values.config ? readConfigFile(values.config, { adjust }) : buildConfig({}, { baseDir: process.cwd(), adjust });
}
