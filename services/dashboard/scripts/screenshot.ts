// `npm run screenshot -- OUT.png [EVENTS.jsonl]`: the dashboard replaying a run, as a person sees it once the
// job has finished. Without an events file it makes one with the CLI: p2p, 4 workers, worker-4 killed at
// round 20 (MNIST from DAPRTRAIN_TEST_MNIST or DAPRTRAIN_DATA_DIR when set, else the CLI's own choice).
import { resolve } from 'node:path';
import { chromiumMissing, launchChromium, realRun, startServer } from '../test/support.js';

const out = process.argv[2];
if (!out) {
  console.error('usage: npm run screenshot -- OUT.png [EVENTS.jsonl]');
  process.exit(1);
}
const missing = chromiumMissing();
if (missing) {
  console.error(`cannot take a screenshot: ${missing}`);
  process.exit(1);
}
const dataDir = process.env.DAPRTRAIN_TEST_MNIST ?? process.env.DAPRTRAIN_DATA_DIR;
const file = process.argv[3] ?? realRun(dataDir && !process.env.DAPRTRAIN_TEST_MNIST ? ['--data-dir', dataDir] : []).file;
const srv = await startServer(['--replay', file, '--speed', '0']);
const ctx = await launchChromium({ width: 1400, height: 1000 });
try {
  const page = await ctx.newPage();
  await page.goto(`http://127.0.0.1:${srv.uiPort}/`);
  await page.getByTestId('final-accuracy').waitFor({ timeout: 60_000 });
  await page.waitForTimeout(500); // the charts' last frame
  await page.screenshot({ path: resolve(out), fullPage: true });
  console.log(`wrote ${resolve(out)} (events from ${file})`);
} finally {
  await ctx.close();
  await srv.stop();
}
