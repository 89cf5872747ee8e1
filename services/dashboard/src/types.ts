// The progress event, version 1, as TypeScript types. The contract itself is the JSON Schema in
// schemas/progress-event.schema.json (validated with ajv in schema.ts); these types only describe what an
// event that passed validation looks like, so that the reducer is type-checked against it.

export type Kind =
  | 'job-started'
  | 'round-completed'
  | 'evaluation'
  | 'membership'
  | 'node-state'
  | 'fault'
  | 'checkpoint'
  | 'cost'
  | 'job-finished';

export type NodeState = 'alive' | 'slow' | 'dead' | 'rejoining';

interface Base {
  schema: 1;
  job: string;
  source: string;
  seq: number;
  timeMs: number;
}

export interface JobStarted extends Base {
  kind: 'job-started';
  topology: 'single' | 'ps' | 'p2p' | 'p2p-scatter';
  mode: 'embedded' | 'dapr';
  clock: 'virtual' | 'wall';
  workers: number;
  rounds: number;
  model: string;
  aggregator?: string;
  compress?: string;
  serverless?: boolean;
  scenario?: string;
}

export interface RoundCompleted extends Base {
  kind: 'round-completed';
  round: number;
  generation: number;
  durationMs: number;
  bytes: number;
  /** Absent where the node does not know it (a worker under a parameter server: the server's event says). */
  contributors?: number;
  memberCount?: number;
}

export interface Evaluation extends Base {
  kind: 'evaluation';
  round: number;
  accuracy: number;
  loss?: number;
}

export interface Membership extends Base {
  kind: 'membership';
  change: 'joined' | 'lease-expired' | 'left' | 'shards-moved' | 'checkpoint-writer' | 'view';
  node?: string;
  generation: number;
  members: string[];
  checkpointWriter?: string;
  shardOwners?: string[];
}

export interface NodeStateEvent extends Base {
  kind: 'node-state';
  node: string;
  state: NodeState;
  round?: number;
  reason?: string;
}

export interface Fault extends Base {
  kind: 'fault';
  phase: 'injected' | 'detected' | 'recovered';
  fault: string;
  node?: string;
  round: number;
  roundsLost?: number;
}

export interface Checkpoint extends Base {
  kind: 'checkpoint';
  round: number;
  generation?: number;
  writer: string;
  bytes?: number;
}

export interface Cost extends Base {
  kind: 'cost';
  round: number;
  vmUsd: number;
  serverlessUsd: number;
  prices: string;
}

export interface JobFinished extends Base {
  kind: 'job-finished';
  rounds: number;
  accuracy?: number;
  loss?: number;
  totalMs?: number;
}

export type ProgressEvent =
  | JobStarted
  | RoundCompleted
  | Evaluation
  | Membership
  | NodeStateEvent
  | Fault
  | Checkpoint
  | Cost
  | JobFinished;
