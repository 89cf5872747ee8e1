// The Dapr side: the app port that the sidecar calls. It declares the subscription to the `progress` topic
// and takes the events Dapr delivers. Guarded by APP_API_TOKEN like the C# apps; the browser side lives on
// another port (ui.ts) because a browser cannot add the dapr-api-token header to an EventSource.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Hub } from './hub.js';

export interface DaprOptions {
  pubsubName: string;
  topic: string;
  /** APP_API_TOKEN: when set, every route but /health needs it in `dapr-api-token`. */
  appApiToken?: string;
  maxBodyBytes: number;
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** Constant-time comparison: compares SHA-256 digests so that different lengths take the same time too. */
export function tokenMatches(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given, 'utf8').digest();
  const b = createHash('sha256').update(expected, 'utf8').digest();
  return timingSafeEqual(a, b);
}

export class BodyTooLarge extends Error {
  /** True when the rest of the body will not be read (its declared length is past what is discarded): the
   * connection must be closed after the answer. */
  constructor(message: string, readonly unread: boolean) {
    super(message);
  }
}

/** How much of an oversized body is read and discarded (never kept), as a multiple of the limit, so that the
 * sender finishes sending and reads the answer instead of a reset connection (daprd would retry that). */
export const DISCARD_FACTOR = 64;

/**
 * Reads a request body up to `max` bytes. Past it, rejects with BodyTooLarge at once (the answer can go out)
 * and reads the rest without keeping it, up to `discardMax` bytes in all; past that the connection is closed.
 * A declared content-length past `discardMax` is not read at all.
 */
export function readBody(req: IncomingMessage, max: number, discardMax = max * DISCARD_FACTOR): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > discardMax) {
      reject(new BodyTooLarge(`body of ${declared} bytes is over the limit of ${max}`, true));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    let over = false;
    const tooLarge = (message: string) => {
      over = true;
      chunks.length = 0;
      if (!done) {
        done = true;
        reject(new BodyTooLarge(message, false));
      }
    };
    if (Number.isFinite(declared) && declared > max) tooLarge(`body of ${declared} bytes is over the limit of ${max}`);
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (!over && size > max) tooLarge(`body is over the limit of ${max} bytes`);
      if (over) {
        // Discarded; past discardMax the sender is not stopping: stop reading.
        if (size > discardMax) req.socket.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (!done) {
        done = true;
        resolve(Buffer.concat(chunks));
      }
    });
    req.on('error', (e) => {
      if (!done) {
        done = true;
        reject(e);
      }
    });
  });
}

/** The progress event inside what Dapr delivered: a CloudEvent's `data` (an object, or JSON text),
 * its `data_base64`, or, where there is no envelope, the body itself. Throws with the reason otherwise. */
export function unwrap(body: unknown): unknown {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return body; // the validator says why
  const o = body as Record<string, unknown>;
  if ('data' in o) {
    const d = o.data;
    if (typeof d === 'string') {
      try {
        return JSON.parse(d);
      } catch {
        throw new Error('CloudEvent data is a string that is not JSON');
      }
    }
    return d;
  }
  if (typeof o.data_base64 === 'string') {
    const text = Buffer.from(o.data_base64, 'base64').toString('utf8');
    try {
      return JSON.parse(text);
    } catch {
      throw new Error('CloudEvent data_base64 does not decode to JSON');
    }
  }
  if ('specversion' in o) throw new Error('CloudEvent has neither data nor data_base64');
  return o; // a raw event (content-type application/json, no envelope)
}

export function daprHandler(hub: Hub, opts: DaprOptions) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?', 1)[0];
    if (path === '/health' && (req.method === 'GET' || req.method === 'HEAD')) {
      sendJson(res, 200, { status: 'ok', app: 'dashboard' });
      return;
    }
    if (opts.appApiToken) {
      const given = req.headers['dapr-api-token'];
      if (typeof given !== 'string' || given === '') {
        sendJson(res, 401, { error: 'missing dapr-api-token header (APP_API_TOKEN is set)' });
        return;
      }
      if (!tokenMatches(given, opts.appApiToken)) {
        sendJson(res, 401, { error: 'dapr-api-token does not match APP_API_TOKEN' });
        return;
      }
    }
    if (path === '/dapr/subscribe' && req.method === 'GET') {
      sendJson(res, 200, [{ pubsubname: opts.pubsubName, topic: opts.topic, route: '/events' }]);
      return;
    }
    if (path === '/events' && req.method === 'POST') {
      let body: Buffer;
      try {
        body = await readBody(req, opts.maxBodyBytes);
      } catch (e) {
        if (e instanceof BodyTooLarge) {
          // DROP with 200, not 413: daprd redelivers on every status but 2xx and 404, and a body this size
          // will not get smaller. The rest of it is discarded as it arrives (readBody), or not read at all.
          hub.malformed(e.message, 'dapr');
          if (e.unread) {
            res.setHeader('connection', 'close');
            res.once('finish', () => req.socket.destroy());
          }
          sendJson(res, 200, { status: 'DROP', reason: e.message });
        } else {
          res.destroy();
        }
        return;
      }
      let event: unknown;
      try {
        event = unwrap(JSON.parse(body.toString('utf8')));
      } catch (e) {
        const reason = e instanceof SyntaxError ? `body is not JSON: ${e.message}` : (e as Error).message;
        hub.malformed(reason, 'dapr');
        // DROP, not an error status: Dapr would redeliver a poison message forever.
        sendJson(res, 200, { status: 'DROP', reason });
        return;
      }
      const reason = hub.ingest(event, 'dapr');
      if (reason === null) sendJson(res, 200, { status: 'SUCCESS' });
      else sendJson(res, 200, { status: 'DROP', reason });
      return;
    }
    sendJson(res, 404, { error: `no route ${req.method} ${path}` });
  };
}
