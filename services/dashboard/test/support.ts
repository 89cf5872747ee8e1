// What the tests, the bench and the screenshot share: the dashboard as a child process (the real
// dist/server.js), Debian's chromium through playwright-core, and a real run of the CLI into an events file.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BrowserContext } from 'playwright-core';

/** services/dashboard, from build/test/support.js or test/support.ts alike. */
export const PKG = (() => {
  let d = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(d, 'package.json'))) d = dirname(d);
  return d;
})();
export const REPO = resolve(PKG, '..', '..');
export const SERVER_JS = join(PKG, 'dist', 'server.js');
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

export const CLI_DLL = process.env.DAPRTRAIN_CLI_DLL ||
  join(REPO, 'services', 'DaprTrain.Cli', 'bin', 'Release', 'net10.0', 'daprtrain.dll');

/** The run the browser test and the screenshot replay: p2p, 4 workers, worker-4 killed at round 20. */
export const REAL_RUN_ARGS = ['train', '-t', 'p2p', '-n', '4', '--rounds', '60', '--eval-every', '5', '--train-samples', '4000',
  '--fault', 'kill:worker-4@round=20'];

export interface RealRun {
  file: string;
  lines: string[];
  events: Record<string, unknown>[];
  seconds: number;
}

/**
 * Runs `daprtrain train ... --events FILE` into a fresh temp dir. Throws, saying how to build it, if the CLI
 * dll is missing: the tests that need a real run must fail then, not pass on a fixture.
 */
export function realRun(extraArgs: string[] = []): RealRun {
  if (!existsSync(CLI_DLL)) {
    throw new Error(`the DaprTrain CLI is not built: ${CLI_DLL} is missing. Build it first (from the repository root: ` +
      `dotnet build DaprTrain.sln -c Release, or dotnet build services/DaprTrain.Cli -c Release), or set DAPRTRAIN_CLI_DLL.`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'dashboard-run-'));
  const file = join(dir, 'run.jsonl');
  const started = Date.now();
  // Real digits where CI has them (DAPRTRAIN_TEST_MNIST, as for the C# tests): a curve that climbs instead of
  // the synthetic data's 100% from round 5. Without it the CLI falls back to synthetic data and says so.
  const data = process.env.DAPRTRAIN_TEST_MNIST && existsSync(process.env.DAPRTRAIN_TEST_MNIST) ? ['--data-dir', process.env.DAPRTRAIN_TEST_MNIST] : [];
  const r = spawnSync('dotnet', [CLI_DLL, ...REAL_RUN_ARGS, ...data, ...extraArgs, '--events', file], {
    encoding: 'utf8',
    timeout: 300_000,
    env: { ...process.env, DOTNET_CLI_TELEMETRY_OPTOUT: '1', DOTNET_NOLOGO: '1' },
  });
  if (r.status !== 0 || !existsSync(file)) {
    throw new Error(`daprtrain train failed (exit ${r.status}${r.error ? ', ' + r.error.message : ''}):\n${r.stdout}\n${r.stderr}`);
  }
  const lines = readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() !== '');
  return { file, lines, events: lines.map((l) => JSON.parse(l) as Record<string, unknown>), seconds: (Date.now() - started) / 1000 };
}

export interface Running {
  proc: ChildProcess;
  appPort: number;
  uiPort: number;
  output: () => string;
  stop: () => Promise<void>;
}

/** Starts dist/server.js on free ports and waits for its "listening" line. */
export function startServer(args: string[] = [], env: Record<string, string> = {}): Promise<Running> {
  if (!existsSync(SERVER_JS)) throw new Error(`${SERVER_JS} is missing: run npm run build`);
  const proc = spawn(process.execPath, [SERVER_JS, ...args], {
    // DAPRTRAIN_REQUIRE_APP_TOKEN off unless a test sets it: a shell that exported it must not fail every test.
    env: { ...process.env, APP_PORT: '0', DASHBOARD_UI_PORT: '0', DAPRTRAIN_REQUIRE_APP_TOKEN: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => reject(new Error(`dashboard did not start in 10 s:\n${out}`)), 10_000);
    const onData = (b: Buffer) => {
      out += b.toString();
      const line = out.split('\n').find((l) => l.startsWith('{"dashboard":"listening"'));
      if (line) {
        clearTimeout(timer);
        const info = JSON.parse(line) as { appPort: number; uiPort: number };
        resolvePromise({
          proc,
          appPort: info.appPort,
          uiPort: info.uiPort,
          output: () => out,
          stop: () => new Promise<void>((r) => {
            if (proc.exitCode !== null) return r();
            proc.once('exit', () => r());
            proc.kill('SIGTERM');
          }),
        });
      }
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', onData);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`dashboard exited with ${code}:\n${out}`));
    });
  });
}

/** Why the browser cannot be used here, or undefined if it can. */
export function chromiumMissing(): string | undefined {
  return existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is missing (apt-get install chromium; .ci/run installs it)`;
}

/** Debian's chromium, headless, with the flags this closed network needs and a fresh profile (playwright
 * passes the profile as --user-data-dir; it refuses that flag in args). Close the context to end it. */
export async function launchChromium(viewport = { width: 1400, height: 1000 }): Promise<BrowserContext> {
  const { chromium } = await import('playwright-core');
  const profile = mkdtempSync(join(tmpdir(), 'dashboard-chromium-'));
  return chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
}

export async function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: unknown }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await res.text();
  let json: unknown = text;
  try {
    json = JSON.parse(text);
  } catch { /* not JSON: keep the text */ }
  return { status: res.status, json };
}
