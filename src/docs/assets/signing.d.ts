// Types of the browser signing module (signing.js), for the tests that run it in Node.
export type HashAlgorithm = 'sha1' | 'sha256' | 'sha384' | 'sha512';
export type Body = Uint8Array | ArrayBuffer | string | undefined;
export interface CanonicalParts {
  method: string;
  target: string;
  date: string;
  host: string;
  contentType: string | undefined;
  apiVersion: string;
  bodyHash: string;
  versionLabel?: 'x-backendai-version' | 'x-sorna-version';
}
export interface SignInput {
  method: string;
  target: string;
  host: string;
  accessKey: string;
  secretKey: string;
  apiVersion: string;
  body?: Body;
  contentType?: string;
  algorithm?: HashAlgorithm;
  date?: string;
}
export function trimHeaderValue(value: string): string;
export function canonicalContentType(value: string | undefined | null): string;
export function stringToSign(parts: CanonicalParts): string;
export function keyDateOf(date: string): string | undefined;
export function bodyHash(algorithm: HashAlgorithm, body: Body): Promise<string>;
export function deriveSigningKey(algorithm: HashAlgorithm, secretKey: string, keyDate: string, host: string): Promise<Uint8Array>;
export function computeSignature(algorithm: HashAlgorithm, signingKey: Uint8Array, canonical: string): Promise<string>;
export function signingDate(at?: Date): string;
export function signRequest(input: SignInput): Promise<{ headers: Record<string, string>; stringToSign: string; signature: string }>;
