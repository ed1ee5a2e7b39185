import { Ajv, type ValidateFunction } from 'ajv';
import { ApiError } from '../problems/api-error.js';
import type { GatewayContext, Stage } from './context.js';
import type { RouteSpec } from './route.js';

const ajv = new Ajv({ allErrors: false, coerceTypes: false, strict: false });

function validator(schema: Record<string, unknown> | undefined): ValidateFunction | undefined {
  return schema === undefined ? undefined : ajv.compile(schema);
}

function invalid(where: string, v: ValidateFunction): ApiError {
  const e = v.errors?.[0];
  const path = e?.instancePath ? e.instancePath.slice(1).replace(/\//g, '.') : '';
  return new ApiError(400, 'invalid-api-params', `Invalid ${where}${path ? ` "${path}"` : ''}: ${e?.message ?? 'invalid'}.`);
}

/** The validate stage: the route's query and body schemas (the same ones /openapi.json publishes); none when it declares neither. */
export function validate(route: Pick<RouteSpec, 'query' | 'body'>): Stage | undefined {
  const query = validator(route.query);
  const body = validator(route.body);
  if (query === undefined && body === undefined) return undefined;
  return function validateRequest(ctx: GatewayContext): void {
    if (query && !query(ctx.query)) throw invalid('query parameter', query);
    if (body && ctx.state.body !== undefined && !body(ctx.state.body)) throw invalid('request body', body);
  };
}
