// The browser side: the page (built by esbuild into dist/public, no CDN), the state as JSON and as a
// server-sent event stream. A separate port from the Dapr side: browsers cannot send dapr-api-token, so this
// port carries no Dapr token and binds to 127.0.0.1 unless told otherwise (DASHBOARD_UI_HOST).
import { readFileSync, existsSync } from 'node:fs';
import { join, normalize } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendJson } from './dapr.js';
import type { Hub } from './hub.js';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
};

export interface UiOptions {
  publicDir: string;
  /** Browsers streaming at once; one more gets 503 (each holds a socket and a share of every flush). */
  maxStreams: number;
  heartbeatMs: number;
  /** Bytes a stream may have queued (written, not yet taken by the browser) before the next message: past it the
   * browser is not reading; the stream is dropped (its EventSource reconnects and gets a fresh snapshot). */
  maxStreamBufferBytes: number;
}

export const DEFAULT_MAX_STREAM_BUFFER_BYTES = 4 * 1024 * 1024;

export function uiHandler(hub: Hub, opts: UiOptions) {
  // The page is a few files built before start: read once, served from memory.
  const files = new Map<string, { body: Buffer; type: string }>();
  for (const name of ['index.html', 'app.js', 'app.css']) {
    const p = join(opts.publicDir, name);
    if (existsSync(p)) files.set('/' + name, { body: readFileSync(p), type: TYPES[name.slice(name.lastIndexOf('.'))] ?? 'application/octet-stream' });
  }
  let streamsDropped = 0;
  return (req: IncomingMessage, res: ServerResponse): void => {
    const path = normalize((req.url ?? '/').split('?', 1)[0] ?? '/');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendJson(res, 405, { error: 'GET only' });
      return;
    }
    if (path === '/health') {
      // Counts and heap too: the bench and an operator read them without pulling the whole state.
      sendJson(res, 200, {
        status: 'ok', app: 'dashboard', streams: hub.subscribers, streamsDropped, events: hub.store.tick,
        malformed: hub.store.malformed.count, jobs: Object.keys(hub.store.jobs).length, heapUsedBytes: process.memoryUsage().heapUsed,
      });
      return;
    }
    if (path === '/api/state') {
      const text = hub.snapshot();
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
      res.end(text);
      return;
    }
    if (path === '/api/stream') {
      if (hub.subscribers >= opts.maxStreams) {
        sendJson(res, 503, { error: `already ${opts.maxStreams} streams open` });
        return;
      }
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      res.write('retry: 2000\n\n');
      let stopped = false;
      let unsubscribe: (() => void) | undefined;
      let beat: NodeJS.Timeout | undefined;
      const stop = () => {
        if (stopped) return;
        stopped = true;
        clearInterval(beat);
        unsubscribe?.();
      };
      // Backpressure: what the browser has not taken yet stays in this process. Past the bound it is not
      // reading (a stuck tab, a client that never reads): drop it rather than grow without bound. Checked
      // before each write, so one large message (a big snapshot) on its own never drops a browser; a stream
      // holds at most the bound plus the message being sent.
      const send = (text: string) => {
        if (stopped) return;
        if (res.writableLength > opts.maxStreamBufferBytes) {
          streamsDropped++;
          stop();
          res.destroy();
          return;
        }
        res.write(text);
      };
      unsubscribe = hub.subscribe((kind, data) => send(`event: ${kind}\ndata: ${data}\n\n`));
      if (stopped) unsubscribe(); // dropped by the snapshot itself (subscribe sends it before returning)
      // A comment now and then keeps proxies from closing an idle stream.
      beat = setInterval(() => send(': keep-alive\n\n'), opts.heartbeatMs);
      req.on('close', stop);
      res.on('close', stop);
      res.on('error', stop);
      return;
    }
    if (path === '/favicon.ico') {
      res.writeHead(204).end(); // none; saves the browser's console a 404
      return;
    }
    const file = files.get(path === '/' ? '/index.html' : path);
    if (!file) {
      sendJson(res, 404, { error: files.size === 0 ? `the page is not built (no ${opts.publicDir}); run npm run build` : `no ${path}` });
      return;
    }
    res.writeHead(200, { 'content-type': file.type, 'content-length': file.body.length, 'cache-control': 'no-cache' });
    res.end(req.method === 'HEAD' ? undefined : file.body);
  };
}
