import type { Socket } from 'node:net';
import type { IncomingMessage } from 'node:http';
import { requestHasBody } from './raw-body.js';

/** How long a connection answered before its body arrived is kept open (not read) before it is closed. */
export const LINGER_MS = 1000;

/**
 * For a response sent with `Connection: close` before the request body was read. Node would close
 * the socket as soon as the response is flushed; closing with unread bytes makes the kernel send a
 * reset at once, which can destroy the response before the client has read it. Instead the write
 * side is shut (FIN), reading stops (the rest of the body is neither read nor buffered: it waits in
 * the kernel's socket buffers, which the client's own send window bounds), and the socket is destroyed
 * after `ms`, by when the client has the response.
 */
export function lingerOnClose(socket: Socket, ms = LINGER_MS): void {
  const s = socket as Socket & { destroySoon?: () => void };
  if (typeof s.destroySoon !== 'function') return;
  s.destroySoon = function lingeringClose(this: Socket) {
    if (this.writable) this.end();
    // Node has just resumed the request to discard its body; stop reading the socket instead.
    const stop = () => (this as unknown as { _handle?: { readStop?: () => void } })._handle?.readStop?.();
    stop();
    setImmediate(stop);
    const timer = setTimeout(() => this.destroy(), ms);
    timer.unref();
    this.once('close', () => clearTimeout(timer));
  };
}

/** Answered without reading the whole body (refused early): close rather than drain it all. */
export function closeIfUnread(ctx: { req: IncomingMessage; headerSent: boolean; set(field: string, value: string): void }): void {
  if (!ctx.req.complete && requestHasBody(ctx.req) && !ctx.headerSent) {
    ctx.set('Connection', 'close');
    lingerOnClose(ctx.req.socket);
  }
}
