import { destination, pino, type Logger } from 'pino';

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

/**
 * The per-request access log: fixed fields that never hold secrets, so no
 * redaction pass, and asynchronous writes so a busy gateway batches lines
 * instead of making one write(2) per request.
 */
export function createAccessLogger(level: string): Logger {
  return pino({ level, base: { service: 'kernelgate' } }, destination({ dest: 1, sync: false }));
}
