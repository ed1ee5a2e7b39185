import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError } from '../config/config.js';
import { listenConfig } from './listen-config.js';
import { isLoopbackHost } from '../keypairs/published.js';
import { createLogger } from '../observability/logger.js';
import { TOKEN_FORMAT } from '../worker/token.js';

/**
 * `kernelgate worker`: serves every model over the Open Inference Protocol (see src/worker/server.ts),
 * or with --export-repository writes them as a Triton model repository and exits.
 */
export async function workerCommand(argv: string[], out: (line: string) => void): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: 'string', short: 'c' },
      host: { type: 'string' },
      port: { type: 'string', short: 'p' },
      token: { type: 'string' },
      'export-repository': { type: 'string' },
    },
    strict: true,
  });
  const { config } = listenConfig(values, (config) => config.worker);
  const log = createLogger(config.log.level);

  if (values['export-repository'] !== undefined) {
    const dir = resolve(values['export-repository']);
    const [{ WorkerModels }, { exportRepository }] = await Promise.all([import('../worker/models.js'), import('../worker/triton-export.js')]);
    const models = new WorkerModels(config.inference, log);
    const names = exportRepository(models, dir);
    await models.close();
    out(`wrote ${names.length} models to ${dir}: ${names.join(', ')}`);
    out(`serve them with: tritonserver --model-repository ${dir}`);
    return 0;
  }

  // The token: flag, then environment, then the config file. Never logged.
  const token = values.token ?? process.env.KERNELGATE_WORKER_TOKEN ?? config.worker.token;
  if (token !== '' && !TOKEN_FORMAT.test(token)) throw new ConfigError('the worker token must be 16 to 512 printable ASCII characters without spaces');
  if (token === '' && !isLoopbackHost(config.worker.host)) {
    throw new ConfigError(
      `refusing to listen on ${config.worker.host} without a token: anyone who reaches the port could run the models. ` +
        'Set --token, KERNELGATE_WORKER_TOKEN or [worker] token (and the gateways\' [inference] kserve_token), or listen on 127.0.0.1.',
    );
  }
  // ONNX Runtime and the models load only once the configuration is known to be safe to serve.
  const { createWorker } = await import('../worker/server.js');
  const worker = createWorker({ config, token, log });
  const address = await worker.listen();
  log.child({}, { level: 'info' }).info({ host: address.address, port: address.port, auth: token !== '' ? 'bearer' : 'none (loopback)', models: worker.models.list().map((m) => m.name) }, 'kernelgate worker listening');
  // Built-in models load now, so /v2/health/ready turns 200 once they can serve.
  for (const m of worker.models.list().filter((x) => x.builtin)) void worker.models.runner(m).catch(() => undefined);
  const stop = (signal: string) => {
    log.info({ signal }, 'worker shutting down');
    setTimeout(() => process.exit(1), 10_000).unref();
    worker.close().then(() => process.exit(0), () => process.exit(1));
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
  return -1;
}
