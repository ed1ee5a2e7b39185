import { Type, type Static, type TSchema } from '@sinclair/typebox';
import type { HashAlgorithm } from '../signing/algorithms.js';
import { REDIS_NODE_PATTERN } from '../redis/topology.js';

/**
 * config.toml as one TypeBox schema: the Config type, the defaults (`default` on every key) and the
 * validation (every key optional because it has a default, unknown keys refused) all come from here.
 */
export const API_VERSIONS = [
  'v4.20181215', 'v4.20190115', 'v4.20190315', 'v4.20190615', 'v5.20191215',
  'v6.20200815', 'v6.20210815', 'v6.20220315', 'v6.20220615', 'v6.20230315',
  'v7.20230615', 'v8.20240315', 'v8.20240915',
];

/**
 * A JSON Schema `enum`, not TypeBox's anyOf of literals: Ajv then reports one "must be one of"
 * error with the allowed values, which is the message config errors print.
 */
const OneOf = <const T extends string>(values: readonly T[], options: { default?: T; description?: string } = {}) =>
  Type.Unsafe<T>({ enum: [...values], ...options });

/** A section: unknown keys refused, absent means all its defaults. */
const Section = <P extends Record<string, TSchema>>(properties: P) =>
  Type.Object(properties, { additionalProperties: false, default: {} });

const Int = (minimum: number, fallback: number, extra: { maximum?: number; description?: string } = {}) =>
  Type.Integer({ minimum, default: fallback, ...extra });

const NonEmpty = (fallback: string, description?: string) => Type.String({ minLength: 1, default: fallback, description });

const STORE_KINDS = ['memory', 'redis'] as const;
const REDIS_URL = 'redis://127.0.0.1:6379';

/** One trusted OpenID Provider. `none` and HMAC algorithms are not in the enum, so config load refuses them. */
export const OIDC_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;
const OidcIssuer = Type.Object(
  {
    issuer: Type.String({ minLength: 1 }),
    jwks_uri: Type.String({ default: '' }),
    audiences: Type.Array(Type.String({ minLength: 1 }), { default: [] }),
    client_ids: Type.Array(Type.String({ minLength: 1 }), { default: [] }),
    token_use: OneOf(['any', 'access', 'id'], { default: 'any' }),
    subject_claim: NonEmpty('sub'),
    algorithms: Type.Array(OneOf(OIDC_ALGORITHMS), { minItems: 1, uniqueItems: true, default: ['RS256', 'ES256', 'PS256'] }),
    clock_tolerance_seconds: Int(0, 30),
    jwks_refetch_cooldown_seconds: Int(1, 30, { maximum: 3600, description: 'Least time between two JWKS refetches that an unknown kid triggers.' }),
  },
  { additionalProperties: false },
);

export const ConfigSchema = Type.Object(
  {
    server: Section({
      host: NonEmpty('127.0.0.1'),
      port: Int(0, 8080, { maximum: 65535 }),
      body_limit_bytes: Int(0, 10 * 1024 * 1024),
      body_memory_bytes: Int(1, 256 * 1024 * 1024, {
        description: 'Bytes of request bodies held in memory at once (announced Content-Length; chunked: body_limit_bytes), a quarter per client address; beyond: 503 before a byte is read.',
      }),
      upload_limit_bytes: Int(0, 256 * 1024 * 1024, {
        description:
          'Largest body of an upload route (a multipart POST /models or /v1/vision/addmodel, a zip or multipart restore): streamed to a private spool file under the OS temp folder, never held in memory, and removed when the request ends.',
      }),
      header_limit_bytes: Int(1024, 16 * 1024, { maximum: 1048576 }),
      request_timeout_ms: Int(1000, 30_000),
      max_concurrent_uploads: Int(1, 4, {
        description: 'Upload bodies spooled at once (each client address at most half); more, or too little free disk for one, is 503 before a byte is read.',
      }),
      upload_timeout_ms: Int(1000, 600_000, {
        description: "The time an upload route's spooled body (multipart or zip) may take to arrive; every other request has request_timeout_ms.",
      }),
      max_connections: Int(1, 1024, { description: 'Open client connections at most; more are dropped at accept.' }),
      trusted_proxies: Type.Array(Type.String({ minLength: 1 }), { default: [] }),
      metrics_allow: Type.Array(Type.String({ minLength: 1 }), {
        default: ['127.0.0.1/32', '::1/128'],
        description: 'Addresses or CIDR ranges allowed to read GET /metrics.',
      }),
    }),
    auth: Section({
      skew_seconds: Int(1, 900),
      algorithms: Type.Array(OneOf<HashAlgorithm>(['sha1', 'sha256', 'sha384', 'sha512']), {
        minItems: 1,
        uniqueItems: true,
        default: ['sha256', 'sha384', 'sha512'],
      }),
      body_hash: OneOf(['strict', 'backendai'], { default: 'strict' }),
      api_versions: Type.Array(Type.String({ pattern: '^v\\d+\\.\\d{8}$' }), { minItems: 1, default: [...API_VERSIONS] }),
      problem_base_uri: NonEmpty('https://api.backend.ai/probs/'),
      schemes: Type.Array(OneOf(['backendai', 'apikey', 'oidc']), {
        minItems: 1,
        uniqueItems: true,
        default: ['backendai'],
        description: 'Credential schemes accepted on signed routes.',
      }),
      oidc: Type.Array(OidcIssuer, { default: [], description: 'One table per trusted OpenID Provider ([[auth.oidc]]).' }),
    }),
    keypairs: Section({
      dir: NonEmpty('keypairs', 'Keypair files (a relative path resolves against the config file).'),
    }),
    store: Section({
      kind: OneOf(STORE_KINDS, {
        default: 'memory',
        description: 'Where rate limits, sessions and idempotency records live; "redis" shares them between replicas.',
      }),
      redis_url: NonEmpty(REDIS_URL, 'Password, database and TLS for every redis_mode.'),
      redis_mode: OneOf(['single', 'sentinel', 'cluster'], { default: 'single' }),
      redis_nodes: Type.Array(Type.String({ pattern: REDIS_NODE_PATTERN }), {
        default: [],
        maxItems: 64,
        description: 'Sentinel or cluster seed nodes, "host:port" ("[v6]:port"); needed by redis_mode "sentinel" and "cluster".',
      }),
      redis_sentinel_name: NonEmpty('mymaster'),
    }),
    ratelimit: Section({
      store: OneOf(STORE_KINDS, { default: 'memory', description: 'Deprecated: store.kind (kept equal to it).' }),
      redis_url: NonEmpty(REDIS_URL, 'Deprecated: store.redis_url (kept equal to it).'),
      window_seconds: Int(1, 900),
      default_limit: Int(0, 10_000),
      anonymous_limit: Int(0, 2_000),
      redis_timeout_ms: Int(1, 50),
      on_redis_failure: OneOf(['memory', 'deny'], { default: 'memory' }),
    }),
    idempotency: Section({
      ttl_seconds: Int(1, 86_400),
    }),
    sessions: Section({
      idle_timeout_seconds: Int(1, 3_600),
      default_max_sessions: Int(0, 8),
    }),
    inference: Section({
      providers: Type.Array(OneOf(['cuda', 'cpu']), { minItems: 1, default: ['cuda', 'cpu'] }),
      max_image_bytes: Int(1, 8 * 1024 * 1024),
      max_image_pixels: Int(1, 40_000_000),
      concurrency: Int(1, 1),
      max_queue: Int(0, 16),
      max_queue_per_owner: Int(0, 0, { description: 'Waiting jobs one tenant may hold per model; 0: half of max_queue.' }),
      model_memory_mb: Int(0, 2048, { description: "Memory cap of one custom model's process, MB; 0: none." }),
      timeout_ms: Int(1, 30_000),
      threads: Int(0, 0),
      face_tiles: Type.Boolean({
        default: true,
        description: 'The face kernel also runs its back model on overlapping tiles of frames whose long side is over 1024 px (small faces in camera frames; costs time).',
      }),
      models_dir: NonEmpty('models', 'Uploaded custom models (a relative path resolves against the config file).'),
      backend: OneOf(['local', 'kserve'], { default: 'local', description: 'Where models run: local ONNX Runtime, or Open Inference Protocol servers (kserve_urls).' }),
      kserve_urls: Type.Array(Type.String({ pattern: '^https?://[^\\s]+$' }), { default: [], description: 'Open Inference Protocol (KServe v2 REST) servers, e.g. "http://gpu-1:8000".' }),
      kserve_token: Type.String({ default: '', description: 'Bearer token sent to the backends (kernelgate worker requires one off loopback).' }),
      kserve_tensors: OneOf(['auto', 'binary', 'json'], { default: 'auto', description: 'Tensor encoding; auto: binary unless the server does not list binary_tensor_data.' }),
      kserve_timeout_ms: Int(1, 30_000, { description: 'One inference exchange with a backend, ms; past it the backend is ejected and the job answered 504.' }),
      kserve_connect_timeout_ms: Int(1, 2_000),
      kserve_health_interval_ms: Int(50, 2_000, { description: 'Health probes (GET /v2/health/ready) of every backend, ms.' }),
      kserve_eject_ms: Int(0, 5_000, { description: 'How long a failed backend stays out before a health probe may bring it back, ms.' }),
      kserve_max_response_bytes: Int(1024, 256 * 1024 * 1024),
    }),
    worker: Section({
      host: NonEmpty('127.0.0.1'),
      port: Int(0, 8000, { maximum: 65535 }),
      token: Type.String({ default: '', description: 'Bearer token clients must send; required off loopback (or KERNELGATE_WORKER_TOKEN).' }),
      max_body_bytes: Int(1024, 64 * 1024 * 1024, { description: 'Largest inference request body.' }),
      max_connections: Int(1, 256),
    }),
    vision: Section({
      enabled: Type.Boolean({ default: true, description: 'The DeepStack-compatible API under /v1/ (off: 404).' }),
      detection_model: Type.String({
        default: '',
        pattern: '^$|^[a-z0-9][a-z0-9._-]{0,63}$',
        description: 'Custom detect model behind /v1/vision/detection, in the caller\'s domain ("": not activated, 403).',
      }),
      scene_model: Type.String({
        default: '',
        pattern: '^$|^[a-z0-9][a-z0-9._-]{0,63}$',
        description: 'Custom classify model behind /v1/vision/scene, in the caller\'s domain ("": not activated, 403).',
      }),
    }),
    docs: Section({
      enabled: Type.Boolean({
        default: true,
        description: 'GET /docs (Swagger UI whose "Try it out" signs in the browser) and GET /playground.',
      }),
    }),
    log: Section({
      level: OneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], { default: 'info' }),
      access: Type.Boolean({
        default: true,
        description: 'One line per request (at info); off saves ~10 % of throughput on the auth hot path.',
      }),
    }),
  },
  { additionalProperties: false },
);

export type Config = Static<typeof ConfigSchema>;
