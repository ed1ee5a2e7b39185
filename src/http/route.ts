import type { GatewayContext } from './context.js';

export type HttpMethod = 'GET' | 'POST' | 'DELETE' | 'PUT' | 'PATCH';

/** JSON Schema object (ajv-compatible), also published in /openapi.json. */
export type JsonSchema = Record<string, unknown>;

/**
 * One route, declared once: the router mounts it, ajv validates with its
 * schemas, and the OpenAPI document is generated from the same declaration.
 */
export interface RouteSpec {
  method: HttpMethod;
  /** Koa-router path, e.g. `/session/:name`. */
  path: string;
  summary: string;
  /**
   * public: unsigned, charged to the address; operational: the same, but served even
   * when a fail-closed limiter refuses everything else (health, metrics); signed;
   * admin: signed by an admin or superadmin keypair.
   */
  access: 'public' | 'operational' | 'signed' | 'admin';
  /**
   * Owner-scoped: the request acts for `owner_access_key` (from the query string, and for
   * `query+body` also the JSON body), resolved by the authorize stage into `ctx.state.owner`.
   */
  owner?: 'query' | 'query+body';
  query?: JsonSchema;
  body?: JsonSchema;
  /** Status -> description (and optional JSON Schema and example) for the OpenAPI document. */
  responses: Record<number, { description: string; schema?: JsonSchema; example?: unknown }>;
  /** An example JSON body, for the OpenAPI document (and so for "Try it out" in /docs). */
  bodyExample?: unknown;
  /** A `read`-scoped credential may call it although it is not a GET (inference routes). */
  readScope?: boolean;
  /** Media types accepted for the body besides JSON (e.g. `image/*`). */
  bodyTypes?: string[];
  /** The schema of a `bodyTypes` entry where it is not opaque bytes (the fields of `multipart/form-data`). */
  bodySchemas?: Record<string, JsonSchema>;
  /**
   * An upload route (models, backups): a multipart or zip body is streamed to a spool file within
   * `server.upload_limit_bytes` instead of being read into memory within `server.body_limit_bytes`
   * (http/spool.ts). Other body types of the route stay in memory under the body limit.
   */
  upload?: boolean;
  /** Left out of the OpenAPI document: the pages and assets of /docs and /playground, not API. */
  hidden?: boolean;
  handler(ctx: GatewayContext): Promise<void> | void;
}
