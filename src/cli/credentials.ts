import { readFileSync } from 'node:fs';
import { parseKeypair } from '../keypairs/keypair.js';

/** The keypair a CLI command signs with: `--keypair FILE`, else the environment (Backend.AI's names too). */
export function credentials(keypairFile: string | undefined, env: NodeJS.ProcessEnv): { accessKey: string; secretKey: string } {
  if (keypairFile) {
    const k = parseKeypair(readFileSync(keypairFile, 'utf8'));
    return { accessKey: k.accessKey, secretKey: k.secretKey };
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
