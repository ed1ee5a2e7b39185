import { pino, type Logger } from 'pino';

/** JSON logs on stdout. Credentials are redacted wherever they might be logged. */
export function createLogger(level: string): Logger {
  return pino({
    level,
    base: { service: 'kernelgate' },
    redact: {
      paths: [
        'secret_key',
        'secretKey',
        '*.secret_key',
        '*.secretKey',
        'req.headers.authorization',
        'headers.authorization',
      ],
      censor: '[redacted]',
    },
  });
}
