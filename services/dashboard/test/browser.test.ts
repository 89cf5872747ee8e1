// The browser test: a real embedded run (p2p, 4 workers, worker-4 killed at round 20) made here with the
// CLI, replayed by the dashboard, looked at in Debian's chromium through playwright-core. It asserts what a
// person sees, against the values in the run's own file.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import type { BrowserContext, Page } from 'playwright-core';
import { chromiumMissing, launchChromium, realRun, startServer, type Running } from './support.js';

const missing = chromiumMissing();
// CI sets DASHBOARD_REQUIRE_BROWSER=1 where it could install chromium: there a missing browser is a failure,
// not a skip that would let the run look green without the browser test.
const required = /^(1|true)$/i.test(process.env.DASHBOARD_REQUIRE_BROWSER ?? '');
if (missing && !required) console.log(`# browser test skipped: ${missing}`);

let server: Running | undefined;
let browser: BrowserContext | undefined;
after(async () => {
  await browser?.close();
  await server?.stop();
});

test('a person watching a replayed real run sees four workers, worker-4 dead at the fault\'s round, the final accuracy and the fault marker', { skip: missing !== undefined && !required ? missing : false, timeout: 240_000 }, async () => {
  if (missing) assert.fail(`DASHBOARD_REQUIRE_BROWSER=${process.env.DASHBOARD_REQUIRE_BROWSER} and ${missing}`);
  const run = realRun(); // fails, saying how to build the CLI, if it is not built
  const injected = run.events.find((e) => e.kind === 'fault' && e.phase === 'injected' && e.fault === 'kill:worker-4@round=20');
  assert.ok(injected, 'the run has the injected fault');
  const faultRound = injected.round as number;
  const finished = run.events.find((e) => e.kind === 'job-finished');
  assert.ok(finished && typeof finished.accuracy === 'number', 'the run has a final accuracy');
  const finalAccuracy = finished.accuracy as number;
  const dead = run.events.find((e) => e.kind === 'node-state' && e.node === 'worker-4' && e.state === 'dead');

  // A replay at a speed that makes the page see the run unfold (its ~2 s of modelled time in about a second).
  server = await startServer(['--replay', run.file, '--speed', '2']);
  browser = await launchChromium();
  const page: Page = await browser.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`http://127.0.0.1:${server.uiPort}/`);

  // The job ends: the final accuracy is shown as text, equal to the file's.
  const final = page.getByTestId('final-accuracy');
  await final.waitFor({ timeout: 60_000 });
  assert.equal(Number(await final.getAttribute('data-value')), finalAccuracy);
  assert.match((await final.textContent()) ?? '', new RegExp(`${(finalAccuracy * 100).toFixed(2)}%`));

  // Four workers, three alive and worker-4 dead, at the round of the fault.
  const workers = page.locator('[data-testid^="node-worker-"]');
  assert.equal(await workers.count(), 4);
  for (const w of ['worker-1', 'worker-2', 'worker-3']) assert.equal(await page.getByTestId(`node-${w}`).getAttribute('data-state'), 'alive', w);
  const w4 = page.getByTestId('node-worker-4');
  assert.equal(await w4.getAttribute('data-state'), 'dead');
  const deadRound = Number(await w4.getAttribute('data-round'));
  assert.ok(Math.abs(deadRound - faultRound) <= 1, `worker-4 dead at round ${deadRound}, the fault at ${faultRound}`);
  if (dead && typeof dead.round === 'number') assert.equal(deadRound, dead.round);
  assert.match((await w4.textContent()) ?? '', new RegExp(`dead since round ${deadRound}`, 'i'));

  // The accuracy curve's last point is the run's final accuracy.
  const chart = page.getByTestId('accuracy-chart');
  assert.equal(Number(await chart.getAttribute('data-last-accuracy')), finalAccuracy);
  const evals = run.events.filter((e) => e.kind === 'evaluation');
  assert.equal(Number(await chart.getAttribute('data-points')), evals.length);
  assert.equal(await chart.locator('canvas').count(), 1, 'uPlot drew the chart');

  // The fault marker, at the fault's round.
  const marker = page.locator(`[data-testid="fault-marker"][data-phase="injected"]`);
  assert.equal(await marker.count(), 1);
  assert.equal(Number(await marker.getAttribute('data-round')), faultRound);
  assert.equal(await marker.getAttribute('data-fault'), 'kill:worker-4@round=20');

  // The modelled clock is said so, the cost names its price source, the log has the fault.
  assert.equal(await page.getByTestId('clock').textContent(), 'modelled (virtual clock)');
  const prices = run.events.filter((e) => e.kind === 'cost').pop()!.prices as string;
  assert.equal(await page.getByTestId('cost-prices').textContent(), `prices: ${prices}`);
  assert.ok(await page.locator('[data-testid="log-row"][data-kind="fault"]').count() >= 1);
  assert.equal(await page.getByTestId('malformed-count').getAttribute('data-value'), '0');
  assert.deepEqual(errors, [], 'no script errors on the page');
});
