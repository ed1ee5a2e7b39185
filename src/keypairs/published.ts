import { createHash } from 'node:crypto';
import { BlockList, isIP } from 'node:net';
import type { Keypair } from './keypair.js';

/**
 * SHA-256 (hex) of secret keys that anyone can read: the repository's example
 * keypairs in examples/keypairs/ (printed in README.md) and the AWS / Backend.AI
 * documentation example `wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY`. Hashes, so
 * this file does not publish them once more. A test recomputes them from the
 * example files.
 */
export const PUBLISHED_SECRET_SHA256: ReadonlySet<string> = new Set([
  '5af4de84da747575a08889752fef54175fae7c5bf2834f275e4e05a7c96e5820', // examples/keypairs/AKIAEXAMPLEADMIN0001.toml
  '6bc8ce7a3cb8090d7c6ffe67c193d48dfe52388d80c7ee95115e8bccc26d97a7', // examples/keypairs/AKIAEXAMPLESUPER0001.toml
  '78314b11be2e581549ac1c4f616563fad3fdf0c3b71678f6e2299182080e0598', // AKIAIOSFODNN7EXAMPLE: the AWS documentation example
]);

export function hasPublishedSecret(keypair: Pick<Keypair, 'secretKey'>): boolean {
  return PUBLISHED_SECRET_SHA256.has(createHash('sha256').update(keypair.secretKey, 'utf8').digest('hex'));
}

const LOOPBACK_V6 = new BlockList();
LOOPBACK_V6.addAddress('::1', 'ipv6');

/** 127.0.0.0/8, ::1 (also as ::ffff:127.x.y.z) and `localhost`; everything else, 0.0.0.0 and :: included, is reachable from outside. */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  const v4 = h.startsWith('::ffff:') && isIP(h.slice(7)) === 4 ? h.slice(7) : h;
  if (isIP(v4) === 4) return v4.split('.')[0] === '127';
  if (isIP(h) === 6) return LOOPBACK_V6.check(h, 'ipv6');
  return false;
}
