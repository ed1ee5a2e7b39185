import type { Config } from '../config/config.js';
import { createGateway, type Gateway } from './gateway.js';

/** Starts a gateway in the foreground and stops it cleanly on SIGINT/SIGTERM. */
export async function startGateway(config: Config): Promise<Gateway> {
  const gateway = await createGateway(config);
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
