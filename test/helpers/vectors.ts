import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { RequestToVerify } from '../../src/auth/verify.js';

export interface Vector {
  name: string;
  description: string;
  access_key: string;
  secret_key: string;
  sign_method: string;
  request: { method: string; target: string; headers: Array<[string, string]>; body_base64: string };
  body_hash_mode: 'strict' | 'backendai';
  date_used: string;
  key_date: string;
  signed_body_hash: string;
  string_to_sign: string;
  signing_key_hex: string;
  signature: string;
  authorization: string;
  valid: boolean;
}

export const VECTORS: Vector[] = JSON.parse(
  readFileSync(resolve(import.meta.dirname, '../../vectors/signing-vectors.json'), 'utf8'),
).vectors;

export function headerOf(headers: Array<[string, string]>, name: string): string | undefined {
  return headers.find(([n]) => n.toLowerCase() === name)?.[1];
}

/** The vector's request as the verifier sees it; first header of a name wins. */
export function toVerifiable(v: Vector, overrides: Partial<RequestToVerify> = {}): RequestToVerify {
  const headers: Array<[string, string]> = [...v.request.headers, ['Authorization', v.authorization]];
  return {
    method: v.request.method,
    target: v.request.target,
    header: (name) => headerOf(headers, name),
    host: headerOf(v.request.headers, 'host') ?? '',
    body: Buffer.from(v.request.body_base64, 'base64'),
    ...overrides,
  };
}
