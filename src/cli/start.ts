import { ConfigError, type Config } from '../config/config.js';
import { hasPublishedSecret, isLoopbackHost } from '../keypairs/published.js';
import { createGateway, type Gateway } from '../gateway.js';

/** Starts a gateway in the foreground and stops it cleanly on SIGINT/SIGTERM. */
export async function startGateway(config: Config): Promise<Gateway> {
  const gateway = await createGateway(config);
  // Keypairs whose secrets anyone can read (examples/keypairs/, documentation examples) are for a gateway
  // nobody else can reach: refuse to listen elsewhere while one is loaded, and refuse any that appear later.
  const published = gateway.keypairs.all().filter(hasPublishedSecret).map((k) => gateway.keypairs.fileOf(k.accessKey));
  if (!isLoopbackHost(config.server.host)) {
    if (published.length > 0) {
      await gateway.close().catch(() => undefined);
      throw new ConfigError(
        `refusing to listen on ${config.server.host}: ${published.length === 1 ? 'keypair file' : 'keypair files'} ${published.join(', ')} ` +
          `${published.length === 1 ? 'carries a secret' : 'carry secrets'} published in the kernelgate repository. ` +
          'Delete them (kernelgate keypair revoke ACCESS_KEY --delete) or point [keypairs] dir at a folder of your own keypairs, or listen on 127.0.0.1.',
      );
    }
    gateway.keypairs.refusePublished = true;
  } else if (published.length > 0) {
    gateway.log.warn({ files: published }, 'keypairs with secrets published in the kernelgate repository are loaded: development only; the gateway will not listen on a non-loopback address with them');
  }
  const address = await gateway.listen();
  // Always announced, whatever the log level: operators and test harnesses wait for it.
  gateway.log.child({}, { level: 'info' }).info({ host: address.address, port: address.port, keypairs: gateway.keypairs.size, ratelimit: gateway.rateLimits.kind }, 'kernelgate listening');
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    gateway.log.info({ signal }, 'shutting down');
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    gateway.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  // A bug that escapes every handler leaves state we cannot trust: log it (the
  // logger redacts credentials) and exit for the supervisor to restart us.
  process.on('uncaughtException', (error) => {
    gateway.log.fatal({ err: error }, 'uncaught exception; exiting');
    process.exit(1);
  });
  process.on('unhandledRejection', (reason) => {
    gateway.log.fatal({ err: reason }, 'unhandled rejection; exiting');
    process.exit(1);
  });
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
  return gateway;
}
