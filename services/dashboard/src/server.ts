// The dashboard's command line: `node dist/server.js [--replay FILE [--speed X] | --tail FILE]`.
// Configuration comes from the environment (see README.md); the file options from the arguments.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { configFromEnv, startDashboard } from './app.js';
import { loadValidator } from './schema.js';

const USAGE = `usage: node dist/server.js [--replay FILE [--speed X]] [--tail FILE]
  --replay FILE   replay an events file (daprtrain train --events FILE), X times faster than its timeMs
  --speed X       replay speed (default 1; 0 = as fast as possible)
  --tail FILE     follow an events file as it grows, from its beginning (like tail -f)
environment: APP_PORT (5500), DASHBOARD_UI_PORT (8080), DASHBOARD_UI_HOST (127.0.0.1), DASHBOARD_APP_HOST (127.0.0.1),
  PUBSUB_NAME (gradients), DASHBOARD_TOPIC (progress), APP_API_TOKEN, DAPRTRAIN_REQUIRE_APP_TOKEN (true: refuse to start
  without APP_API_TOKEN), DASHBOARD_MAX_BODY_BYTES (65536), DASHBOARD_MAX_JOBS (8), DASHBOARD_FLUSH_MS (150),
  DASHBOARD_MAX_STREAMS (32), DASHBOARD_MAX_STREAM_BUFFER_BYTES (4194304), DASHBOARD_SCHEMA (schema file)`;

function fail(message: string): never {
  console.error(`dashboard: ${message}`);
  console.error(USAGE);
  process.exit(1);
}

async function main(): Promise<void> {
  const here = dirname(fileURLToPath(import.meta.url));
  const args = process.argv.slice(2);
  if (args.includes('--help') || args.includes('-h')) {
    console.log(USAGE); // whatever the environment says
    return;
  }
  let cfg;
  try {
    cfg = configFromEnv(process.env, join(here, 'public'));
  } catch (e) {
    fail((e as Error).message);
  }
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const value = () => {
      const v = args[++i];
      if (v === undefined) fail(`${a} needs a value`);
      return v;
    };
    if (a === '--replay') cfg.replay = value();
    else if (a === '--tail') cfg.tail = value();
    else if (a === '--speed') {
      const v = Number(value());
      if (!Number.isFinite(v) || v < 0 || v > 1e9) fail(`--speed must be a number from 0 to 1e9`);
      cfg.speed = v;
    } else fail(`unknown argument ${a}`);
  }
  if (cfg.replay && cfg.tail) fail('--replay and --tail are exclusive');
  try {
    cfg.validator = loadValidator();
  } catch (e) {
    fail(`cannot load the event schema: ${(e as Error).message}`);
  }
  const d = await startDashboard(cfg).catch((e: unknown) => fail(`cannot start: ${(e as Error).message}`));
  // One JSON line that tests and scripts read to learn the ports (0 in the environment = any free port).
  console.log(JSON.stringify({ dashboard: 'listening', appPort: d.appPort, uiPort: d.uiPort, schema: cfg.validator.file }));
  console.log(`dashboard: page at http://${cfg.uiHost}:${d.uiPort}/  (Dapr app port ${d.appPort})`);
  const stop = () => {
    void d.close().then(() => process.exit(0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

void main();
