/**
 * How long a request's body may take to arrive. Node's `requestTimeout` is one deadline for every request,
 * but an upload (a model of hundreds of MB from an admin's laptop) needs minutes where any other body needs
 * seconds. So the server's `requestTimeout` is the upload deadline (`server.upload_timeout_ms`, the longest any
 * request may take to arrive), and this guard holds every other request to `server.request_timeout_ms`: a body
 * still arriving then is answered 408 and its connection closed, as Node does at its own deadline. A request the
 * pipeline marked as a spooled upload (`ctx.state.upload`) is left to Node's longer deadline.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { GatewayContext } from './context.js';
import { requestHasBody } from './raw-body.js';

export type ExpireRequest = (req: IncomingMessage, res: ServerResponse) => void;

/** Arms the ordinary deadline for one request whose body has not fully arrived yet. */
export function receiveDeadline(ms: number, expire: ExpireRequest) {
  return function guard(ctx: GatewayContext): void {
    const { req, res } = ctx;
    if (req.complete || !requestHasBody(req)) return;
    const timer = setTimeout(() => {
      // Known by then: the pipeline marks a spooled upload before its body is read.
      if (!req.complete && ctx.state.upload === undefined) expire(req, res);
    }, ms);
    timer.unref();
    const clear = () => clearTimeout(timer);
    req.once('end', clear);
    req.once('close', clear);
    res.once('close', clear);
  };
}
