// A synthetic run's events, following the schema: for unit tests that must not depend on the CLI, and for
// the bench (a 64-worker, 1,000-round run). Not a model of training: the numbers only look plausible.
import type { ProgressEvent } from './types.js';

export interface SynthOptions {
  job?: string;
  topology?: 'p2p' | 'ps';
  workers: number;
  rounds: number;
  evalEvery?: number;
  /** Kill this worker when this round starts (as kill:worker-N@round=R). */
  kill?: { node: string; round: number };
  roundMs?: number;
  bytesPerWorker?: number;
}

export function synthRun(o: SynthOptions): ProgressEvent[] {
  const job = o.job ?? 'embedded-42';
  const topology = o.topology ?? 'p2p';
  const evalEvery = o.evalEvery ?? 5;
  const roundMs = o.roundMs ?? 12.5;
  const bytes = o.bytesPerWorker ?? 814_160;
  const seq = new Map<string, number>();
  const out: ProgressEvent[] = [];
  const base = (source: string, timeMs: number) => {
    const s = seq.get(source) ?? 0;
    seq.set(source, s + 1);
    return { schema: 1 as const, job, source, seq: s, timeMs: Math.round(timeMs * 1000) / 1000 };
  };
  const workers = Array.from({ length: o.workers }, (_, i) => `worker-${i + 1}`);
  let alive = [...workers];
  let generation = 0;
  let t = 0;
  out.push({ ...base('job', 0), kind: 'job-started', topology, mode: 'embedded', clock: 'virtual', workers: o.workers, rounds: o.rounds, model: 'mlp', aggregator: 'mean', scenario: o.kill ? `kill:${o.kill.node}@round=${o.kill.round}` : 'none' });
  out.push({ ...base('job', 0), kind: 'membership', change: 'view', generation, members: alive, checkpointWriter: alive[0]! });
  for (let r = 1; r <= o.rounds; r++) {
    if (o.kill && r === o.kill.round) {
      const f = `kill:${o.kill.node}@round=${r}`;
      out.push({ ...base('job', t), kind: 'fault', phase: 'injected', fault: f, node: o.kill.node, round: r });
      t += 250;
      alive = alive.filter((w) => w !== o.kill!.node);
      generation++;
      out.push({ ...base('job', t), kind: 'fault', phase: 'detected', fault: f, node: o.kill.node, round: r });
      out.push({ ...base('job', t), kind: 'membership', change: 'lease-expired', node: o.kill.node, generation, members: alive, checkpointWriter: alive[0]! });
      out.push({ ...base('job', t), kind: 'node-state', node: o.kill.node, state: 'dead', round: r, reason: 'lease expired' });
      out.push({ ...base('job', t), kind: 'fault', phase: 'recovered', fault: f, node: o.kill.node, round: r, roundsLost: 1 });
    }
    t += roundMs;
    for (const w of alive) {
      out.push({ ...base(w, t), kind: 'round-completed', round: r, generation, durationMs: roundMs, bytes: bytes * (alive.length - 1) * 2, contributors: alive.length, memberCount: alive.length });
    }
    if (r % evalEvery === 0 || r === o.rounds) {
      const acc = Math.min(0.97, 0.1 + 0.87 * (1 - Math.exp(-r / 15)));
      out.push({ ...base('job', t), kind: 'evaluation', round: r, accuracy: Math.round(acc * 10000) / 10000, loss: Math.round(2.3 * Math.exp(-r / 20) * 10000) / 10000 });
    }
    if (r % 10 === 0) {
      out.push({ ...base('job', t), kind: 'checkpoint', round: r, generation, writer: alive[0]!, bytes: 407_080 });
      out.push({ ...base('job', t), kind: 'cost', round: r, vmUsd: r * 1.2e-6 * alive.length, serverlessUsd: r * 0.8e-6 * alive.length, prices: 'synthetic price table (test fixture), 2026-01-01' });
    }
  }
  const last = [...out].reverse().find((e) => e.kind === 'evaluation');
  const fin: ProgressEvent = { ...base('job', t), kind: 'job-finished', rounds: o.rounds, totalMs: t };
  if (last && last.kind === 'evaluation') {
    fin.accuracy = last.accuracy;
    if (last.loss !== undefined) fin.loss = last.loss;
  }
  out.push(fin);
  return out;
}

export function toJsonLines(events: ProgressEvent[]): string {
  return events.map((e) => JSON.stringify(e)).join('\n') + '\n';
}
