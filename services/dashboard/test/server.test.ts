// The server as a process (dist/server.js): the Dapr routes, the token, the body limit, DROP and SUCCESS,
// the state and the event stream, and the file sources.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { request } from 'node:http';
import { connect } from 'node:net';
import { appendFileSync, mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { StoreState } from '../src/reducer.js';
import { PKG, SERVER_JS, postJson, startServer, type Running } from './support.js';

const running: Running[] = [];
after(async () => {
  await Promise.all(running.map((r) => r.stop()));
});
async function start(args: string[] = [], env: Record<string, string> = {}): Promise<Running> {
  const r = await startServer(args, env);
  running.push(r);
  return r;
}
const state = async (r: Running) => (await (await fetch(`http://127.0.0.1:${r.uiPort}/api/state`)).json()) as StoreState;
const event = (seq: number, extra: Record<string, unknown> = {}) =>
  ({ schema: 1, kind: 'evaluation', job: 'srv', source: 'job', seq, timeMs: seq * 10, round: seq, accuracy: 0.5, ...extra });
const cloud = (data: unknown) => ({ specversion: '1.0', id: 'x', source: 'worker', type: 'com.dapr.event.sent', topic: 'progress', pubsubname: 'gradients', datacontenttype: 'application/json', data });

test('GET /dapr/subscribe names the pub/sub component, the topic and the route', async () => {
  const r = await start([], { PUBSUB_NAME: 'redis-pubsub' });
  const res = await fetch(`http://127.0.0.1:${r.appPort}/dapr/subscribe`);
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), [{ pubsubname: 'redis-pubsub', topic: 'progress', route: '/events' }]);
});

test('the pub/sub component defaults to gradients (the services\' component), and the usage text says so', async () => {
  const r = await start([], { PUBSUB_NAME: '' }); // unset (empty counts as unset)
  assert.deepEqual(await (await fetch(`http://127.0.0.1:${r.appPort}/dapr/subscribe`)).json(), [{ pubsubname: 'gradients', topic: 'progress', route: '/events' }]);
  const help = spawnSync(process.execPath, [SERVER_JS, '--help'], { encoding: 'utf8', timeout: 10_000 });
  assert.equal(help.status, 0);
  assert.match(help.stdout, /PUBSUB_NAME \(gradients\)/);
  assert.doesNotMatch(help.stdout, /\(pubsub\)/);
  assert.match(help.stdout, /DASHBOARD_MAX_STREAM_BUFFER_BYTES \(4194304\)/);
});

test('POST /events: SUCCESS for a CloudEvent, its data_base64, and a raw event; the state has them', async () => {
  const r = await start();
  const url = `http://127.0.0.1:${r.appPort}/events`;
  assert.deepEqual((await postJson(url, cloud(event(0)))).json, { status: 'SUCCESS' });
  const b64 = { ...cloud(undefined), data: undefined, data_base64: Buffer.from(JSON.stringify(event(1))).toString('base64') };
  delete (b64 as Record<string, unknown>).data;
  assert.deepEqual((await postJson(url, b64)).json, { status: 'SUCCESS' });
  assert.deepEqual((await postJson(url, event(2))).json, { status: 'SUCCESS' });
  // Data as JSON text (a publisher that sent a string) is taken too.
  assert.deepEqual((await postJson(url, cloud(JSON.stringify(event(3))))).json, { status: 'SUCCESS' });
  // A redelivery is acknowledged (Dapr must not retry it) and ignored.
  assert.deepEqual((await postJson(url, cloud(event(3)))).json, { status: 'SUCCESS' });
  const s = await state(r);
  assert.deepEqual(s.jobs['srv']!.evals.map((p) => p.round), [0, 1, 2, 3]);
  assert.equal(s.jobs['srv']!.counters.duplicates, 1);
  assert.equal(s.malformed.count, 0);
});

test('POST /events: malformed events are answered DROP (no redelivery) and counted with the reason', async () => {
  const r = await start();
  const url = `http://127.0.0.1:${r.appPort}/events`;
  const cases: [unknown, RegExp][] = [
    [cloud(event(0, { accuracy: 7 })), /accuracy: must be <= 1/],
    ['{"data": {', /body is not JSON/],
    [{ specversion: '1.0', id: 'y', type: 't', source: 's' }, /neither data nor data_base64/],
    [cloud('not json at all'), /data is a string that is not JSON/],
    [cloud(event(1, { kind: 'gossip' })), /kind: "gossip" is not one of/],
  ];
  for (const [body, reason] of cases) {
    const res = await postJson(url, body);
    assert.equal(res.status, 200);
    assert.equal((res.json as { status: string }).status, 'DROP');
    assert.match((res.json as { reason: string }).reason, reason);
  }
  const s = await state(r);
  assert.equal(s.malformed.count, cases.length);
  assert.deepEqual(s.malformed.reasons.map((m) => m.origin), cases.map(() => 'dapr'));
  assert.match(s.malformed.reasons[0]!.reason, /accuracy/);
  // It goes on taking valid ones.
  assert.deepEqual((await postJson(url, cloud(event(2)))).json, { status: 'SUCCESS' });
});

test('a body over the limit is answered DROP with 200 (daprd retries any other status but 404) and counted, and read no further than bounded', async () => {
  const r = await start([], { DASHBOARD_MAX_BODY_BYTES: '4096' });
  const url = `http://127.0.0.1:${r.appPort}/events`;
  const dropped = (res: { status: number; json: unknown }, reason: RegExp) => {
    assert.equal(res.status, 200);
    assert.equal((res.json as { status: string }).status, 'DROP');
    assert.match((res.json as { reason: string }).reason, reason);
  };
  const big = cloud(event(0, { job: 'j', pad: 'x'.repeat(5000) }));
  dropped(await postJson(url, big), /body of \d+ bytes is over the limit of 4096/);
  // Just under the limit is read (and refused by the schema for the extra property, not for its size).
  dropped(await postJson(url, cloud(event(0, { pad: 'x'.repeat(3000) }))), /pad: not a property/);
  /** POSTs with no content-length, in 1 KiB chunks (`chunks` of them, Infinity: until the server stops it).
   * Resolves with the answer (if one came), the bytes sent and whether the connection was closed. */
  const chunked = (chunks: number) => new Promise<{ status?: number; body: string; sent: number; closed: boolean }>((resolve) => {
    let status: number | undefined;
    let body = '';
    let sent = 0;
    let finished = false;
    const finish = (closed: boolean) => {
      if (finished) return;
      finished = true;
      resolve({ ...(status !== undefined ? { status } : {}), body, sent, closed });
    };
    const req = request({ host: '127.0.0.1', port: r.appPort, path: '/events', method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
      status = res.statusCode;
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => {
        if (chunks !== Infinity) finish(false);
      });
    });
    req.on('error', () => finish(true));
    req.on('close', () => {
      if (chunks === Infinity) finish(true);
    });
    req.write('{"data": "');
    const piece = 'x'.repeat(1024);
    const more = () => {
      if (req.destroyed || finished) return;
      if (sent >= 16 * 1024) {
        // 16 MiB and still reading: give up (the assertion below says so).
        finish(false);
        req.destroy();
      } else if (sent < chunks) {
        sent++;
        req.write(piece, () => setImmediate(more));
      } else req.end('"}');
    };
    more();
  });
  // 64 KiB: answered DROP as soon as the limit is passed, the rest discarded, so the sender gets the answer
  // (not a reset connection, which daprd would retry).
  const c = await chunked(64);
  assert.equal(c.status, 200);
  assert.match(c.body, /"status":"DROP".*over the limit of 4096 bytes/);
  // A sender that does not stop: reading ends past 64 times the limit (256 KiB here), the connection is closed.
  const endless = await chunked(Infinity);
  assert.equal(endless.closed, true, `the server read on: ${endless.sent} KiB sent and not closed`);
  assert.ok(endless.sent < 16 * 1024, `the server read on: ${endless.sent} KiB sent before it closed`);
  // A declared length past that is not read at all: the answer comes without the body.
  let socketClosed!: Promise<boolean>;
  const declared = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: r.appPort, path: '/events', method: 'POST', headers: { 'content-type': 'application/json', 'content-length': 100_000_000 } }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.on('socket', (sock) => {
      socketClosed = new Promise((res) => {
        sock.once('close', () => res(true));
        setTimeout(() => res(false), 3000);
      });
    });
    req.write('{"data": "xxxx'); // and nothing more: the answer must not wait for the other 100 MB
  });
  assert.equal(declared.status, 200);
  assert.match(declared.body, /"status":"DROP".*body of 100000000 bytes is over the limit of 4096/);
  assert.equal(await socketClosed, true, 'the server closes the connection rather than wait for a body it will not read');
  assert.equal((await state(r)).malformed.count, 5);
  // And the port goes on taking events.
  assert.deepEqual((await postJson(url, cloud(event(1)))).json, { status: 'SUCCESS' });
});

test('APP_API_TOKEN: every Dapr route but /health needs dapr-api-token, compared in full', async () => {
  const r = await start([], { APP_API_TOKEN: 's3cret-token' });
  const base = `http://127.0.0.1:${r.appPort}`;
  assert.equal((await fetch(`${base}/health`)).status, 200);
  const none = await fetch(`${base}/dapr/subscribe`);
  assert.equal(none.status, 401);
  assert.match(((await none.json()) as { error: string }).error, /missing dapr-api-token/);
  const wrong = await fetch(`${base}/dapr/subscribe`, { headers: { 'dapr-api-token': 's3cret-toke' } });
  assert.equal(wrong.status, 401);
  assert.match(((await wrong.json()) as { error: string }).error, /does not match/);
  assert.equal((await postJson(`${base}/events`, cloud(event(0)))).status, 401);
  assert.equal((await state(r)).jobs['srv'], undefined, 'an unauthorised event is not taken');
  const ok = await fetch(`${base}/dapr/subscribe`, { headers: { 'dapr-api-token': 's3cret-token' } });
  assert.equal(ok.status, 200);
  assert.deepEqual((await postJson(`${base}/events`, cloud(event(0)), { 'dapr-api-token': 's3cret-token' })).json, { status: 'SUCCESS' });
  // The browser side has no Dapr token: it is another port.
  assert.equal((await fetch(`http://127.0.0.1:${r.uiPort}/api/state`)).status, 200);
});

test('DAPRTRAIN_REQUIRE_APP_TOKEN=true (any case) without APP_API_TOKEN: the server refuses to start and says how to get one', async () => {
  for (const require of ['true', 'TRUE', 'True']) {
    const res = spawnSync(process.execPath, [SERVER_JS], {
      env: { ...process.env, APP_PORT: '0', DASHBOARD_UI_PORT: '0', DAPRTRAIN_REQUIRE_APP_TOKEN: require, APP_API_TOKEN: '' },
      encoding: 'utf8',
      timeout: 10_000,
    });
    assert.notEqual(res.status, 0, `started with DAPRTRAIN_REQUIRE_APP_TOKEN=${require} and no token:\n${res.stdout}`);
    assert.equal(res.signal, null, 'exited by itself');
    assert.match(res.stderr, /APP_API_TOKEN is not set, and DAPRTRAIN_REQUIRE_APP_TOKEN asks for it/);
    assert.match(res.stderr, /\.\/run-local\.sh/);
    assert.match(res.stderr, /export APP_API_TOKEN/);
    assert.doesNotMatch(res.stdout, /"dashboard":"listening"/);
  }
  // With the token, or without the requirement, it starts.
  const withToken = await start([], { DAPRTRAIN_REQUIRE_APP_TOKEN: 'true', APP_API_TOKEN: 'tok' });
  assert.equal((await fetch(`http://127.0.0.1:${withToken.appPort}/dapr/subscribe`, { headers: { 'dapr-api-token': 'tok' } })).status, 200);
  const notRequired = await start([], { DAPRTRAIN_REQUIRE_APP_TOKEN: 'false', APP_API_TOKEN: '' });
  assert.equal((await fetch(`http://127.0.0.1:${notRequired.appPort}/dapr/subscribe`)).status, 200);
});

/** Reads server-sent events from /api/stream until `until` says stop. */
async function readStream(url: string, until: (events: { event: string; data: string }[]) => boolean, timeoutMs = 5000) {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), timeoutMs);
  const got: { event: string; data: string }[] = [];
  try {
    const res = await fetch(url, { signal: ac.signal });
    assert.equal(res.headers.get('content-type'), 'text/event-stream; charset=utf-8');
    const decoder = new TextDecoder();
    let buf = '';
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buf += decoder.decode(chunk, { stream: true });
      let i;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const ev = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (ev && data !== undefined) got.push({ event: ev, data });
      }
      if (until(got)) break;
    }
  } finally {
    clearTimeout(timer);
    ac.abort();
  }
  return got;
}

test('GET /api/stream: a snapshot, then batches of what arrives (throttled)', async () => {
  const r = await start();
  await postJson(`http://127.0.0.1:${r.appPort}/events`, cloud(event(0)));
  let posted = false;
  const got = await readStream(`http://127.0.0.1:${r.uiPort}/api/stream`, (evs) => {
    if (evs.length === 1 && !posted) {
      posted = true;
      // Five events in quick succession, and one malformed: one or two batches, not six messages.
      void (async () => {
        for (let i = 1; i <= 5; i++) await postJson(`http://127.0.0.1:${r.appPort}/events`, cloud(event(i)));
        await postJson(`http://127.0.0.1:${r.appPort}/events`, cloud({ nope: true }));
      })();
    }
    const rounds = evs.filter((e) => e.event === 'batch').flatMap((e) => (JSON.parse(e.data) as { events: { round: number }[] }).events.map((x) => x.round));
    const bad = evs.filter((e) => e.event === 'batch').flatMap((e) => (JSON.parse(e.data) as { malformed: unknown[] }).malformed);
    return rounds.length === 5 && bad.length === 1;
  });
  assert.equal(got[0]!.event, 'snapshot');
  const snap = JSON.parse(got[0]!.data) as StoreState;
  assert.deepEqual(snap.jobs['srv']!.evals.map((p) => p.round), [0]);
  const batches = got.filter((e) => e.event === 'batch');
  assert.ok(batches.length >= 1 && batches.length <= 3, `${batches.length} batches for 6 posts`);
  const rounds = batches.flatMap((e) => (JSON.parse(e.data) as { events: { round: number }[] }).events.map((x) => x.round));
  assert.deepEqual(rounds, [1, 2, 3, 4, 5]);
});

test('GET /api/stream: a client that stops reading is dropped once its backlog passes the bound (the server does not buffer without end)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dashboard-test-'));
  const file = join(dir, 'run.jsonl');
  writeFileSync(file, '');
  const r = await start(['--tail', file], { DASHBOARD_MAX_STREAM_BUFFER_BYTES: String(1024 * 1024), DASHBOARD_FLUSH_MS: '10' });
  const health = async () => (await (await fetch(`http://127.0.0.1:${r.uiPort}/health`)).json()) as { streams: number; streamsDropped: number };
  // A raw client: it sends the request, then never reads (paused: the kernel's buffers fill, then the server's).
  const sock = connect(r.uiPort, '127.0.0.1');
  await new Promise<void>((res, rej) => sock.once('connect', res).once('error', rej));
  sock.write(`GET /api/stream HTTP/1.1\r\nHost: 127.0.0.1:${r.uiPort}\r\n\r\n`);
  sock.pause();
  const deadline = (ms: number) => Date.now() + ms;
  let until = deadline(5000);
  while ((await health()).streams !== 1) {
    if (Date.now() > until) assert.fail('the raw client never got its stream');
    await new Promise((res) => setTimeout(res, 20));
  }
  // Big events (a view of 1,024 members, ~43 KB each) in separate batches: 24 MB in all, far past the bound
  // plus what the kernel buffers on both ends.
  const members = Array.from({ length: 1024 }, (_, m) => `node-${String(m).padStart(4, '0')}-${'x'.repeat(30)}`);
  const line = (seq: number) => JSON.stringify({ schema: 1, job: 'bp', source: 'coordinator', seq, timeMs: seq, kind: 'membership', change: 'view', generation: seq, members }) + '\n';
  let seq = 0;
  let dropped = false;
  for (let chunk = 0; chunk < 56 && !dropped; chunk++) {
    appendFileSync(file, Array.from({ length: 10 }, () => line(seq++)).join(''));
    await new Promise((res) => setTimeout(res, 40));
    dropped = (await health()).streams === 0;
  }
  until = deadline(10_000);
  let h = await health();
  while (h.streams !== 0 && Date.now() < until) {
    await new Promise((res) => setTimeout(res, 50));
    h = await health();
  }
  assert.equal(h.streams, 0, `the stuck client is still subscribed after ${seq} events`);
  assert.equal(h.streamsDropped, 1);
  // And its connection is closed: reading now gets what was sent, then the end.
  const closed = new Promise<boolean>((res) => {
    sock.once('close', () => res(true));
    setTimeout(() => res(false), 10_000);
  });
  sock.on('data', () => {});
  sock.resume();
  assert.equal(await closed, true, 'the server closed the connection');
  // A client that reads is served as before.
  const got = await readStream(`http://127.0.0.1:${r.uiPort}/api/stream`, (evs) => evs.length >= 1);
  assert.equal(got[0]!.event, 'snapshot');
  assert.ok((JSON.parse(got[0]!.data) as StoreState).jobs['bp'], 'the snapshot has the job');
});

test('--replay: a file with broken lines is replayed whole, the broken lines counted with their line numbers', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dashboard-test-'));
  const file = join(dir, 'run.jsonl');
  const good = readFileSync(join(PKG, 'test/fixtures/synthetic-p2p-4-kill-worker-4.jsonl'), 'utf8').trim().split('\n');
  const lines = [...good.slice(0, 10), '{"truncated": ', 'hello', JSON.stringify(event(0, { accuracy: -1 })), ...good.slice(10), ''];
  writeFileSync(file, lines.join('\n'));
  const r = await start(['--replay', file, '--speed', '0']);
  const deadline = Date.now() + 5000;
  let s = await state(r);
  while (!s.jobs['embedded-42']?.finished && Date.now() < deadline) {
    await new Promise((res) => setTimeout(res, 50));
    s = await state(r);
  }
  assert.equal(s.jobs['embedded-42']!.counters.events, good.length);
  assert.equal(s.malformed.count, 3);
  assert.deepEqual(s.malformed.reasons.map((m) => m.origin), [11, 12, 13].map((n) => `${file} line ${n}`));
  assert.match(s.malformed.reasons[2]!.reason, /accuracy: must be >= 0/);
});

test('--tail: follows the file as it is written, line by line, and starts over when it is truncated', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dashboard-test-'));
  const file = join(dir, 'run.jsonl'); // not there yet: the tail waits for it
  const r = await start(['--tail', file]);
  const waitFor = async (pred: (s: StoreState) => boolean, what: string) => {
    const deadline = Date.now() + 5000;
    for (;;) {
      const s = await state(r);
      if (pred(s)) return s;
      if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}: ${JSON.stringify(s.jobs['srv']?.evals ?? s.malformed)}`);
      await new Promise((res) => setTimeout(res, 50));
    }
  };
  writeFileSync(file, JSON.stringify(event(0)) + '\n' + JSON.stringify(event(1)).slice(0, 20));
  await waitFor((s) => s.jobs['srv']?.evals.length === 1, 'the first line');
  appendFileSync(file, JSON.stringify(event(1)).slice(20) + '\nnot json\n');
  let s = await waitFor((s) => s.jobs['srv']?.evals.length === 2 && s.malformed.count === 1, 'the completed second line and the bad one');
  assert.match(s.malformed.reasons[0]!.reason, /^not JSON/);
  assert.equal(s.malformed.reasons[0]!.origin, `${file} line 3`);
  writeFileSync(file, JSON.stringify(event(0, { job: 'srv2' })) + '\n');
  s = await waitFor((s) => s.jobs['srv2'] !== undefined, 'the new file');
  assert.equal(s.jobs['srv']!.evals.length, 2);
});

test('--tail: a new embedded run rewriting the file (same default job id) replaces the previous run on the dashboard', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dashboard-test-'));
  const file = join(dir, 'run.jsonl');
  // Two runs of `daprtrain train --events run.jsonl`, each numbering from its own process start time (µs).
  const runOf = (t0: number, workers: number, rounds: number) => [
    { schema: 1, job: 'daprtrain', source: 'job', seq: t0, timeMs: 0, kind: 'job-started', topology: 'p2p', mode: 'embedded', clock: 'virtual', workers, rounds, model: 'mlp' },
    ...Array.from({ length: rounds }, (_, i) => ({ schema: 1, job: 'daprtrain', source: 'job', seq: t0 + 1 + i, timeMs: 10 * (i + 1), kind: 'evaluation', round: i + 1, accuracy: 0.5 })),
  ].map((e) => JSON.stringify(e)).join('\n') + '\n';
  writeFileSync(file, runOf(1_800_000_000_000_000, 4, 3));
  const r = await start(['--tail', file]);
  const waitFor = async (pred: (s: StoreState) => boolean, what: string) => {
    const deadline = Date.now() + 5000;
    for (;;) {
      const s = await state(r);
      if (pred(s)) return s;
      if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}: ${JSON.stringify(s.jobs['daprtrain']?.counters)}`);
      await new Promise((res) => setTimeout(res, 50));
    }
  };
  await waitFor((s) => s.jobs['daprtrain']?.evals.length === 3, 'the first run');
  writeFileSync(join(dir, 'next.jsonl'), runOf(1_800_000_060_000_000, 2, 2));
  renameSync(join(dir, 'next.jsonl'), file);
  const s = await waitFor((s) => s.jobs['daprtrain']?.workers === 2 && s.jobs['daprtrain']?.evals.length === 2, 'the second run alone');
  const j = s.jobs['daprtrain']!;
  assert.deepEqual(j.nodeOrder, ['worker-1', 'worker-2']);
  assert.deepEqual(j.evals.map((p) => p.round), [1, 2]);
  assert.equal(j.counters.events, 3);
  assert.equal(j.counters.restarts, 0);
  assert.equal(j.counters.gaps, 0);
  assert.equal(s.malformed.count, 0);
});

test('the page and its bundle are served from the UI port, with no outside address in them', async () => {
  const r = await start();
  const html = await (await fetch(`http://127.0.0.1:${r.uiPort}/`)).text();
  assert.match(html, /<script type="module" src="app.js">/);
  const js = await fetch(`http://127.0.0.1:${r.uiPort}/app.js`);
  assert.equal(js.status, 200);
  const body = await js.text();
  assert.ok(body.includes('uPlot') || body.includes('u-legend'), 'uPlot is bundled');
  assert.doesNotMatch(html, /https?:\/\/(?!127\.0\.0\.1)/, 'no CDN');
  assert.equal((await fetch(`http://127.0.0.1:${r.uiPort}/health`)).status, 200);
  assert.equal((await fetch(`http://127.0.0.1:${r.uiPort}/../../package.json`)).status, 404);
});
