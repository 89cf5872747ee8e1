// Starting and stopping the dashboard: the two HTTP servers around one Hub, and the file source if any.
// server.ts is the command line around this; tests and the bench call it directly.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { daprHandler, sendJson } from './dapr.js';
import { Hub } from './hub.js';
import type { Limits } from './reducer.js';
import { loadValidator, type Validator } from './schema.js';
import { replayFile, tailFile } from './files.js';
import { DEFAULT_MAX_STREAM_BUFFER_BYTES, uiHandler } from './ui.js';

export interface DashboardConfig {
  appHost: string;
  appPort: number;
  uiHost: string;
  uiPort: number;
  pubsubName: string;
  topic: string;
  appApiToken?: string;
  maxBodyBytes: number;
  publicDir: string;
  replay?: string;
  speed: number;
  tail?: string;
  flushMs: number;
  maxStreams: number;
  maxStreamBufferBytes: number;
  limits?: Partial<Limits>;
  validator?: Validator;
  log?: (line: string) => void;
}

export interface Dashboard {
  hub: Hub;
  appPort: number;
  uiPort: number;
  /** Resolves when a replay has read its whole file (at once without one). */
  replayDone: Promise<number>;
  close(): Promise<void>;
}

/** Reads the configuration from the environment (the names the README documents). */
export function configFromEnv(env: NodeJS.ProcessEnv, publicDir: string): DashboardConfig {
  const int = (name: string, def: number, min: number, max: number): number => {
    const raw = env[name];
    if (raw === undefined || raw === '') return def;
    const v = Number(raw);
    if (!Number.isInteger(v) || v < min || v > max) throw new Error(`${name}=${raw}: must be an integer from ${min} to ${max}`);
    return v;
  };
  const cfg: DashboardConfig = {
    appHost: env.DASHBOARD_APP_HOST || '127.0.0.1',
    appPort: int('APP_PORT', 5500, 0, 65535),
    uiHost: env.DASHBOARD_UI_HOST || '127.0.0.1',
    uiPort: int('DASHBOARD_UI_PORT', 8080, 0, 65535),
    // The component name the services publish on (DaprComponents.PubSub, components/*/pubsub.yaml).
    pubsubName: env.PUBSUB_NAME || 'gradients',
    topic: env.DASHBOARD_TOPIC || 'progress',
    maxBodyBytes: int('DASHBOARD_MAX_BODY_BYTES', 64 * 1024, 1024, 16 * 1024 * 1024),
    publicDir,
    speed: 1,
    flushMs: int('DASHBOARD_FLUSH_MS', 150, 10, 10_000),
    maxStreams: int('DASHBOARD_MAX_STREAMS', 32, 1, 10_000),
    maxStreamBufferBytes: int('DASHBOARD_MAX_STREAM_BUFFER_BYTES', DEFAULT_MAX_STREAM_BUFFER_BYTES, 64 * 1024, 1024 * 1024 * 1024),
    limits: { maxJobs: int('DASHBOARD_MAX_JOBS', 8, 1, 1000) },
  };
  if (env.APP_API_TOKEN) cfg.appApiToken = env.APP_API_TOKEN;
  // Like the C# apps (DaprHosting.MapDaprTrainApp): the run file and the chart ask for the token, and without
  // it any local process (or pod) could post forged events to the Dapr side.
  else if ((env.DAPRTRAIN_REQUIRE_APP_TOKEN ?? '').toLowerCase() === 'true') {
    throw new Error('APP_API_TOKEN is not set, and DAPRTRAIN_REQUIRE_APP_TOKEN asks for it: start the apps with ./run-local.sh ' +
      '(it makes one and gives it to daprd and the apps), or export APP_API_TOKEN before `dapr run -f dapr.yaml`.');
  }
  return cfg;
}

function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

export async function startDashboard(cfg: DashboardConfig): Promise<Dashboard> {
  const log = cfg.log ?? ((l: string) => console.log(l));
  const validator = cfg.validator ?? loadValidator();
  const hub = new Hub(validator, { flushMs: cfg.flushMs, ...(cfg.limits ? { limits: cfg.limits } : {}) });
  const dapr = daprHandler(hub, {
    pubsubName: cfg.pubsubName,
    topic: cfg.topic,
    maxBodyBytes: cfg.maxBodyBytes,
    ...(cfg.appApiToken ? { appApiToken: cfg.appApiToken } : {}),
  });
  const daprServer = createServer((req, res) => {
    dapr(req, res).catch((e: unknown) => {
      // A bug here must not take the process down with it: answer 500 and go on.
      log(`error on ${req.method} ${req.url}: ${(e as Error).stack ?? String(e)}`);
      if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
      else res.destroy();
    });
  });
  const uiServer = createServer(uiHandler(hub, { publicDir: cfg.publicDir, maxStreams: cfg.maxStreams, maxStreamBufferBytes: cfg.maxStreamBufferBytes, heartbeatMs: 15_000 }));
  // Slow or stuck clients must not hold sockets forever (the SSE stream has its own keep-alive).
  daprServer.headersTimeout = 10_000;
  daprServer.requestTimeout = 30_000;
  uiServer.headersTimeout = 10_000;
  uiServer.requestTimeout = 0; // the event stream is a long request
  const appPort = await listen(daprServer, cfg.appPort, cfg.appHost);
  const uiPort = await listen(uiServer, cfg.uiPort, cfg.uiHost);

  const abort = new AbortController();
  let replayDone: Promise<number> = Promise.resolve(0);
  if (cfg.replay) {
    const file = cfg.replay;
    replayDone = replayFile(hub, file, cfg.speed, abort.signal).then(
      (n) => {
        hub.flush();
        log(`replayed ${n} lines of ${file}`);
        return n;
      },
      (e: unknown) => {
        log(`cannot replay ${file}: ${(e as Error).message}`);
        return 0;
      },
    );
  }
  const tail = cfg.tail ? tailFile(hub, cfg.tail) : undefined;

  return {
    hub,
    appPort,
    uiPort,
    replayDone,
    async close() {
      abort.abort();
      tail?.stop();
      hub.close();
      daprServer.closeAllConnections();
      uiServer.closeAllConnections();
      await Promise.all([
        new Promise((r) => daprServer.close(r)),
        new Promise((r) => uiServer.close(r)),
        tail?.done,
      ]);
    },
  };
}
