import { readFileSync } from 'node:fs';
import type { Keypair } from '../keypairs/keypair.js';

/**
 * The keypair a CLI command signs with: `--keypair FILE`, else the environment (Backend.AI's names too).
 * The keypair parser (TOML + schema) is loaded only when a file is given.
 */
export async function credentials(keypairFile: string | undefined, env: NodeJS.ProcessEnv): Promise<{ accessKey: string; secretKey: string; role?: Keypair['role'] }> {
  if (keypairFile) {
    const { parseKeypair } = await import('../keypairs/keypair.js');
    let k: Keypair;
    try {
      k = parseKeypair(readFileSync(keypairFile, 'utf8'));
    } catch (error) {
      throw new Error(`${keypairFile}: ${(error as Error).message}`);
    }
    return { accessKey: k.accessKey, secretKey: k.secretKey, role: k.role };
  }
  const accessKey = env.KERNELGATE_ACCESS_KEY || env.BACKEND_ACCESS_KEY;
  const secretKey = env.KERNELGATE_SECRET_KEY || env.BACKEND_SECRET_KEY;
  if (!accessKey || !secretKey) {
    throw new Error('no keypair: pass --keypair FILE or set KERNELGATE_ACCESS_KEY and KERNELGATE_SECRET_KEY');
  }
  return { accessKey, secretKey };
}

/** The gateway a CLI command talks to. */
export function endpointOf(flag: string | undefined, env: NodeJS.ProcessEnv): string {
  return flag ?? env.KERNELGATE_ENDPOINT ?? env.BACKEND_ENDPOINT ?? 'http://127.0.0.1:8080';
}

const NETWORK_REASONS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  ETIMEDOUT: 'timed out',
  UND_ERR_CONNECT_TIMEOUT: 'connect timed out',
  UND_ERR_SOCKET: 'connection closed',
  UND_ERR_HEADERS_TIMEOUT: 'no answer in time',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host lookup failed',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  EPIPE: 'connection closed',
};

/**
 * What fetch's bare "fetch failed" means, with the URL that was tried:
 * "nothing answered at http://127.0.0.1:8080/auth/test (connection refused)".
 */
export function describeFetchFailure(url: string, error: unknown): Error {
  let cause = (error as { cause?: unknown })?.cause ?? error;
  // AggregateError (tried IPv4 and IPv6): the first attempt says enough.
  const errors = (cause as { errors?: unknown[] })?.errors;
  if (Array.isArray(errors) && errors.length > 0) cause = errors[0];
  const code = (cause as { code?: string })?.code;
  const reason = (code && NETWORK_REASONS[code]) ?? (code ? code : (cause as Error)?.message ?? String(cause));
  return new Error(`nothing answered at ${url} (${reason})`);
}
