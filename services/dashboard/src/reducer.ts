// The state of every job, built from validated progress events. Shared by the server and the page: the
// server reduces what arrives, sends the page a snapshot of this state and then the events it accepted, and
// the page applies the same reducer, so both hold the same picture without the server re-sending the
// whole state on every update.
//
// No I/O and no clock: the result depends only on the events and their order, which is what the unit tests
// rely on. The state is mutated in place (a dashboard ingests tens of thousands of events a second; copying
// would cost more than the rest together) and is plain JSON, so a snapshot is JSON.stringify(state).
//
// Everything kept is bounded, whatever arrives (see Limits): jobs, nodes per job, sources per job,
// points per series, rounds of the bytes table, faults, the event log and the malformed reasons.
import type { NodeState, ProgressEvent } from './types.js';

export interface Limits {
  /** Jobs kept; the one with the oldest activity is evicted when a new job arrives past this. */
  maxJobs: number;
  /** Nodes per job (the schema's own limit on a view is 1024). */
  maxNodes: number;
  /** Sources per job whose seq is tracked (nodes plus the job driver, the coordinator...). */
  maxSources: number;
  /** Points per series (accuracy/loss); past it the older half is thinned to every other point. */
  maxPoints: number;
  /** Rounds kept in the bytes-per-worker table (the most recent ones). */
  maxBytesRounds: number;
  /** Fault phases kept per job (markers). */
  maxFaults: number;
  /** Event log entries per job (a ring: the newest are kept). */
  maxLog: number;
  /** Malformed-event reasons kept (a ring); the count goes on past it. */
  maxMalformedReasons: number;
  /** Missing seq numbers remembered per source, so a late event fills its gap instead of counting as a duplicate. */
  maxMissingPerSource: number;
}

export const DEFAULT_LIMITS: Limits = {
  maxJobs: 8,
  maxNodes: 1024,
  maxSources: 1100,
  maxPoints: 2000,
  maxBytesRounds: 200,
  maxFaults: 200,
  maxLog: 500,
  maxMalformedReasons: 50,
  maxMissingPerSource: 256,
};

/** Characters of an event log line (a cost event's price source alone may be 300). */
export const MAX_LOG_TEXT = 400;

export interface NodeInfo {
  id: string;
  state: NodeState;
  /** The round the node's state last changed at, where known. */
  round?: number;
  reason?: string;
  /** timeMs of that change, on the job's clock. */
  sinceMs: number;
  /** The last round this node completed. */
  lastRound?: number;
  /** The round it was last found dead at: a round-completed after it means it is back. */
  deadRound?: number;
}

export interface EvalPoint {
  round: number;
  timeMs: number;
  accuracy: number;
  loss?: number;
}

export interface FaultMark {
  phase: 'injected' | 'detected' | 'recovered';
  fault: string;
  node?: string;
  round: number;
  timeMs: number;
  roundsLost?: number;
}

export interface BytesRow {
  round: number;
  /** Bytes each node sent and received in the round. */
  byNode: Record<string, number>;
}

export interface LogEntry {
  /** The job's event number, in arrival order (1-based). */
  n: number;
  timeMs: number;
  source: string;
  seq: number;
  kind: string;
  text: string;
}

export interface SourceSeq {
  maxSeq: number;
  /** Seq numbers skipped and not (yet) seen, oldest first, at most maxMissingPerSource. */
  missing: number[];
  /** Gaps ever opened (seq numbers skipped), including ones later filled. */
  gaps: number;
  /** Jumps forward past more than maxMissingPerSource numbers: the source restarted (a new process). */
  restarts: number;
}

export interface JobState {
  job: string;
  topology?: string;
  mode?: string;
  clock?: 'virtual' | 'wall';
  workers?: number;
  rounds?: number;
  model?: string;
  aggregator?: string;
  compress?: string;
  serverless?: boolean;
  scenario?: string;
  /** timeMs of job-started (0 on the virtual clock). */
  startMs?: number;
  lastTimeMs: number;
  /** Store tick of the last event: the least recently active job is evicted first. */
  lastTick: number;
  nodes: Record<string, NodeInfo>;
  /** Node ids in the order first seen (stable layout). */
  nodeOrder: string[];
  nodesRefused: number;
  members: string[];
  generation: number;
  /** Generation reported by the parameter server itself (ps topology). */
  serverGeneration?: number;
  checkpointWriter?: string;
  shardOwners: string[];
  lastRound: number;
  evals: EvalPoint[];
  faults: FaultMark[];
  bytes: BytesRow[];
  lastCheckpoint?: { round: number; generation?: number; writer: string; bytes?: number; timeMs: number };
  checkpoints: number;
  cost?: { round: number; vmUsd: number; serverlessUsd: number; prices: string; timeMs: number };
  finished?: { rounds: number; accuracy?: number; loss?: number; totalMs?: number; timeMs: number };
  log: LogEntry[];
  counters: {
    events: number;
    duplicates: number;
    /** Seq numbers currently missing, summed over sources. */
    gaps: number;
    /** Sources that jumped forward past the remembered window (a restarted process), summed over sources. */
    restarts: number;
    sourcesRefused: number;
  };
  sources: Record<string, SourceSeq>;
  /** Keys of `sources` (counted, not Object.keys'd per event: that made a hostile stream quadratic). */
  sourceCount: number;
}

export interface MalformedReason {
  /** The store's malformed count when this one arrived (1-based). */
  n: number;
  reason: string;
  /** Where it came from: "dapr", "file line 12"... */
  origin: string;
}

export interface StoreState {
  limits: Limits;
  tick: number;
  jobs: Record<string, JobState>;
  jobsEvicted: number;
  malformed: { count: number; reasons: MalformedReason[] };
}

export type Outcome = 'applied' | 'duplicate' | 'refused';

export function createStore(limits: Partial<Limits> = {}): StoreState {
  return { limits: { ...DEFAULT_LIMITS, ...limits }, tick: 0, jobs: {}, jobsEvicted: 0, malformed: { count: 0, reasons: [] } };
}

export function recordMalformed(store: StoreState, reason: string, origin: string): void {
  store.malformed.count++;
  pushRing(store.malformed.reasons, { n: store.malformed.count, reason, origin }, store.limits.maxMalformedReasons);
}

function newJob(job: string, tick: number): JobState {
  return {
    job,
    lastTimeMs: 0,
    lastTick: tick,
    nodes: {},
    nodeOrder: [],
    nodesRefused: 0,
    members: [],
    generation: 0,
    shardOwners: [],
    lastRound: 0,
    evals: [],
    faults: [],
    bytes: [],
    checkpoints: 0,
    log: [],
    counters: { events: 0, duplicates: 0, gaps: 0, restarts: 0, sourcesRefused: 0 },
    sources: {},
    sourceCount: 0,
  };
}

/**
 * A record's own entry, never its prototype's: ids come from the wire, and the schema's id pattern admits
 * "constructor", "toString" or "valueOf", which a plain object (and every object JSON.parse makes, as the page's
 * snapshot is) answers from Object.prototype.
 */
export function own<T>(record: Record<string, T>, key: string): T | undefined {
  return Object.prototype.hasOwnProperty.call(record, key) ? record[key] : undefined;
}

function jobFor(store: StoreState, id: string): JobState {
  let job = own(store.jobs, id);
  if (job) return job;
  const ids = Object.keys(store.jobs);
  if (ids.length >= store.limits.maxJobs) {
    // Evict the least recently active job: a dashboard left running for days keeps showing the recent ones.
    let oldest = ids[0]!;
    for (const j of ids) if (store.jobs[j]!.lastTick < store.jobs[oldest]!.lastTick) oldest = j;
    delete store.jobs[oldest];
    store.jobsEvicted++;
  }
  job = newJob(id, store.tick);
  store.jobs[id] = job;
  return job;
}

/**
 * Seq bookkeeping: false if (source, seq) was seen before (a redelivery or a replayed file).
 *
 * A source's numbers need not start at 0: the services and the embedded mode start each source at the
 * process's start time in microseconds since the Unix epoch (about 1.8e15), so the first event seen from a
 * source starts its bookkeeping there (no gap before it). A jump forward past more numbers than are remembered
 * (limits.maxMissingPerSource) is a restart of that source (a new process continuing above its predecessor):
 * counted in `restarts`, not as gaps, and none of the skipped numbers is remembered. A smaller jump is a gap: the
 * skipped numbers are remembered, so a late event fills its gap. What is below the remembered window (an event
 * of before a restart arriving after it, or one older than the remembered gaps) is taken for a duplicate: the
 * price of keeping this bounded.
 */
function acceptSeq(job: JobState, source: string, seq: number, limits: Limits): boolean | 'refused' {
  let s = own(job.sources, source);
  if (!s) {
    if (job.sourceCount >= limits.maxSources) return 'refused';
    s = { maxSeq: seq - 1, missing: [], gaps: 0, restarts: 0 };
    job.sources[source] = s;
    job.sourceCount++;
  }
  if (seq > s.maxSeq) {
    const skipped = seq - s.maxSeq - 1;
    if (skipped > limits.maxMissingPerSource) {
      s.restarts++;
      job.counters.restarts++;
    } else if (skipped > 0) {
      s.gaps += skipped;
      job.counters.gaps += skipped;
      for (let q = s.maxSeq + 1; q < seq; q++) s.missing.push(q);
      // Remember the most recent skipped numbers only; older ones, if they come late, are then taken for
      // duplicates.
      if (s.missing.length > limits.maxMissingPerSource) {
        const dropped = s.missing.length - limits.maxMissingPerSource;
        s.missing.splice(0, dropped);
      }
    }
    s.maxSeq = seq;
    return true;
  }
  const i = s.missing.indexOf(seq);
  if (i >= 0) {
    // A late event fills its gap.
    s.missing.splice(i, 1);
    job.counters.gaps--;
    return true;
  }
  return false;
}

/** Whether acceptSeq would take (source, seq) for a duplicate (without changing anything). */
function seqSeen(job: JobState, source: string, seq: number): boolean {
  const s = own(job.sources, source);
  return s !== undefined && seq <= s.maxSeq && !s.missing.includes(seq);
}

function node(job: JobState, id: string, limits: Limits, timeMs: number): NodeInfo | undefined {
  let n = own(job.nodes, id);
  if (n) return n;
  if (job.nodeOrder.length >= limits.maxNodes) {
    job.nodesRefused++;
    return undefined;
  }
  n = { id, state: 'alive', sinceMs: timeMs };
  job.nodes[id] = n;
  job.nodeOrder.push(id);
  return n;
}

function setState(n: NodeInfo | undefined, state: NodeState, timeMs: number, round?: number, reason?: string): void {
  if (!n) return;
  if (n.state !== state) n.sinceMs = timeMs;
  n.state = state;
  if (round !== undefined) n.round = round;
  if (reason !== undefined) n.reason = reason;
  else if (state === 'alive') delete n.reason;
  if (state === 'dead') n.deadRound = round ?? n.lastRound ?? 0;
}

/** Sources that are the job itself rather than a node of the topology. */
function isNodeSource(source: string): boolean {
  return source !== 'job' && source !== 'coordinator' && source !== 'dashboard';
}

/** Applies one validated event. Returns whether it changed the state. */
export function applyEvent(store: StoreState, ev: ProgressEvent): Outcome {
  const limits = store.limits;
  let job = jobFor(store, ev.job);
  // The embedded driver announces its job once per run: a new announcement (not a replay of one seen) for a
  // job that already has events is a new run into the same job id (`--tail` of a file a new
  // `daprtrain train --events` run rewrote). Its picture starts afresh. A Dapr job-started is not: worker-1
  // announces the job again after it restarts, and the job goes on.
  let newRun = false;
  if (ev.kind === 'job-started' && ev.mode === 'embedded' && job.counters.events > 0 && !seqSeen(job, ev.source, ev.seq)) {
    job = newJob(ev.job, store.tick);
    store.jobs[ev.job] = job;
    newRun = true;
  }
  const seqOk = acceptSeq(job, ev.source, ev.seq, limits);
  if (seqOk === 'refused') {
    job.counters.sourcesRefused++;
    return 'refused';
  }
  if (!seqOk) {
    job.counters.duplicates++;
    return 'duplicate';
  }
  store.tick++;
  job.lastTick = store.tick;
  job.counters.events++;
  if (ev.timeMs > job.lastTimeMs) job.lastTimeMs = ev.timeMs;
  const t = ev.timeMs;

  switch (ev.kind) {
    case 'job-started': {
      job.topology = ev.topology;
      job.mode = ev.mode;
      job.clock = ev.clock;
      job.workers = ev.workers;
      job.rounds = ev.rounds;
      job.model = ev.model;
      job.aggregator = ev.aggregator;
      job.compress = ev.compress;
      job.serverless = ev.serverless;
      job.scenario = ev.scenario;
      // A restarted worker-1 announces the job again (Dapr mode): the time origin stays the first announcement's.
      if (job.startMs === undefined || t < job.startMs) job.startMs = t;
      // The workers are known from the start, so the topology shows them before their first round.
      for (let i = 1; i <= Math.min(ev.workers, limits.maxNodes); i++) node(job, `worker-${i}`, limits, t);
      if (ev.topology === 'ps') node(job, 'ps', limits, t);
      break;
    }
    case 'round-completed': {
      if (ev.round > job.lastRound) job.lastRound = ev.round;
      if (ev.generation > job.generation) job.generation = ev.generation;
      if (ev.source === 'ps') job.serverGeneration = ev.generation;
      if (isNodeSource(ev.source)) {
        const n = node(job, ev.source, limits, t);
        if (n) {
          n.lastRound = ev.round;
          // A rejoining node is back once it completes a round; a dead one that completes a later round
          // evidently came back without us hearing of its join.
          if (n.state === 'rejoining' || (n.state === 'dead' && ev.round > (n.deadRound ?? 0))) {
            setState(n, 'alive', t, ev.round);
          }
          addBytes(job, ev.round, ev.source, ev.bytes, limits);
        }
      }
      break;
    }
    case 'evaluation': {
      if (ev.round > job.lastRound) job.lastRound = ev.round;
      const p: EvalPoint = { round: ev.round, timeMs: t, accuracy: ev.accuracy };
      if (ev.loss !== undefined) p.loss = ev.loss;
      addPoint(job.evals, p, limits.maxPoints);
      break;
    }
    case 'membership': {
      job.generation = Math.max(job.generation, ev.generation);
      job.members = ev.members.slice(0, limits.maxNodes);
      // Members are shown even before their first round. Being in a view does not bring a dead node back:
      // a view can still list a killed node until its lease expires; only its join does.
      for (const m of job.members) node(job, m, limits, t);
      if (ev.checkpointWriter !== undefined) job.checkpointWriter = ev.checkpointWriter;
      if (ev.shardOwners !== undefined) job.shardOwners = ev.shardOwners.slice(0, limits.maxNodes);
      if (ev.node !== undefined) {
        const n = node(job, ev.node, limits, t);
        // Already dead (killed, then its lease expired): keep the round and reason it died with.
        if (ev.change === 'lease-expired' && n?.state !== 'dead') setState(n, 'dead', t, n?.lastRound, 'lease expired');
        else if (ev.change === 'left' && n?.state !== 'dead') setState(n, 'dead', t, n?.lastRound, 'left');
        else if (ev.change === 'joined') {
          if (n && n.state === 'dead') setState(n, 'rejoining', t, undefined, 'joined after being dead');
          else if (n && n.state !== 'rejoining') setState(n, 'alive', t);
        }
      }
      break;
    }
    case 'node-state': {
      setState(node(job, ev.node, limits, t), ev.state, t, ev.round, ev.reason);
      break;
    }
    case 'fault': {
      const f: FaultMark = { phase: ev.phase, fault: ev.fault, round: ev.round, timeMs: t };
      if (ev.node !== undefined) f.node = ev.node;
      if (ev.roundsLost !== undefined) f.roundsLost = ev.roundsLost;
      pushRing(job.faults, f, limits.maxFaults);
      const target = ev.node ?? faultNode(ev.fault);
      if (target !== undefined) {
        const n = node(job, target, limits, t);
        const what = ev.fault.split(':', 1)[0];
        // What an injected fault does to its node; detected/recovered change nothing more (the node-state
        // and membership events that go with them say where it ends up).
        if (ev.phase === 'injected' || (ev.phase === 'detected' && n?.state !== 'dead')) {
          if (what === 'kill') setState(n, 'dead', t, ev.round, ev.fault);
          else if (what === 'restart') setState(n, 'rejoining', t, ev.round, ev.fault);
          else if (what === 'slow' && ev.phase === 'injected') setState(n, 'slow', t, ev.round, ev.fault);
        }
      }
      break;
    }
    case 'checkpoint': {
      job.checkpoints++;
      const c: NonNullable<JobState['lastCheckpoint']> = { round: ev.round, writer: ev.writer, timeMs: t };
      if (ev.generation !== undefined) c.generation = ev.generation;
      if (ev.bytes !== undefined) c.bytes = ev.bytes;
      job.lastCheckpoint = c;
      job.checkpointWriter = ev.writer;
      break;
    }
    case 'cost': {
      job.cost = { round: ev.round, vmUsd: ev.vmUsd, serverlessUsd: ev.serverlessUsd, prices: ev.prices, timeMs: t };
      break;
    }
    case 'job-finished': {
      const f: NonNullable<JobState['finished']> = { rounds: ev.rounds, timeMs: t };
      if (ev.accuracy !== undefined) f.accuracy = ev.accuracy;
      if (ev.loss !== undefined) f.loss = ev.loss;
      if (ev.totalMs !== undefined) f.totalMs = ev.totalMs;
      job.finished = f;
      if (ev.rounds > job.lastRound) job.lastRound = ev.rounds;
      break;
    }
  }
  const text = (newRun ? "a new run of this job (the previous run's state was cleared): " : '') + describeEvent(ev);
  pushRing(job.log, { n: job.counters.events, timeMs: t, source: ev.source, seq: ev.seq, kind: ev.kind, text: text.slice(0, MAX_LOG_TEXT) }, limits.maxLog);
  return 'applied';
}

/** The node a fault plan item is about: kill:worker-4@round=20 -> worker-4, slow:worker-1=400ms -> worker-1. */
export function faultNode(fault: string): string | undefined {
  const m = /^(?:kill|restart|slow):([A-Za-z0-9][A-Za-z0-9._-]*?)(?:[=@]|$)/.exec(fault);
  return m?.[1];
}

function addBytes(job: JobState, round: number, nodeId: string, bytes: number, limits: Limits): void {
  const rows = job.bytes;
  // Rounds arrive nearly in order: look from the end.
  let i = rows.length - 1;
  while (i >= 0 && rows[i]!.round > round) i--;
  if (i >= 0 && rows[i]!.round === round) {
    rows[i]!.byNode[nodeId] = bytes;
    return;
  }
  if (rows.length >= limits.maxBytesRounds && i < 0) return; // older than everything kept
  rows.splice(i + 1, 0, { round, byNode: { [nodeId]: bytes } });
  if (rows.length > limits.maxBytesRounds) rows.shift();
}

/** Appends a point; past `max`, thins the older half to every other point, keeping the newest ones whole
 * (the last point is what the page shows as "now", and the final accuracy must stay exact). */
export function addPoint(points: EvalPoint[], p: EvalPoint, max: number): void {
  // Keep the series ordered by round (a late evaluation goes where it belongs).
  let i = points.length;
  while (i > 0 && points[i - 1]!.round > p.round) i--;
  if (i > 0 && points[i - 1]!.round === p.round) points[i - 1] = p;
  else points.splice(i, 0, p);
  if (points.length > max) {
    const half = Math.floor(points.length / 2);
    const kept: EvalPoint[] = [];
    for (let k = 0; k < half; k += 2) kept.push(points[k]!);
    points.splice(0, half, ...kept);
  }
}

function pushRing<T>(ring: T[], item: T, max: number): void {
  ring.push(item);
  while (ring.length > max) ring.shift();
}

/** The event log's line for an event: what a person reads. */
export function describeEvent(ev: ProgressEvent): string {
  switch (ev.kind) {
    case 'job-started':
      return `job started: ${ev.topology}, ${ev.workers} workers, ${ev.rounds} rounds, ${ev.model}, ${ev.mode} (${ev.clock} clock)` +
        (ev.scenario ? `, scenario ${ev.scenario}` : '');
    case 'round-completed':
      return `round ${ev.round} done: ${ev.durationMs.toFixed(1)} ms, ${ev.bytes} bytes, ${ev.contributors === undefined ? '' : `${ev.contributors} contributors, `}generation ${ev.generation}`;
    case 'evaluation':
      return `round ${ev.round}: accuracy ${(ev.accuracy * 100).toFixed(2)}%` + (ev.loss !== undefined ? `, loss ${ev.loss.toFixed(4)}` : '');
    case 'membership':
      // A view can list 1024 nodes: the log line names a few (the log is bounded in lines and in line length).
      return `membership ${ev.change}${ev.node ? ' ' + ev.node : ''}: generation ${ev.generation}, ${ev.members.length} members` +
        (ev.members.length <= 8 ? ` (${ev.members.join(' ')})` : ` (${ev.members.slice(0, 4).join(' ')} …)`) +
        (ev.checkpointWriter ? `, checkpoint writer ${ev.checkpointWriter}` : '');
    case 'node-state':
      return `${ev.node} is ${ev.state}${ev.round !== undefined ? ' at round ' + ev.round : ''}${ev.reason ? ' (' + ev.reason + ')' : ''}`;
    case 'fault':
      return `fault ${ev.phase}: ${ev.fault} at round ${ev.round}` + (ev.roundsLost !== undefined ? `, ${ev.roundsLost} rounds lost` : '');
    case 'checkpoint':
      return `checkpoint at round ${ev.round} by ${ev.writer}` + (ev.bytes !== undefined ? ` (${ev.bytes} bytes)` : '');
    case 'cost':
      return `cost at round ${ev.round}: VM $${ev.vmUsd.toFixed(6)}, serverless $${ev.serverlessUsd.toFixed(6)}, modelled (prices: ${ev.prices})`;
    case 'job-finished':
      return `job finished after ${ev.rounds} rounds` + (ev.accuracy !== undefined ? `: accuracy ${(ev.accuracy * 100).toFixed(2)}%` : '');
  }
}

/** Sizes of everything bounded, for tests and the bench. */
export function sizes(store: StoreState): Record<string, number> {
  let nodes = 0, points = 0, bytesRows = 0, bytesCells = 0, faults = 0, log = 0, sources = 0, missing = 0;
  for (const j of Object.values(store.jobs)) {
    nodes = Math.max(nodes, j.nodeOrder.length);
    points = Math.max(points, j.evals.length);
    bytesRows = Math.max(bytesRows, j.bytes.length);
    for (const r of j.bytes) bytesCells = Math.max(bytesCells, Object.keys(r.byNode).length);
    faults = Math.max(faults, j.faults.length);
    log = Math.max(log, j.log.length);
    sources = Math.max(sources, Object.keys(j.sources).length);
    for (const s of Object.values(j.sources)) missing = Math.max(missing, s.missing.length);
  }
  return { jobs: Object.keys(store.jobs).length, nodes, points, bytesRows, bytesCells, faults, log, sources, missing, malformedReasons: store.malformed.reasons.length };
}
