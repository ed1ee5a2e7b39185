import type { Context, Next } from 'koa';
import type { Logger } from 'pino';
import { ApiError, type ProblemSlug } from './api-error.js';

export interface ProblemDocument {
  type: string;
  title: string;
  status: number;
  detail: string;
  msg: string;
  instance?: string;
  [extra: string]: unknown;
}

/** Errors that Koa or its helpers raise with a status, mapped onto our slugs. */
const FOREIGN_SLUGS: Record<number, ProblemSlug> = {
  400: 'generic-bad-request',
  404: 'url-not-found',
  405: 'method-not-allowed',
  413: 'request-too-large',
  415: 'unsupported-media-type',
  431: 'request-header-fields-too-large',
};

export function toApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  const status = (error as { status?: unknown })?.status;
  if (typeof status === 'number' && Object.hasOwn(FOREIGN_SLUGS, status) && (error as { expose?: boolean }).expose) {
    return new ApiError(status, FOREIGN_SLUGS[status], (error as Error).message);
  }
  return new ApiError(500, 'internal-server-error', 'An internal error occurred. It has been logged.');
}

export function problemDocument(error: ApiError, baseUri: string, instance?: string): ProblemDocument {
  return {
    ...error.extra,
    type: `${baseUri}${error.slug}`,
    title: error.title,
    status: error.status,
    detail: error.message,
    msg: error.message,
    ...(instance === undefined ? {} : { instance }),
  };
}

/** Writes an error onto the response as a problem document. */
export function renderProblem(ctx: Context, caught: unknown, baseUri: string, log?: Logger): void {
  const error = toApiError(caught);
  if (error.status >= 500 && !(caught instanceof ApiError)) {
    log?.error({ err: caught, reqId: ctx.state.reqId }, 'unhandled error');
  }
  if (error.logFields) {
    const { msg, ...fields } = error.logFields;
    log?.info({ reqId: ctx.state.reqId, client: ctx.state.client?.address, ...fields, status: error.status }, msg);
  }
  ctx.status = error.status;
  ctx.set(error.headers);
  ctx.type = 'application/problem+json';
  const doc = problemDocument(error, baseUri, ctx.state.reqId ? `urn:kernelgate:request:${ctx.state.reqId}` : undefined);
  // DeepStack clients read these (DESIGN.md "Errors"): the status stays the real one, never 200.
  if (typeof ctx.path === 'string' && ctx.path.startsWith('/v1/')) Object.assign(doc, deepStackMembers(doc.detail));
  ctx.body = doc;
}

/** DeepStack's error members, carried by every problem document of a `/v1/` route. */
export function deepStackMembers(detail: string): { success: false; error: string; duration: 0 } {
  return { success: false, error: detail, duration: 0 };
}

/** The one place where errors become RFC 9457 documents. Nothing internal leaks. */
export function problemMiddleware(baseUri: string, log: Logger) {
  return async function problems(ctx: Context, next: Next): Promise<void> {
    try {
      await next();
    } catch (caught) {
      renderProblem(ctx, caught, baseUri, log);
    }
  };
}
