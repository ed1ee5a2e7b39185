/** A slow client: signed headers, then the body in pieces with gaps, over a raw socket (test/receive-deadline.test.ts, test/upload-slots.test.ts). */
import { connect } from 'node:net';
import { signRequest } from '../../src/signing/sign-request.js';
import type { TestGateway, TestKeypair } from './gateway.js';

export interface Slow {
  status: number;
  text: string;
  /** When the answer's first byte came, ms after the headers were sent. */
  answeredAfterMs: number;
}

/** Sends the signed headers, then `body` in `pieces` parts `gapMs` apart; reads until the server closes. */
export function dribble(gw: TestGateway, as: TestKeypair, target: string, body: Buffer, contentType: string, pieces: number, gapMs: number): Promise<Slow> {
  const host = `127.0.0.1:${gw.port}`;
  const { headers } = signRequest({ method: 'POST', target, host, accessKey: as.accessKey, secretKey: as.secretKey, body, contentType });
  const head = [`POST ${target} HTTP/1.1`, `Host: ${host}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), `Content-Length: ${body.length}`, 'Connection: close', '', ''].join('\r\n');
  return new Promise((resolve, reject) => {
    const socket = connect(gw.port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let sentAt = 0;
    let firstByteAt = 0;
    let timer: NodeJS.Timeout | undefined;
    socket.on('connect', () => {
      socket.write(head);
      sentAt = performance.now();
      const size = Math.ceil(body.length / pieces);
      let i = 0;
      const next = () => {
        if (socket.destroyed || i >= pieces) return;
        socket.write(body.subarray(i * size, (i + 1) * size));
        i++;
        timer = setTimeout(next, gapMs);
      };
      timer = setTimeout(next, gapMs);
    });
    socket.on('data', (c: Buffer) => {
      firstByteAt ||= performance.now();
      chunks.push(c);
    });
    socket.on('error', () => undefined); // a reset after the answer is fine: the answer is what counts
    socket.on('close', () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString('utf8');
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
      if (status === 0) reject(new Error(`no answer: ${JSON.stringify(text.slice(0, 200))}`));
      else resolve({ status, text, answeredAfterMs: firstByteAt - sentAt });
    });
  });
}

