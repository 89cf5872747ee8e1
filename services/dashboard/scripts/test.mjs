// Runs every test file (build/test/*.test.js, compiled by `npm test`'s pretest) with node's test runner,
// prints its spec report, and ends with the one line CI sums: `dashboard: N passed, N failed`.
// Skipped tests are neither: they are named in the report and counted on the line before.
import { run } from 'node:test';
import { spec } from 'node:test/reporters';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = join(dirname(fileURLToPath(import.meta.url)), '..', 'build', 'test');
const only = process.argv.slice(2);
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.test.js') && (only.length === 0 || only.some((o) => f.includes(o))))
  .sort()
  .map((f) => join(dir, f));

let passed = 0;
let failed = 0;
let skipped = 0;
// One file at a time: the browser and server tests start processes and chromium, and the machine has 2 cores.
const stream = run({ files, concurrency: 1 });
stream.on('test:pass', (d) => {
  if (d.details?.type === 'suite') return;
  if (d.skip !== undefined || d.todo !== undefined) skipped++;
  else passed++;
});
stream.on('test:fail', (d) => {
  if (d.details?.type === 'suite') return;
  failed++;
});
const reporter = stream.compose(spec);
reporter.pipe(process.stdout, { end: false });
reporter.on('end', () => {
  if (files.length === 0) failed++; // a run that found no tests must not look green
  if (skipped > 0) console.log(`dashboard: ${skipped} skipped (see the reasons above)`);
  console.log(`dashboard: ${passed} passed, ${failed} failed`);
  process.exitCode = failed > 0 ? 1 : 0;
});
