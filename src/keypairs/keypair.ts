import { parse as parseToml } from 'smol-toml';
import { ACCESS_KEY_FORMAT } from '../validation/names.js';
import { ajv, firstProblem } from '../validation/ajv.js';

export type Role = 'user' | 'admin' | 'superadmin';

export interface Keypair {
  accessKey: string;
  secretKey: string;
  role: Role;
  domain: string;
  user: string;
  rateLimit?: number;
  maxSessions?: number;
  isActive: boolean;
  /** Epoch milliseconds; undefined means never. */
  expiresAt?: number;
  /** OIDC subjects (token subject claims) that act as this keypair. */
  oidcSubjects?: string[];
  /** Static API keys of this keypair (`[[api_keys]]`), stored as SHA-256 hex only. */
  apiKeys?: ApiKeyEntry[];
}

export type ApiKeyScope = 'read' | 'full';

/** One `[[api_keys]]` entry: never the key itself, only its hash. */
export interface ApiKeyEntry {
  /** Public identifier, safe to log. */
  id: string;
  /** Lower-case hex SHA-256 of the key. */
  sha256: string;
  scope: ApiKeyScope;
  /** Epoch milliseconds. */
  createdAt: number;
  expiresAt?: number;
}

export const API_KEY_ID_FORMAT = /^[A-Za-z0-9]{6,8}$/;

// The access key's format belongs to the whole gateway (the signing core checks it too); re-exported
// here because it is also the keypair file's.
export { ACCESS_KEY_FORMAT };

const keypairSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['access_key', 'secret_key'],
  properties: {
    access_key: { type: 'string', pattern: ACCESS_KEY_FORMAT.source },
    secret_key: { type: 'string', minLength: 16, maxLength: 256 },
    role: { enum: ['user', 'admin', 'superadmin'] },
    domain: { type: 'string', minLength: 1 },
    user: { type: 'string' },
    rate_limit: { type: 'integer', minimum: 0 },
    max_sessions: { type: 'integer', minimum: 0 },
    is_active: { type: 'boolean' },
    // smol-toml gives TOML datetimes as Date objects; strings are accepted too.
    expires_at: {},
    oidc_subjects: { type: 'array', items: { type: 'string', minLength: 1 }, uniqueItems: true },
    api_keys: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['id', 'sha256', 'scope', 'created_at'],
        properties: {
          id: { type: 'string', pattern: API_KEY_ID_FORMAT.source },
          sha256: { type: 'string', pattern: '^[0-9a-f]{64}$' },
          scope: { enum: ['read', 'full'] },
          created_at: {},
          expires_at: {},
        },
      },
    },
  },
} as const;

function dateOf(value: unknown, name: string): number {
  const ms = value instanceof Date ? value.getTime() : typeof value === 'string' ? Date.parse(value) : NaN;
  if (!Number.isFinite(ms)) throw new Error(`${name} is not a date`);
  return ms;
}

function tomlDate(ms: number): string {
  return new Date(ms).toISOString().replace(/\.000Z$/, 'Z');
}

const validate = ajv.compile(keypairSchema);

/** Parses one keypair file's text. Error messages never include the secret. */
export function parseKeypair(text: string): Keypair {
  let raw: Record<string, unknown>;
  try {
    raw = parseToml(text) as Record<string, unknown>;
  } catch {
    throw new Error('not valid TOML');
  }
  if (!validate(raw)) {
    const { path, message } = firstProblem(validate);
    throw new Error(`${path ? `/${path}` : 'keypair'} ${message}`);
  }
  let expiresAt: number | undefined;
  if (raw.expires_at !== undefined) {
    const value = raw.expires_at;
    expiresAt = value instanceof Date ? value.getTime() : typeof value === 'string' ? Date.parse(value) : NaN;
    if (!Number.isFinite(expiresAt)) throw new Error('expires_at is not a date');
  }
  return {
    accessKey: raw.access_key as string,
    secretKey: raw.secret_key as string,
    role: (raw.role as Role | undefined) ?? 'user',
    domain: (raw.domain as string | undefined) ?? 'default',
    user: (raw.user as string | undefined) ?? '',
    rateLimit: raw.rate_limit as number | undefined,
    maxSessions: raw.max_sessions as number | undefined,
    isActive: (raw.is_active as boolean | undefined) ?? true,
    expiresAt,
    ...(raw.oidc_subjects !== undefined ? { oidcSubjects: raw.oidc_subjects as string[] } : {}),
    ...(raw.api_keys === undefined ? {} : { apiKeys: parseApiKeys(raw.api_keys as Array<Record<string, unknown>>) }),
  };
}

function parseApiKeys(entries: Array<Record<string, unknown>>): ApiKeyEntry[] {
  const ids = new Set<string>();
  return entries.map((e, i) => {
    const id = e.id as string;
    if (ids.has(id)) throw new Error(`/api_keys/${i}/id ${id} is used twice`);
    ids.add(id);
    return {
      id,
      sha256: e.sha256 as string,
      scope: e.scope as ApiKeyScope,
      createdAt: dateOf(e.created_at, `api_keys/${i}/created_at`),
      ...(e.expires_at === undefined ? {} : { expiresAt: dateOf(e.expires_at, `api_keys/${i}/expires_at`) }),
    };
  });
}

export function isUsable(keypair: Keypair, now: number): boolean {
  return keypair.isActive && (keypair.expiresAt === undefined || keypair.expiresAt > now);
}

/** TOML text of a keypair file. */
export function formatKeypair(k: Keypair): string {
  const lines = [
    `access_key = ${JSON.stringify(k.accessKey)}`,
    `secret_key = ${JSON.stringify(k.secretKey)}`,
    `role = ${JSON.stringify(k.role)}`,
    `domain = ${JSON.stringify(k.domain)}`,
    `user = ${JSON.stringify(k.user)}`,
  ];
  if (k.rateLimit !== undefined) lines.push(`rate_limit = ${k.rateLimit}`);
  if (k.maxSessions !== undefined) lines.push(`max_sessions = ${k.maxSessions}`);
  lines.push(`is_active = ${k.isActive}`);
  if (k.expiresAt !== undefined) lines.push(`expires_at = ${new Date(k.expiresAt).toISOString().replace(/\.000Z$/, 'Z')}`);
  if (k.oidcSubjects !== undefined && k.oidcSubjects.length > 0) lines.push(`oidc_subjects = ${JSON.stringify(k.oidcSubjects)}`);
  for (const key of k.apiKeys ?? []) {
    lines.push('', '[[api_keys]]', `id = ${JSON.stringify(key.id)}`, `sha256 = ${JSON.stringify(key.sha256)}`, `scope = ${JSON.stringify(key.scope)}`, `created_at = ${tomlDate(key.createdAt)}`);
    if (key.expiresAt !== undefined) lines.push(`expires_at = ${tomlDate(key.expiresAt)}`);
  }
  return `${lines.join('\n')}\n`;
}
