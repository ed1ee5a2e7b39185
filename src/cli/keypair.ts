import { createHash, randomBytes, randomInt } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfigFile } from '../config/config.js';
import { formatKeypair, parseKeypair, type ApiKeyEntry, type Keypair, type Role } from '../keypairs/keypair.js';
import { ACCESS_KEY_FORMAT } from '../validation/names.js';

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
const SECRET_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/** `AKIA` + 16 upper-case alphanumerics, uniformly from a CSPRNG. */
export function newAccessKey(): string {
  let key = 'AKIA';
  for (let i = 0; i < 16; i++) key += ALNUM[randomInt(ALNUM.length)];
  return key;
}

/** 40 characters from a CSPRNG (64-symbol alphabet, so each byte maps without bias). */
export function newSecretKey(): string {
  return [...randomBytes(40)].map((b) => SECRET_ALPHABET[b & 63]).join('');
}

/**
 * Writes a keypair file atomically: a temp file in the same folder (mode 0600, a name the gateway does not
 * read), flushed, then renamed over the target, so the gateway's watcher never sees half a file.
 */
export function writeKeypairFileAtomic(file: string, text: string): void {
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    renameSync(tmp, file);
  } catch (error) {
    unlinkSync(tmp);
    throw error;
  }
}

function keypairDir(values: { dir?: string; config?: string }): string {
  if (values.dir) return resolve(values.dir);
  if (values.config) return loadConfigFile(values.config).keypairs.dir;
  return resolve('keypairs');
}

const common = {
  dir: { type: 'string' as const },
  config: { type: 'string' as const, short: 'c' },
  json: { type: 'boolean' as const },
};

const BASE62 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** Uniform base62 characters from a CSPRNG (rejection sampling: bytes >= 248 are drawn again). */
function base62(length: number): string {
  let out = '';
  while (out.length < length) {
    for (const b of randomBytes(length * 2)) {
      if (b < 248 && out.length < length) out += BASE62[b % 62];
    }
  }
  return out;
}

/** A static API key: `kg_` + 32 base62 characters (about 190 random bits). */
export function newApiKey(): string {
  return `kg_${base62(32)}`;
}

/** A public key id, 6 base62 characters. */
export function newApiKeyId(): string {
  return base62(6);
}

function apikeyCommand(argv: string[], out: (line: string) => void): number {
  const [action, ...rest] = argv;
  const usage = 'usage: kernelgate keypair apikey add|list|revoke ACCESS_KEY ...';
  const { values, positionals } = parseArgs({
    args: rest,
    options: { ...common, scope: { type: 'string', default: 'full' }, 'expires-at': { type: 'string' } },
    allowPositionals: true,
  });
  const accessKey = positionals[0];
  if (!accessKey || !ACCESS_KEY_FORMAT.test(accessKey)) throw new Error(usage);
  const file = join(keypairDir(values), `${accessKey}.toml`);
  if (!existsSync(file)) throw new Error(`no keypair ${accessKey}`);
  const keypair = parseKeypair(readFileSync(file, 'utf8'));
  const keys = keypair.apiKeys ?? [];
  const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());
  if (action === 'add') {
    if (values.scope !== 'read' && values.scope !== 'full') throw new Error('--scope must be read or full');
    let expiresAt: number | undefined;
    if (values['expires-at'] !== undefined) {
      expiresAt = Date.parse(values['expires-at']);
      if (!Number.isFinite(expiresAt)) throw new Error('--expires-at must be an ISO 8601 date');
    }
    const key = newApiKey();
    let id = newApiKeyId();
    while (keys.some((k) => k.id === id)) id = newApiKeyId();
    const entry: ApiKeyEntry = {
      id,
      sha256: createHash('sha256').update(key).digest('hex'),
      scope: values.scope,
      createdAt: Math.floor(Date.now() / 1000) * 1000,
      ...(expiresAt === undefined ? {} : { expiresAt }),
    };
    writeKeypairFileAtomic(file, formatKeypair({ ...keypair, apiKeys: [...keys, entry] }));
    if (values.json) {
      out(JSON.stringify({ id, api_key: key, scope: entry.scope, expires_at: iso(expiresAt), access_key: accessKey }));
    } else {
      out(`id      = ${id}`);
      out(`api_key = ${key}`);
      out(`scope   = ${entry.scope}`);
      out('The API key is shown only this once; the keypair file keeps only its SHA-256.');
    }
    return 0;
  }
  if (action === 'list') {
    const rows = keys.map((k) => ({ id: k.id, scope: k.scope, created_at: iso(k.createdAt), expires_at: iso(k.expiresAt) }));
    if (values.json) out(JSON.stringify(rows));
    else for (const r of rows) out(Object.entries(r).map(([k, v]) => `${k}=${v}`).join('  '));
    return 0;
  }
  if (action === 'revoke') {
    const id = positionals[1];
    if (!id) throw new Error('usage: kernelgate keypair apikey revoke ACCESS_KEY ID');
    if (!keys.some((k) => k.id === id)) throw new Error(`no API key ${id} in keypair ${accessKey}`);
    writeKeypairFileAtomic(file, formatKeypair({ ...keypair, apiKeys: keys.filter((k) => k.id !== id) }));
    out(`revoked API key ${id} of ${accessKey}`);
    return 0;
  }
  throw new Error(usage);
}

export function keypairCommand(argv: string[], out: (line: string) => void): number {
  const [action, ...rest] = argv;
  if (action === 'apikey') return apikeyCommand(rest, out);
  if (action === 'create') {
    const { values } = parseArgs({
      args: rest,
      options: {
        ...common,
        role: { type: 'string', default: 'user' },
        domain: { type: 'string', default: 'default' },
        user: { type: 'string', default: '' },
        'rate-limit': { type: 'string' },
        'max-sessions': { type: 'string' },
        'expires-at': { type: 'string' },
      },
    });
    if (!['user', 'admin', 'superadmin'].includes(values.role!)) throw new Error('--role must be user, admin or superadmin');
    const dir = keypairDir(values);
    mkdirSync(dir, { recursive: true });
    const integer = (name: string, v: string | undefined) => {
      if (v === undefined) return undefined;
      if (!/^\d+$/.test(v)) throw new Error(`--${name} must be a whole number`);
      return Number(v);
    };
    let expiresAt: number | undefined;
    if (values['expires-at'] !== undefined) {
      expiresAt = Date.parse(values['expires-at']);
      if (!Number.isFinite(expiresAt)) throw new Error('--expires-at must be an ISO 8601 date');
    }
    let accessKey = newAccessKey();
    while (existsSync(join(dir, `${accessKey}.toml`))) accessKey = newAccessKey();
    const keypair: Keypair = {
      accessKey,
      secretKey: newSecretKey(),
      role: values.role as Role,
      domain: values.domain!,
      user: values.user!,
      rateLimit: integer('rate-limit', values['rate-limit']),
      maxSessions: integer('max-sessions', values['max-sessions']),
      isActive: true,
      expiresAt,
    };
    const file = join(dir, `${accessKey}.toml`);
    writeKeypairFileAtomic(file, formatKeypair(keypair));
    if (values.json) {
      out(JSON.stringify({ access_key: accessKey, secret_key: keypair.secretKey, file }));
    } else {
      out(`access_key = ${accessKey}`);
      out(`secret_key = ${keypair.secretKey}`);
      out(`file       = ${file}`);
      out('The secret key is shown only this once.');
    }
    return 0;
  }
  if (action === 'list') {
    const { values } = parseArgs({ args: rest, options: common });
    const dir = keypairDir(values);
    const rows: Array<Record<string, unknown>> = [];
    for (const name of existsSync(dir) ? readdirSync(dir).sort() : []) {
      if (!name.endsWith('.toml')) continue;
      try {
        const k = parseKeypair(readFileSync(join(dir, name), 'utf8'));
        rows.push({
          access_key: k.accessKey,
          role: k.role,
          domain: k.domain,
          user: k.user,
          is_active: k.isActive,
          expires_at: k.expiresAt === undefined ? null : new Date(k.expiresAt).toISOString(),
          rate_limit: k.rateLimit ?? null,
          max_sessions: k.maxSessions ?? null,
        });
      } catch (error) {
        rows.push({ access_key: name.slice(0, -5), error: (error as Error).message });
      }
    }
    if (values.json) out(JSON.stringify(rows));
    else for (const r of rows) out(Object.entries(r).map(([k, v]) => `${k}=${v}`).join('  '));
    return 0;
  }
  if (action === 'revoke') {
    const { values, positionals } = parseArgs({
      args: rest,
      options: { ...common, delete: { type: 'boolean' } },
      allowPositionals: true,
    });
    const accessKey = positionals[0];
    if (!accessKey || !ACCESS_KEY_FORMAT.test(accessKey)) throw new Error('usage: kernelgate keypair revoke ACCESS_KEY [--delete]');
    const file = join(keypairDir(values), `${accessKey}.toml`);
    if (!existsSync(file)) throw new Error(`no keypair ${accessKey}`);
    if (values.delete) {
      unlinkSync(file);
      out(`deleted ${accessKey}`);
    } else {
      const k = parseKeypair(readFileSync(file, 'utf8'));
      writeKeypairFileAtomic(file, formatKeypair({ ...k, isActive: false }));
      out(`revoked ${accessKey}`);
    }
    return 0;
  }
  throw new Error(`usage: kernelgate keypair create|list|revoke|apikey (not ${action ?? 'nothing'})`);
}
