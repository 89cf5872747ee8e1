// Where every event ends up, whichever way it came (Dapr, a replayed or tailed file): validated, reduced
// into the store, and queued for the browsers. Browsers get a snapshot when they connect, then the accepted
// events in batches at most every `flushMs`, which they reduce themselves with the same reducer.
import { applyEvent, createStore, recordMalformed, type Limits, type StoreState } from './reducer.js';
import { truncate, type Validator } from './schema.js';
import type { ProgressEvent } from './types.js';

export interface Batch {
  events: ProgressEvent[];
  malformed: { reason: string; origin: string }[];
}

export type Listener = (kind: 'snapshot' | 'batch', data: string) => void;

export interface HubOptions {
  limits?: Partial<Limits>;
  /** How often queued updates go to browsers (ms). Batching keeps a 10k events/s stream from becoming
   * 10k browser messages a second. */
  flushMs?: number;
  /** Past this many queued events in one flush period, browsers get a fresh snapshot instead: the queue
   * stays bounded whatever arrives. */
  maxQueued?: number;
}

export class Hub {
  readonly store: StoreState;
  private queue: Batch = { events: [], malformed: [] };
  private overflow = false;
  private timer: NodeJS.Timeout | undefined;
  private lastFlush = 0;
  private readonly listeners = new Set<Listener>();
  private readonly flushMs: number;
  private readonly maxQueued: number;

  constructor(private readonly validator: Validator, opts: HubOptions = {}) {
    this.store = createStore(opts.limits);
    this.flushMs = opts.flushMs ?? 150;
    this.maxQueued = opts.maxQueued ?? 5000;
  }

  /** Ingests a parsed JSON value. Returns null if it was applied (or a harmless duplicate), else the reason
   * it was refused, which is also counted as malformed. */
  ingest(value: unknown, origin: string): string | null {
    const v = this.validator.validate(value);
    if (!v.ok) {
      this.malformed(v.reason, origin);
      return v.reason;
    }
    const outcome = applyEvent(this.store, v.event);
    if (outcome === 'applied' && this.listeners.size > 0) {
      if (this.queue.events.length < this.maxQueued) this.queue.events.push(v.event);
      else this.overflow = true;
      this.schedule();
    }
    return null;
  }

  /** Ingests one line of an events file (JSON lines). */
  ingestLine(line: string, origin: string): string | null {
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (e) {
      const reason = `not JSON: ${(e as Error).message}`;
      this.malformed(reason, origin);
      return reason;
    }
    return this.ingest(value, origin);
  }

  malformed(reason: string, origin: string): void {
    const r = truncate(reason, 300);
    recordMalformed(this.store, r, origin);
    if (this.listeners.size > 0) {
      if (this.queue.malformed.length < this.maxQueued) this.queue.malformed.push({ reason: r, origin });
      else this.overflow = true;
      this.schedule();
    }
  }

  snapshot(): string {
    return JSON.stringify(this.store);
  }

  /** Adds a browser. It is sent the snapshot at once, then batches. */
  subscribe(l: Listener): () => void {
    // Anything queued before this subscriber is already in the snapshot it gets: flush it to the others first.
    this.flush();
    this.listeners.add(l);
    l('snapshot', this.snapshot());
    return () => this.listeners.delete(l);
  }

  get subscribers(): number {
    return this.listeners.size;
  }

  /** At most one message per flushMs to each browser, but no wait for an event after a quiet spell: the
   * first one goes out at once (leading edge), the ones after it wait for the rest of the period. */
  private schedule(): void {
    if (this.timer !== undefined) return;
    const wait = Math.max(0, this.lastFlush + this.flushMs - Date.now());
    this.timer = setTimeout(() => this.flush(), wait);
  }

  /** Sends what is queued now (also called by tests and at shutdown). */
  flush(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.overflow) {
      const snap = this.snapshot();
      for (const l of this.listeners) l('snapshot', snap);
    } else if (this.queue.events.length > 0 || this.queue.malformed.length > 0) {
      const data = JSON.stringify(this.queue);
      for (const l of this.listeners) l('batch', data);
    }
    this.queue = { events: [], malformed: [] };
    this.overflow = false;
    this.lastFlush = Date.now();
  }

  close(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
