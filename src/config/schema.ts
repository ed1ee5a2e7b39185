/** JSON Schema of config.toml: every key optional, unknown keys refused. */
export const API_VERSIONS = [
  'v4.20181215', 'v4.20190115', 'v4.20190315', 'v4.20190615', 'v5.20191215',
  'v6.20200815', 'v6.20210815', 'v6.20220315', 'v6.20220615', 'v6.20230315',
  'v7.20230615', 'v8.20240315', 'v8.20240915',
];

const section = (properties: Record<string, object>) => ({
  type: 'object',
  additionalProperties: false,
  properties,
});

export const configSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    server: section({
      host: { type: 'string', minLength: 1 },
      port: { type: 'integer', minimum: 0, maximum: 65535 },
      body_limit_bytes: { type: 'integer', minimum: 0 },
      header_limit_bytes: { type: 'integer', minimum: 1024, maximum: 1048576 },
      request_timeout_ms: { type: 'integer', minimum: 1000 },
      max_connections: { type: 'integer', minimum: 1 },
      trusted_proxies: { type: 'array', items: { type: 'string', minLength: 1 } },
      metrics_allow: { type: 'array', items: { type: 'string', minLength: 1 } },
    }),
    auth: section({
      skew_seconds: { type: 'integer', minimum: 1 },
      algorithms: {
        type: 'array',
        minItems: 1,
        uniqueItems: true,
        items: { enum: ['sha1', 'sha256', 'sha384', 'sha512'] },
      },
      body_hash: { enum: ['strict', 'backendai'] },
      api_versions: {
        type: 'array',
        minItems: 1,
        items: { type: 'string', pattern: '^v\\d+\\.\\d{8}$' },
      },
      problem_base_uri: { type: 'string', minLength: 1 },
    }),
    keypairs: section({ dir: { type: 'string', minLength: 1 } }),
    store: section({
      kind: { enum: ['memory', 'redis'] },
      redis_url: { type: 'string', minLength: 1 },
      redis_mode: { enum: ['single', 'sentinel', 'cluster'] },
      redis_nodes: { type: 'array', items: { type: 'string', minLength: 1 } },
      redis_sentinel_name: { type: 'string', minLength: 1 },
    }),
    ratelimit: section({
      store: { enum: ['memory', 'redis'] },
      redis_url: { type: 'string', minLength: 1 },
      window_seconds: { type: 'integer', minimum: 1 },
      default_limit: { type: 'integer', minimum: 0 },
      anonymous_limit: { type: 'integer', minimum: 0 },
      redis_timeout_ms: { type: 'integer', minimum: 1 },
      on_redis_failure: { enum: ['memory', 'deny'] },
    }),
    idempotency: section({
      ttl_seconds: { type: 'integer', minimum: 1 },
    }),
    sessions: section({
      idle_timeout_seconds: { type: 'integer', minimum: 1 },
      default_max_sessions: { type: 'integer', minimum: 0 },
    }),
    inference: section({
      providers: { type: 'array', minItems: 1, items: { enum: ['cuda', 'cpu'] } },
      max_image_bytes: { type: 'integer', minimum: 1 },
      max_image_pixels: { type: 'integer', minimum: 1 },
      concurrency: { type: 'integer', minimum: 1 },
      max_queue: { type: 'integer', minimum: 0 },
      max_queue_per_owner: { type: 'integer', minimum: 0 },
      model_memory_mb: { type: 'integer', minimum: 0 },
      timeout_ms: { type: 'integer', minimum: 1 },
      threads: { type: 'integer', minimum: 0 },
      models_dir: { type: 'string', minLength: 1 },
    }),
    log: section({
      level: { enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] },
      access: { type: 'boolean' },
    }),
  },
} as const;
