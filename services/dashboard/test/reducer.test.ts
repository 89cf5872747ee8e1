// Unit tests of the reducer: node states, rejoining, duplicates, seq gaps, bounds, eviction, malformed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { addPoint, applyEvent, recordMalformed, createStore, DEFAULT_LIMITS, faultNode, sizes, type EvalPoint, type StoreState } from '../src/reducer.js';
import { Hub } from '../src/hub.js';
import { loadValidator } from '../src/schema.js';
import { synthRun } from '../src/synth.js';
import type { ProgressEvent } from '../src/types.js';
import { PKG } from './support.js';

const JOB = 'j1';
const seqs = new Map<string, number>();
/** An event without its envelope (Omit applied to each member of the union). */
type Draft = ProgressEvent extends infer E ? E extends ProgressEvent ? Omit<E, 'schema' | 'job' | 'seq' | 'timeMs'> & { timeMs?: number; seq?: number; job?: string } : never : never;
/** An event with the next seq of its source. */
function ev(e: Draft): ProgressEvent {
  const source = (e as { source: string }).source;
  const seq = e.seq ?? (seqs.get(source) ?? -1) + 1;
  seqs.set(source, seq);
  return { schema: 1, job: JOB, timeMs: 0, ...e, seq } as ProgressEvent;
}
const round = (source: string, r: number, bytes = 100): ProgressEvent =>
  ev({ kind: 'round-completed', source, round: r, generation: 0, durationMs: 1, bytes, contributors: 4 });

function fresh(): StoreState {
  seqs.clear();
  const s = createStore();
  applyEvent(s, ev({ kind: 'job-started', source: 'job', topology: 'p2p', mode: 'embedded', clock: 'virtual', workers: 4, rounds: 60, model: 'mlp' }));
  return s;
}

test('the synthetic fixture: worker-4 dead at round 20, the others alive, faults marked, final accuracy kept', () => {
  const s = createStore();
  const lines = readFileSync(join(PKG, 'test/fixtures/synthetic-p2p-4-kill-worker-4.jsonl'), 'utf8').trim().split('\n');
  for (const l of lines) assert.equal(applyEvent(s, JSON.parse(l) as ProgressEvent), 'applied');
  const j = s.jobs['embedded-42']!;
  assert.deepEqual(j.nodeOrder, ['worker-1', 'worker-2', 'worker-3', 'worker-4']);
  assert.equal(j.nodes['worker-4']!.state, 'dead');
  assert.equal(j.nodes['worker-4']!.round, 20);
  for (const w of ['worker-1', 'worker-2', 'worker-3']) assert.equal(j.nodes[w]!.state, 'alive');
  assert.deepEqual(j.faults.map((f) => [f.phase, f.round]), [['injected', 20], ['detected', 20], ['recovered', 20]]);
  assert.equal(j.clock, 'virtual');
  assert.equal(j.finished?.accuracy, j.evals[j.evals.length - 1]!.accuracy);
  assert.equal(j.bytes.length, 60);
  assert.equal(j.bytes[30]!.byNode['worker-4'], undefined, 'no bytes for a dead worker');
  assert.equal(j.counters.events, lines.length);
  assert.match(j.cost!.prices, /price table/);
});

test('node-state events set every state, with round and reason', () => {
  const s = fresh();
  for (const state of ['slow', 'dead', 'rejoining', 'alive'] as const) {
    applyEvent(s, ev({ kind: 'node-state', source: 'job', node: 'worker-2', state, round: 7, reason: `now ${state}` }));
    assert.equal(s.jobs[JOB]!.nodes['worker-2']!.state, state);
    assert.equal(s.jobs[JOB]!.nodes['worker-2']!.round, 7);
  }
});

test('a node that joins after being dead is rejoining until its next round-completed', () => {
  const s = fresh();
  const j = s.jobs[JOB]!;
  applyEvent(s, round('worker-3', 1));
  applyEvent(s, ev({ kind: 'membership', source: 'coordinator', change: 'lease-expired', node: 'worker-3', generation: 1, members: ['worker-1', 'worker-2', 'worker-4'] }));
  assert.equal(j.nodes['worker-3']!.state, 'dead');
  assert.equal(j.nodes['worker-3']!.reason, 'lease expired');
  // A view that still lists it (or a checkpoint-writer change) does not bring it back.
  applyEvent(s, ev({ kind: 'membership', source: 'coordinator', change: 'checkpoint-writer', generation: 1, members: ['worker-1', 'worker-2', 'worker-3'], checkpointWriter: 'worker-2' }));
  assert.equal(j.nodes['worker-3']!.state, 'dead');
  assert.equal(j.checkpointWriter, 'worker-2');
  applyEvent(s, ev({ kind: 'membership', source: 'coordinator', change: 'joined', node: 'worker-3', generation: 2, members: ['worker-1', 'worker-2', 'worker-3', 'worker-4'] }));
  assert.equal(j.nodes['worker-3']!.state, 'rejoining');
  assert.equal(j.generation, 2);
  applyEvent(s, round('worker-1', 2)); // another node's round changes nothing
  assert.equal(j.nodes['worker-3']!.state, 'rejoining');
  applyEvent(s, round('worker-3', 2));
  assert.equal(j.nodes['worker-3']!.state, 'alive');
  // "left" is dead too; a join of a node that was never dead is just alive.
  applyEvent(s, ev({ kind: 'membership', source: 'coordinator', change: 'left', node: 'worker-1', generation: 3, members: ['worker-2', 'worker-3', 'worker-4'] }));
  assert.equal(j.nodes['worker-1']!.state, 'dead');
  applyEvent(s, ev({ kind: 'membership', source: 'coordinator', change: 'joined', node: 'worker-9', generation: 4, members: ['worker-2', 'worker-3', 'worker-4', 'worker-9'] }));
  assert.equal(j.nodes['worker-9']!.state, 'alive');
});

test('faults: kill makes its node dead, restart rejoining, slow slow; the markers keep round and time', () => {
  const s = fresh();
  const j = s.jobs[JOB]!;
  applyEvent(s, ev({ kind: 'fault', source: 'job', phase: 'injected', fault: 'kill:worker-2@round=20', round: 20, timeMs: 250 }));
  assert.equal(j.nodes['worker-2']!.state, 'dead');
  assert.equal(j.nodes['worker-2']!.round, 20);
  applyEvent(s, ev({ kind: 'fault', source: 'job', phase: 'injected', fault: 'restart:worker-2@round=30', node: 'worker-2', round: 30 }));
  assert.equal(j.nodes['worker-2']!.state, 'rejoining');
  applyEvent(s, round('worker-2', 30));
  assert.equal(j.nodes['worker-2']!.state, 'alive');
  applyEvent(s, ev({ kind: 'fault', source: 'job', phase: 'injected', fault: 'slow:worker-1=400ms@round=5', round: 5 }));
  assert.equal(j.nodes['worker-1']!.state, 'slow');
  assert.deepEqual(j.faults[0], { phase: 'injected', fault: 'kill:worker-2@round=20', round: 20, timeMs: 250 });
  // A kill, then the lease expiring rounds later: dead since the kill's round, with the kill's reason.
  applyEvent(s, ev({ kind: 'fault', source: 'job', phase: 'injected', fault: 'kill:worker-3@round=40', round: 40 }));
  applyEvent(s, ev({ kind: 'membership', source: 'coordinator', change: 'lease-expired', node: 'worker-3', generation: 1, members: ['worker-1', 'worker-2', 'worker-4'] }));
  applyEvent(s, ev({ kind: 'fault', source: 'job', phase: 'detected', fault: 'kill:worker-3@round=40', round: 44 }));
  assert.equal(j.nodes['worker-3']!.state, 'dead');
  assert.equal(j.nodes['worker-3']!.round, 40);
  assert.equal(j.nodes['worker-3']!.reason, 'kill:worker-3@round=40');
  assert.equal(faultNode('kill:ps@round=40'), 'ps');
  assert.equal(faultNode('drop=0.02'), undefined);
});

test('a dead node that completes a later round is alive again (it came back without a join we heard of)', () => {
  const s = fresh();
  applyEvent(s, ev({ kind: 'node-state', source: 'job', node: 'worker-4', state: 'dead', round: 10 }));
  applyEvent(s, round('worker-4', 10)); // a late round of before its death: still dead
  assert.equal(s.jobs[JOB]!.nodes['worker-4']!.state, 'dead');
  applyEvent(s, round('worker-4', 11));
  assert.equal(s.jobs[JOB]!.nodes['worker-4']!.state, 'alive');
});

test('duplicates by (source, seq) are ignored and counted', () => {
  const s = fresh();
  const e = round('worker-1', 1, 500);
  assert.equal(applyEvent(s, e), 'applied');
  const again = { ...e, bytes: 999 } as ProgressEvent;
  assert.equal(applyEvent(s, again), 'duplicate');
  const j = s.jobs[JOB]!;
  assert.equal(j.counters.duplicates, 1);
  assert.equal(j.counters.events, 2); // job-started and the first round
  assert.equal(j.bytes[0]!.byNode['worker-1'], 500);
  // The same seq from another source is not a duplicate.
  assert.equal(applyEvent(s, { ...e, source: 'worker-2' } as ProgressEvent), 'applied');
});

test('gaps in seq are counted per source; a late event fills its gap, a replay of it is a duplicate', () => {
  const s = fresh();
  const j = s.jobs[JOB]!;
  applyEvent(s, ev({ kind: 'evaluation', source: 'job', round: 1, accuracy: 0.1, seq: 1 }));
  applyEvent(s, ev({ kind: 'evaluation', source: 'job', round: 5, accuracy: 0.5, seq: 5 }));
  assert.equal(j.counters.gaps, 3);
  assert.deepEqual(j.sources['job']!.missing, [2, 3, 4]);
  assert.equal(applyEvent(s, ev({ kind: 'evaluation', source: 'job', round: 3, accuracy: 0.3, seq: 3 })), 'applied');
  assert.equal(j.counters.gaps, 2);
  assert.deepEqual(j.evals.map((p) => p.round), [1, 3, 5], 'a late evaluation goes where its round belongs');
  assert.equal(applyEvent(s, ev({ kind: 'evaluation', source: 'job', round: 3, accuracy: 0.3, seq: 3 })), 'duplicate');
  assert.equal(j.counters.gaps, 2);
  assert.equal(j.sources['job']!.gaps, 3);
});

test('seq starting at a process start time (Dapr services, embedded runs): the first event opens no gap', () => {
  seqs.clear();
  const s = createStore();
  const t0 = 1_800_000_000_000_000; // microseconds since the Unix epoch, as the C# side starts every source
  applyEvent(s, ev({ kind: 'job-started', source: 'worker-1', seq: t0, topology: 'ps', mode: 'dapr', clock: 'wall', workers: 2, rounds: 10, model: 'mlp' }));
  for (let r = 1; r <= 3; r++) applyEvent(s, ev({ kind: 'round-completed', source: 'worker-1', round: r, generation: 1, durationMs: 5, bytes: 10 }));
  applyEvent(s, ev({ kind: 'round-completed', source: 'ps', seq: t0 + 17, round: 1, generation: 1, durationMs: 5, bytes: 10, contributors: 2 }));
  const j = s.jobs[JOB]!;
  assert.equal(j.counters.gaps, 0);
  assert.equal(j.counters.restarts, 0);
  assert.deepEqual(j.sources['worker-1']!.missing, []);
  assert.equal(j.sources['worker-1']!.maxSeq, t0 + 3);
  assert.equal(j.counters.events, 5);
});

test('a jump forward past the remembered window is a restart of its source, not a gap; a real gap of 3 still counts 3 until filled', () => {
  seqs.clear();
  const s = createStore();
  const t0 = 1_800_000_000_000_000;
  const evalAt = (seq: number, r: number) => ev({ kind: 'evaluation', source: 'worker-1', seq, round: r, accuracy: 0.5 });
  applyEvent(s, evalAt(t0, 1));
  applyEvent(s, evalAt(t0 + 1, 2));
  const j = s.jobs[JOB]!;
  // The process restarts: its numbers continue a second (1e6 µs) to 1e9 µs above its predecessor's.
  const t1 = t0 + 1 + 1_000_000_000;
  assert.equal(applyEvent(s, evalAt(t1, 3)), 'applied');
  assert.equal(j.counters.restarts, 1);
  assert.equal(j.sources['worker-1']!.restarts, 1);
  assert.equal(j.counters.gaps, 0);
  assert.deepEqual(j.sources['worker-1']!.missing, [], 'no skipped numbers remembered for a restart');
  // A late event of before the restart, above what was seen of it, is below the window: a duplicate (documented).
  assert.equal(applyEvent(s, evalAt(t0 + 2, 9)), 'duplicate');
  // A real gap of 3 after the restart: counted 3, filled by the late ones, a replay of one of them a duplicate.
  assert.equal(applyEvent(s, evalAt(t1 + 4, 7)), 'applied');
  assert.equal(j.counters.gaps, 3);
  assert.equal(j.counters.restarts, 1);
  assert.deepEqual(j.sources['worker-1']!.missing, [t1 + 1, t1 + 2, t1 + 3]);
  for (const [q, r] of [[t1 + 2, 5], [t1 + 1, 4], [t1 + 3, 6]] as const) assert.equal(applyEvent(s, evalAt(q, r)), 'applied');
  assert.equal(j.counters.gaps, 0);
  assert.equal(j.sources['worker-1']!.gaps, 3);
  assert.equal(applyEvent(s, evalAt(t1 + 2, 5)), 'duplicate');
  assert.deepEqual(j.evals.map((p) => p.round), [1, 2, 3, 4, 5, 6, 7]);
  // The largest jump that is still a gap: exactly maxMissingPerSource numbers skipped.
  const last = t1 + 4 + DEFAULT_LIMITS.maxMissingPerSource + 1;
  applyEvent(s, evalAt(last, 8));
  assert.equal(j.counters.gaps, DEFAULT_LIMITS.maxMissingPerSource);
  assert.equal(j.counters.restarts, 1);
});

test('bounds: 100,000 hostile events keep every size under its cap', () => {
  const s = createStore();
  const L = DEFAULT_LIMITS;
  let n = 0;
  for (let i = 0; n < 100_000; i++) {
    const job = `job-${i % 20}`; // more jobs than kept
    const k = i % 50 === 3 ? 3 : i % 5 === 3 ? 0 : i % 5; // a 1024-member view 1 time in 50: each makes ~1024 nodes
    const source = `worker-${i % 3000}`; // more nodes and sources than kept
    const seq = i * 1000; // a gap of ~1000 every time
    const base = { schema: 1 as const, job, source, seq, timeMs: i };
    const e: ProgressEvent =
      k === 0 ? { ...base, kind: 'round-completed', round: i, generation: 0, durationMs: 1, bytes: i, contributors: 1 }
      : k === 1 ? { ...base, kind: 'evaluation', round: i, accuracy: 0.5 }
      : k === 2 ? { ...base, kind: 'fault', phase: 'injected', fault: `slow:${source}=1ms`, round: i }
      : k === 3 ? { ...base, kind: 'membership', change: 'view', generation: i, members: Array.from({ length: 1024 }, (_, m) => `n-${(i + m) % 5000}`) }
      : { ...base, kind: 'node-state', node: `x-${i}`, state: 'slow' };
    applyEvent(s, e);
    n++;
    if (i % 100 === 0) recordMalformed(s, 'x'.repeat(300), `line ${i}`);
  }
  const z = sizes(s);
  assert.ok(z.jobs! <= L.maxJobs, `jobs ${z.jobs}`);
  assert.ok(z.nodes! <= L.maxNodes, `nodes ${z.nodes}`);
  assert.ok(z.sources! <= L.maxSources, `sources ${z.sources}`);
  assert.ok(z.points! <= L.maxPoints, `points ${z.points}`);
  assert.ok(z.bytesRows! <= L.maxBytesRounds, `bytes rows ${z.bytesRows}`);
  assert.ok(z.bytesCells! <= L.maxNodes, `bytes cells ${z.bytesCells}`);
  assert.ok(z.faults! <= L.maxFaults, `faults ${z.faults}`);
  assert.ok(z.log! <= L.maxLog, `log ${z.log}`);
  assert.ok(z.missing! <= L.maxMissingPerSource, `missing ${z.missing}`);
  assert.ok(z.malformedReasons! <= L.maxMalformedReasons, `malformed reasons ${z.malformedReasons}`);
  assert.equal(s.malformed.count, 1000);
  assert.ok(s.jobsEvicted > 0);
  // And the snapshot a browser gets stays small enough to send.
  assert.ok(JSON.stringify(s).length < 40 * 1024 * 1024, `snapshot ${JSON.stringify(s).length} bytes`);
});

test('bounds: one job fed 100,000 events keeps its series, bytes table, faults, log and sources under the caps', () => {
  const s = createStore();
  const L = DEFAULT_LIMITS;
  const seq = new Map<string, number>();
  for (let i = 0; i < 100_000; i++) {
    const source = `worker-${i % 1500}`; // more sources than kept
    const q = (seq.get(source) ?? 0) + 1 + (i % 7 === 0 ? 5000 : 0); // and gaps
    seq.set(source, q);
    const base = { schema: 1 as const, job: 'one', source, seq: q, timeMs: i };
    const r = Math.floor(i / 10);
    const k = i % 4;
    const e: ProgressEvent =
      k === 0 ? { ...base, kind: 'round-completed', round: r, generation: 0, durationMs: 1, bytes: i, contributors: 1 }
      : k === 1 ? { ...base, kind: 'evaluation', round: r, accuracy: 0.5 }
      : k === 2 ? { ...base, kind: 'fault', phase: 'detected', fault: 'drop=0.1', round: r }
      : { ...base, kind: 'cost', round: r, vmUsd: 1, serverlessUsd: 1, prices: 'p'.repeat(300) };
    applyEvent(s, e);
  }
  const j = s.jobs['one']!;
  assert.ok(j.evals.length <= L.maxPoints, `points ${j.evals.length}`);
  assert.equal(j.bytes.length, L.maxBytesRounds);
  assert.equal(j.bytes[j.bytes.length - 1]!.round, 9999, 'the newest rounds are kept');
  assert.equal(j.faults.length, L.maxFaults);
  assert.equal(j.log.length, L.maxLog);
  assert.ok(j.log.every((l) => l.text.length <= 400));
  assert.equal(j.sourceCount, L.maxSources);
  assert.ok(j.counters.sourcesRefused > 0);
  assert.ok(j.nodeOrder.length <= L.maxNodes);
  for (const src of Object.values(j.sources)) assert.ok(src.missing.length <= L.maxMissingPerSource);
});

test('bounds on a long evaluation series: thinned, the first and last points exact', () => {
  const pts: EvalPoint[] = [];
  for (let r = 1; r <= 100_000; r++) addPoint(pts, { round: r, timeMs: r, accuracy: r / 100_000 }, 2000);
  assert.ok(pts.length <= 2000);
  assert.equal(pts[0]!.round, 1);
  assert.equal(pts[pts.length - 1]!.round, 100_000);
  assert.equal(pts[pts.length - 1]!.accuracy, 1);
  for (let i = 1; i < pts.length; i++) assert.ok(pts[i]!.round > pts[i - 1]!.round, 'ordered');
});

test('the least recently active job is evicted past maxJobs', () => {
  const s = createStore({ maxJobs: 3 });
  const start = (job: string) => applyEvent(s, { schema: 1, job, source: 'job', seq: 0, timeMs: 0, kind: 'job-started', topology: 'ps', mode: 'dapr', clock: 'wall', workers: 2, rounds: 5, model: 'mlp' });
  start('a'); start('b'); start('c');
  applyEvent(s, { schema: 1, job: 'a', source: 'job', seq: 1, timeMs: 1, kind: 'evaluation', round: 1, accuracy: 0.2 });
  start('d');
  assert.deepEqual(Object.keys(s.jobs).sort(), ['a', 'c', 'd']);
  assert.equal(s.jobsEvicted, 1);
  assert.deepEqual(s.jobs['d']!.nodeOrder, ['worker-1', 'worker-2', 'ps']);
});

test('malformed events are counted with their reasons, the last 50 kept; valid ones after them still apply', () => {
  const hub = new Hub(loadValidator());
  for (let i = 0; i < 120; i++) hub.ingestLine(i % 2 ? '{not json' : JSON.stringify({ schema: 1, kind: 'evaluation', job: 'j', source: 'job', seq: i, timeMs: 0, round: 1, accuracy: 2 }), `line ${i}`);
  const m = hub.store.malformed;
  assert.equal(m.count, 120);
  assert.equal(m.reasons.length, DEFAULT_LIMITS.maxMalformedReasons);
  assert.equal(m.reasons[m.reasons.length - 1]!.origin, 'line 119');
  assert.match(m.reasons[m.reasons.length - 1]!.reason, /^not JSON/);
  assert.match(m.reasons[m.reasons.length - 2]!.reason, /accuracy/);
  for (const e of synthRun({ workers: 2, rounds: 5 })) assert.equal(hub.ingest(e, 't'), null);
  assert.equal(hub.store.jobs['embedded-42']!.finished?.rounds, 5);
  hub.close();
});

test('a second embedded run into the same job id starts the job afresh; a replay of the first run\'s announcement does not', () => {
  seqs.clear();
  const s = createStore();
  const J = 'daprtrain'; // the CLI's default job id: every run into one events file has it
  const started = { kind: 'job-started', job: J, source: 'job', topology: 'p2p', mode: 'embedded', clock: 'virtual', workers: 4, rounds: 60, model: 'mlp' } as const;
  const t0 = 1_800_000_000_000_000;
  const first = ev({ ...started, seq: t0 });
  applyEvent(s, first);
  applyEvent(s, ev({ kind: 'round-completed', job: J, source: 'worker-1', seq: t0, round: 1, generation: 0, durationMs: 1, bytes: 7, contributors: 4 }));
  applyEvent(s, ev({ kind: 'evaluation', job: J, source: 'job', round: 1, accuracy: 0.4 }));
  applyEvent(s, ev({ kind: 'fault', job: J, source: 'job', phase: 'injected', fault: 'kill:worker-4@round=1', round: 1 }));
  applyEvent(s, ev({ kind: 'job-finished', job: J, source: 'job', rounds: 1, accuracy: 0.4 }));
  const old = s.jobs[J]!;
  assert.equal(old.nodes['worker-4']!.state, 'dead');
  // The same file read again (a replay, --tail starting over): the announcement is a duplicate, nothing resets.
  assert.equal(applyEvent(s, first), 'duplicate');
  assert.equal(s.jobs[J], old);
  assert.equal(old.counters.events, 5);
  assert.equal(old.counters.duplicates, 1);
  // A new run: its numbers start at its own process start time, above the first run's.
  const t1 = t0 + 60_000_000;
  assert.equal(applyEvent(s, ev({ ...started, seq: t1, workers: 2, scenario: 'second' })), 'applied');
  const j = s.jobs[J]!;
  assert.deepEqual(j.nodeOrder, ['worker-1', 'worker-2']);
  assert.equal(j.nodes['worker-4'], undefined);
  assert.equal(j.evals.length, 0);
  assert.equal(j.faults.length, 0);
  assert.equal(j.bytes.length, 0);
  assert.equal(j.finished, undefined);
  assert.equal(j.lastRound, 0);
  assert.equal(j.scenario, 'second');
  assert.deepEqual(j.counters, { events: 1, duplicates: 0, gaps: 0, restarts: 0, sourcesRefused: 0 });
  assert.deepEqual(Object.keys(j.sources), ['job']);
  assert.equal(j.log.length, 1);
  assert.match(j.log[0]!.text, /^a new run of this job \(the previous run's state was cleared\): job started/);
  assert.equal(Object.keys(s.jobs).length, 1);
  // The new run goes on from there: its worker-1 starts at its own number, no gap.
  assert.equal(applyEvent(s, ev({ kind: 'round-completed', job: J, source: 'worker-1', seq: t1 + 3, round: 1, generation: 0, durationMs: 1, bytes: 9, contributors: 2 })), 'applied');
  assert.equal(j.counters.gaps, 0);
  assert.equal(j.bytes[0]!.byNode['worker-1'], 9);
});

test('Dapr mode: a restarted worker-1 announces the job again without moving its time origin; a round of a worker under ps has no contributors', () => {
  seqs.clear();
  const s = createStore();
  const started = { kind: 'job-started', topology: 'ps', mode: 'dapr', clock: 'wall', workers: 2, rounds: 10, model: 'mlp' } as const;
  applyEvent(s, ev({ ...started, source: 'worker-1', timeMs: 1_000 }));
  assert.equal(applyEvent(s, ev({ kind: 'round-completed', source: 'worker-2', round: 1, generation: 1, durationMs: 5, bytes: 10, timeMs: 1_500 })), 'applied');
  // The restarted process starts its seq at its start time in microseconds (far above the first process's).
  applyEvent(s, ev({ ...started, source: 'worker-1', timeMs: 9_000, seq: 9_000_000 }));
  const j = s.jobs[JOB]!;
  assert.equal(j.startMs, 1_000, 'the first announcement is the origin');
  assert.equal(j.nodes['worker-2']!.lastRound, 1);
  assert.equal(j.counters.duplicates, 0);
  assert.equal(j.counters.restarts, 1, 'worker-1 restarted');
  assert.equal(j.counters.events, 3, 'a Dapr job-started does not start the job afresh');
  assert.equal(j.log.length, 3);
  assert.equal(j.counters.gaps, 0);
});

test('ids that name Object.prototype members ("constructor", "toString") are jobs and nodes like any other, also after a JSON snapshot', () => {
  seqs.clear();
  const s = createStore();
  const job = 'constructor';
  assert.equal(applyEvent(s, ev({ job, kind: 'job-started', source: 'job', topology: 'p2p', mode: 'embedded', clock: 'virtual', workers: 1, rounds: 5, model: 'mlp' })), 'applied');
  assert.equal(applyEvent(s, ev({ job, kind: 'round-completed', source: 'toString', round: 1, generation: 0, durationMs: 1, bytes: 5, contributors: 1 })), 'applied');
  const j = s.jobs[job]!;
  assert.equal(typeof j, 'object');
  assert.equal(j.nodes['toString']!.lastRound, 1);
  // The page reduces onto the snapshot JSON.parse made: plain objects again.
  const page = JSON.parse(JSON.stringify(s)) as StoreState;
  assert.equal(applyEvent(page, ev({ job: 'valueOf', kind: 'round-completed', source: 'hasOwnProperty', round: 1, generation: 0, durationMs: 1, bytes: 5 })), 'applied');
  assert.equal(page.jobs['valueOf']!.nodes['hasOwnProperty']!.lastRound, 1);
});
