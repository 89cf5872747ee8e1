// Events from a file written by `daprtrain train --events FILE` (JSON lines): replayed at a chosen speed,
// or followed as it grows (tail -f). A line that is not JSON or not a valid event is counted as malformed
// with its line number, never fatal.
import { open, stat } from 'node:fs/promises';
import { StringDecoder } from 'node:string_decoder';
import type { Hub } from './hub.js';

/** Longest line taken (an event is far smaller; the schema bounds every field). Longer ones are malformed. */
export const MAX_LINE_BYTES = 64 * 1024;

/** Splits a byte stream into lines, refusing overlong ones without keeping them. */
export class LineSplitter {
  private buf = '';
  private skipping = false;
  private readonly decoder = new StringDecoder('utf8');
  lineNo = 0;

  constructor(private readonly onLine: (line: string, lineNo: number) => void, private readonly onTooLong: (lineNo: number) => void) {}

  push(chunk: Buffer): void {
    let text = this.decoder.write(chunk);
    for (;;) {
      const nl = text.indexOf('\n');
      if (nl < 0) break;
      const piece = text.slice(0, nl);
      text = text.slice(nl + 1);
      this.lineNo++;
      if (this.skipping) {
        this.skipping = false;
        this.onTooLong(this.lineNo);
      } else {
        const line = (this.buf + piece).replace(/\r$/, '');
        this.buf = '';
        if (line.length > MAX_LINE_BYTES) this.onTooLong(this.lineNo);
        else if (line.trim() !== '') this.onLine(line, this.lineNo);
      }
    }
    if (!this.skipping) {
      this.buf += text;
      if (this.buf.length > MAX_LINE_BYTES) {
        this.buf = '';
        this.skipping = true;
      }
    }
  }

  /** The last line, if the file does not end with a newline (replay only: a tail waits for the newline). */
  end(): void {
    if (this.buf.trim() !== '' && !this.skipping) {
      this.lineNo++;
      this.onLine(this.buf, this.lineNo);
    }
    this.buf = '';
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Longest pause a replay makes between two events, whatever their timestamps say (a clock jump or a
 * wall-clock job that waited an hour must not stall a replay). */
export const MAX_REPLAY_GAP_MS = 5000;

/**
 * Replays a file: `speed` times faster than its timeMs (the job's clock), or as fast as possible with 0.
 * Resolves with the number of lines read.
 */
export async function replayFile(hub: Hub, file: string, speed: number, signal?: AbortSignal): Promise<number> {
  const fh = await open(file, 'r');
  const lines: { line: string; no: number }[] = [];
  const split = new LineSplitter(
    (line, no) => lines.push({ line, no }),
    (no) => hub.malformed(`line ${no} is longer than ${MAX_LINE_BYTES} bytes`, `${file} line ${no}`),
  );
  try {
    for await (const chunk of fh.createReadStream()) split.push(chunk as Buffer);
    split.end();
  } finally {
    await fh.close();
  }
  let prev: number | undefined;
  let sinceYield = 0;
  for (const { line, no } of lines) {
    if (signal?.aborted) break;
    if (speed > 0) {
      const t = timeOf(line);
      if (t !== undefined) {
        if (prev !== undefined && t > prev) await sleep(Math.min(MAX_REPLAY_GAP_MS, (t - prev) / speed));
        prev = t;
      }
    } else if (++sinceYield >= 500) {
      // As fast as possible, but let the server answer and flush to browsers in between.
      sinceYield = 0;
      await new Promise((r) => setImmediate(r));
    }
    hub.ingestLine(line, `${file} line ${no}`);
  }
  return lines.length;
}

/** The timeMs of a line, cheaply and without trusting it (validation happens on ingest). */
function timeOf(line: string): number | undefined {
  const m = /"timeMs"\s*:\s*([0-9.eE+-]+)/.exec(line);
  const t = m ? Number(m[1]) : NaN;
  return Number.isFinite(t) && t >= 0 ? t : undefined;
}

/**
 * Follows a file like tail -f, from its beginning: every complete line is ingested as it is written. Waits for
 * the file to appear; starts over if it is truncated or replaced (a new run into the same file). Polls
 * (`pollMs`), which works on every file system, unlike fs.watch.
 */
export function tailFile(hub: Hub, file: string, pollMs = 200): { stop: () => void; done: Promise<void> } {
  let stopped = false;
  let wake: (() => void) | undefined;
  const done = (async () => {
    let offset = 0;
    let ino = -1;
    let split = newSplitter();
    function newSplitter() {
      return new LineSplitter(
        (line, no) => hub.ingestLine(line, `${file} line ${no}`),
        (no) => hub.malformed(`line ${no} is longer than ${MAX_LINE_BYTES} bytes`, `${file} line ${no}`),
      );
    }
    const buf = Buffer.alloc(256 * 1024);
    while (!stopped) {
      let st;
      try {
        st = await stat(file);
      } catch {
        st = undefined;
      }
      if (st) {
        if (st.ino !== ino || st.size < offset) {
          // A new file, or the same one truncated: read it from the start.
          ino = st.ino;
          offset = 0;
          split = newSplitter();
        }
        if (st.size > offset) {
          try {
            const fh = await open(file, 'r');
            try {
              while (offset < st.size && !stopped) {
                const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, st.size - offset), offset);
                if (bytesRead === 0) break;
                offset += bytesRead;
                split.push(buf.subarray(0, bytesRead));
              }
            } finally {
              await fh.close();
            }
            continue; // more may have been written meanwhile
          } catch {
            // Removed between stat and open, or unreadable for now: try again at the next poll.
          }
        }
      }
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, pollMs);
      });
    }
  })();
  return {
    stop: () => {
      stopped = true;
      wake?.();
    },
    done,
  };
}
