import { compileRequestValidator as validator, requestValidationError as invalid } from '../validation/ajv.js';
import type { GatewayContext, Stage } from './context.js';
import type { RouteSpec } from './route.js';

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
