// The schema contract, TypeScript side: what the C# CLI writes with `train --events FILE` validates against
// schemas/progress-event.schema.json and reduces to the picture the run had; broken events are refused with
// a reason that names the field.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { applyEvent, createStore } from '../src/reducer.js';
import { loadValidator, findSchemaFile } from '../src/schema.js';
import { PKG, REPO, realRun } from './support.js';

const validator = loadValidator();

test('the schema is the repository file, read at start', () => {
  assert.equal(findSchemaFile(), join(REPO, 'schemas', 'progress-event.schema.json'));
});

test('a real embedded run (daprtrain train --events): every event validates and reduces to the run', () => {
  const run = realRun();
  const store = createStore();
  for (const [i, line] of run.lines.entries()) {
    const v = validator.validate(JSON.parse(line));
    assert.ok(v.ok, `line ${i + 1} of ${run.file} does not validate: ${v.ok ? '' : v.reason}\n${line}`);
    assert.equal(applyEvent(store, v.event), 'applied', `line ${i + 1} was not applied`);
  }
  const kinds = new Set(run.events.map((e) => e.kind));
  for (const k of ['job-started', 'round-completed', 'evaluation', 'membership', 'node-state', 'fault', 'checkpoint', 'cost', 'job-finished']) {
    assert.ok(kinds.has(k), `the run wrote no ${k} event`);
  }
  const jobs = Object.values(store.jobs);
  assert.equal(jobs.length, 1);
  const job = jobs[0]!;
  assert.equal(job.topology, 'p2p');
  assert.equal(job.clock, 'virtual');
  assert.deepEqual(job.nodeOrder.filter((n) => n.startsWith('worker-')).sort(), ['worker-1', 'worker-2', 'worker-3', 'worker-4']);
  assert.equal(job.nodes['worker-4']!.state, 'dead');
  for (const w of ['worker-1', 'worker-2', 'worker-3']) assert.equal(job.nodes[w]!.state, 'alive', w);
  const injected = run.events.find((e) => e.kind === 'fault' && e.phase === 'injected');
  assert.equal(injected?.round, 20);
  assert.deepEqual(new Set(job.faults.map((f) => f.phase)), new Set(['injected', 'detected', 'recovered']));
  const finished = run.events.find((e) => e.kind === 'job-finished')!;
  assert.equal(job.finished?.accuracy, finished.accuracy);
  assert.equal(job.evals[job.evals.length - 1]!.accuracy, finished.accuracy, 'last evaluation = final accuracy');
  // Bytes per worker per round: each worker's own bytes, every round it completed.
  assert.equal(job.bytes.length, 60);
  assert.ok(job.bytes[0]!.byNode['worker-4']! > 0);
  assert.equal(job.bytes[59]!.byNode['worker-4'], undefined);
  assert.match(job.cost!.prices, /\d{4}-\d{2}-\d{2}/, 'the price source names its date');
  assert.equal(job.counters.duplicates, 0);
  assert.equal(job.counters.gaps, 0);
  assert.equal(job.counters.restarts, 0);
});

test('the synthetic fixture the other tests use follows the schema too', () => {
  const lines = readFileSync(join(PKG, 'test/fixtures/synthetic-p2p-4-kill-worker-4.jsonl'), 'utf8').trim().split('\n');
  for (const l of lines) {
    const v = validator.validate(JSON.parse(l));
    assert.ok(v.ok, v.ok ? '' : `${v.reason}: ${l}`);
  }
});

const base = { schema: 1, job: 'j', source: 'worker-1', seq: 0, timeMs: 0 };
const good = { ...base, kind: 'evaluation', round: 5, accuracy: 0.5, loss: 1.2 };

const broken: [string, unknown, RegExp][] = [
  ['accuracy above 1', { ...good, accuracy: 1.5 }, /^accuracy: must be <= 1/],
  ['missing round', { ...base, kind: 'evaluation', accuracy: 0.5 }, /^round: required/],
  ['a property of another kind', { ...good, bytes: 10 }, /^bytes: not a property/],
  ['unknown kind', { ...base, kind: 'epoch-done' }, /^kind: .* is not one of .*job-started/],
  ['no kind', { ...base, round: 1 }, /^kind: required/],
  ['schema version 2', { ...good, schema: 2 }, /^schema: must be 1/],
  ['negative seq', { ...good, seq: -1 }, /^seq: must be >= 0/],
  ['timeMs as text', { ...good, timeMs: '12' }, /^timeMs: must be number/],
  ['a job id with a space', { ...good, job: 'my job' }, /^job: must match pattern/],
  ['a node state that does not exist', { ...base, kind: 'node-state', node: 'worker-2', state: 'zombie' }, /^state: must be one of alive, slow, dead, rejoining/],
  ['duplicate members', { ...base, kind: 'membership', change: 'view', generation: 0, members: ['worker-1', 'worker-1'] }, /^members: must NOT have duplicate items/],
  ['a cost without its price source', { ...base, kind: 'cost', round: 1, vmUsd: 0, serverlessUsd: 0 }, /^prices: required/],
  ['an array', [good], /must be a JSON object, got an array/],
];

for (const [name, value, reason] of broken) {
  test(`refused with the field named: ${name}`, () => {
    assert.ok(validator.validate(good).ok, 'the unbroken event is valid');
    const v = validator.validate(value);
    assert.equal(v.ok, false);
    assert.match(v.ok ? '' : v.reason, reason);
  });
}
