// `npm run bench`: the dashboard's figures for BENCHMARKS.md, printed as Markdown.
//  1. ingest: a synthetic 64-worker, 1,000-round run (JSON lines) parsed, validated and reduced, in process
//     (heap measured after a forced GC), then replayed 10 times as 10 jobs to show memory stays bounded;
//     and the same events through the server: --tail of the file (child process), and POST /events (Dapr's route).
//  2. page update latency: an event POSTed to the Dapr route until the page's DOM shows it, in chromium.
//  3. what a browser downloads: the page's files, raw and gzipped.
import { readFileSync, writeFileSync, mkdtempSync, renameSync, statSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { execFileSync } from 'node:child_process';
import { Agent } from 'node:http';
import { Hub } from '../src/hub.js';
import { loadValidator } from '../src/schema.js';
import { synthRun, toJsonLines } from '../src/synth.js';
import { PKG, CHROMIUM, chromiumMissing, launchChromium, startServer } from '../test/support.js';

const gc = (globalThis as { gc?: () => void }).gc;
const heapMiB = () => {
  gc?.();
  gc?.(); // twice: the first full GC leaves some garbage (weak references, finalizers) for the next
  return process.memoryUsage().heapUsed / 1048576;
};
const rows: [string, string, string][] = [];
const row = (what: string, value: string, how: string) => {
  rows.push([what, value, how]);
  console.error(`${what}: ${value}`);
};
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

// Only the lines are kept (the event objects would otherwise sit in the heap figures below).
const lines = toJsonLines(synthRun({ workers: 64, rounds: 1000, evalEvery: 5, kill: { node: 'worker-7', round: 300 } })).trim().split('\n');
const dir = mkdtempSync(join(tmpdir(), 'dashboard-bench-'));

// 1a. In process: parse + validate + reduce.
{
  const validator = loadValidator();
  (() => {
    const warm = new Hub(validator);
    for (const l of lines.slice(0, 5000)) warm.ingestLine(l, 'warm-up'); // the JIT's warm-up, then dropped
    warm.close();
  })();
  const before = heapMiB();
  const hub = new Hub(validator);
  const t = performance.now();
  for (const l of lines) hub.ingestLine(l, 'bench');
  const s = (performance.now() - t) / 1000;
  const after1 = heapMiB();
  row('ingest, in process (JSON.parse + ajv + reducer)', `${fmt(lines.length / s)} events/s`, `${fmt(lines.length)} events of a synthetic 64-worker, 1,000-round run, one pass`);
  // The same run as 10 jobs: 8 are kept (DASHBOARD_MAX_JOBS), so memory stops growing.
  const heaps: number[] = [];
  for (let k = 0; k < 10; k++) {
    const prefix = `{"schema":1,"job":"bench-${k}"`;
    for (const l of lines) hub.ingestLine(l.replace(/^\{"schema":1,"job":"[^"]*"/, prefix), 'bench');
    heaps.push(heapMiB());
  }
  row('heap used (after GC)', `${before.toFixed(1)} MiB before (the run's lines held by the bench), ${after1.toFixed(1)} after 1 job, ${heaps[4]!.toFixed(1)} after 6, ${heaps[9]!.toFixed(1)} after 11 (8 kept)`,
    `process.memoryUsage().heapUsed after global.gc(); ${fmt(lines.length * 11)} events in all`);
  hub.close();
}

// 1b. The server process: --tail of the file (it is moved into place once the server is up).
{
  const file = join(dir, 'run.jsonl');
  writeFileSync(join(dir, 'staged.jsonl'), lines.join('\n') + '\n');
  const srv = await startServer(['--tail', file]);
  const health = async () => (await (await fetch(`http://127.0.0.1:${srv.uiPort}/health`)).json()) as { events: number; heapUsedBytes: number };
  const t = performance.now();
  renameSync(join(dir, 'staged.jsonl'), file);
  let h = await health();
  while (h.events < lines.length) {
    await new Promise((r) => setTimeout(r, 20));
    h = await health();
  }
  const s = (performance.now() - t) / 1000;
  row('ingest, server --tail of the file', `${fmt(lines.length / s)} events/s`, `dist/server.js as a child process; from the file's appearance until /health counts every event (20 ms polls); heap then ${(h.heapUsedBytes / 1048576).toFixed(1)} MiB, no GC forced`);

  // 1c. Dapr's route: POST /events, CloudEvents, 8 requests in flight on keep-alive connections.
  const n = 20_000;
  const agent = new Agent({ keepAlive: true, maxSockets: 8 });
  const { request } = await import('node:http');
  const post = (body: string) => new Promise<void>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: srv.appPort, path: '/events', method: 'POST', agent, headers: { 'content-type': 'application/cloudevents+json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`status ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end(body);
  });
  const bodies = lines.slice(0, n).map((l) => `{"specversion":"1.0","id":"x","source":"bench","type":"com.dapr.event.sent","datacontenttype":"application/json","topic":"progress","pubsubname":"pubsub","data":${l.replace(/^\{"schema":1,"job":"[^"]*"/, '{"schema":1,"job":"dapr-bench"')}}`);
  const t2 = performance.now();
  let next = 0;
  await Promise.all(Array.from({ length: 8 }, async () => {
    while (next < bodies.length) await post(bodies[next++]!);
  }));
  const s2 = (performance.now() - t2) / 1000;
  row('ingest, Dapr route POST /events', `${fmt(n / s2)} events/s`, `${fmt(n)} CloudEvents, 8 in flight on keep-alive connections, each answered SUCCESS (the sidecar's side not included)`);
  agent.destroy();
  await srv.stop();
}

// 2. Page update latency: POST until the DOM shows it.
const missing = chromiumMissing();
if (missing) {
  row('page update latency', 'not measured', missing);
} else {
  const srv = await startServer([]);
  const ctx = await launchChromium();
  const page = await ctx.newPage();
  await page.goto(`http://127.0.0.1:${srv.uiPort}/`);
  const postEval = (seq: number, round: number) => fetch(`http://127.0.0.1:${srv.appPort}/events`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ data: { schema: 1, kind: 'evaluation', job: 'latency', source: 'job', seq, timeMs: seq, round, accuracy: 0.5 } }),
  });
  await postEval(0, 1);
  await page.locator('[data-testid="last-round"][data-value="1"]').waitFor();
  const lat: number[] = [];
  for (let i = 1; i <= 40; i++) {
    const round = 100_000 + i;
    // The page notes (wall clock, same machine) when the round appears in the DOM.
    const seen = page.evaluate((r) => new Promise<number>((resolve) => {
      const check = () => document.querySelector(`[data-testid="last-round"][data-value="${r}"]`) !== null;
      const obs = new MutationObserver(() => {
        if (check()) {
          obs.disconnect();
          resolve(Date.now());
        }
      });
      obs.observe(document.body, { subtree: true, childList: true, attributes: true });
    }), round);
    await new Promise((r) => setTimeout(r, 30 + Math.random() * 170)); // not in step with the flush timer
    const t0 = Date.now();
    await postEval(i, round);
    lat.push((await seen) - t0);
  }
  lat.sort((a, b) => a - b);
  const q = (p: number) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))]!;
  row('page update latency (POST to DOM)', `median ${q(0.5)} ms, p95 ${q(0.95)} ms, max ${lat[lat.length - 1]} ms`,
    `${lat.length} evaluation events POSTed to /events one at a time, each until chromium's DOM shows its round (MutationObserver, Date.now on both sides); the stream sends at most one batch per 150 ms (DASHBOARD_FLUSH_MS), an event after a quiet spell at once`);
  await ctx.close();
  await srv.stop();
}

// 3. What a browser downloads.
{
  let raw = 0, gz = 0;
  const parts: string[] = [];
  for (const f of ['index.html', 'app.js', 'app.css']) {
    const b = readFileSync(join(PKG, 'dist', 'public', f));
    raw += b.length;
    const g = gzipSync(b).length;
    gz += g;
    parts.push(`${f} ${fmt(b.length)} (${fmt(g)} gzipped)`);
  }
  row('page download', `${fmt(raw)} bytes, ${fmt(gz)} gzipped`, `${parts.join(', ')}; uPlot bundled and minified by esbuild, no other request but the event stream`);
  row('server bundle', `${fmt(statSync(join(PKG, 'dist', 'server.js')).size)} bytes`, 'dist/server.js with ajv bundled; runs with node alone');
}

let chromiumVersion = 'not installed';
try {
  chromiumVersion = execFileSync(CHROMIUM, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
} catch { /* keep */ }
console.log(`\nDashboard (services/dashboard), \`npm run bench\`: ${cpus().length} cores (nproc), Node ${process.version}, ${chromiumVersion}.\n`);
console.log('| what | figure | how |');
console.log('| --- | --- | --- |');
for (const [a, b, c] of rows) console.log(`| ${a} | ${b} | ${c} |`);
