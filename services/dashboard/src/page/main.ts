// The page: holds the same store as the server (a snapshot, then the accepted events reduced by the same
// reducer) and draws the selected job. Elements a test or a person reads carry data-testid and data-*
// attributes with the values, so the browser test asserts on what is shown, not on pixels.
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import './style.css';
import { applyEvent, own, recordMalformed, type JobState, type StoreState, type NodeInfo, type FaultMark } from '../reducer.js';
import type { Batch } from '../hub.js';

let store: StoreState | undefined;
let selected: string | undefined;
let userPicked = false;
let frame = 0;

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

function esc(s: string | number | undefined): string {
  return String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

function connect(): void {
  const es = new EventSource('api/stream');
  const conn = $('conn');
  es.addEventListener('open', () => {
    conn.textContent = 'live';
    conn.dataset.value = 'live';
  });
  es.addEventListener('error', () => {
    conn.textContent = 'disconnected, retrying…';
    conn.dataset.value = 'disconnected';
  });
  es.addEventListener('snapshot', (e) => {
    store = JSON.parse((e as MessageEvent<string>).data) as StoreState;
    schedule();
  });
  es.addEventListener('batch', (e) => {
    if (!store) return;
    const b = JSON.parse((e as MessageEvent<string>).data) as Batch;
    for (const ev of b.events) applyEvent(store, ev);
    for (const m of b.malformed) recordMalformed(store, m.reason, m.origin);
    schedule();
  });
}

function schedule(): void {
  if (frame === 0) frame = requestAnimationFrame(() => {
    frame = 0;
    render();
  });
}

function render(): void {
  if (!store) return;
  const jobs = Object.values(store.jobs).sort((a, b) => b.lastTick - a.lastTick);
  if (!userPicked || !selected || !own(store.jobs, selected)) selected = jobs[0]?.job;
  const sel = $<HTMLSelectElement>('job');
  const options = jobs.map((j) => j.job).sort();
  if (sel.dataset.options !== options.join(',')) {
    sel.innerHTML = options.map((j) => `<option>${esc(j)}</option>`).join('');
    sel.dataset.options = options.join(',');
  }
  if (selected) sel.value = selected;
  const job = selected ? own(store.jobs, selected) : undefined;
  $('empty').hidden = job !== undefined;
  if (!job) return;
  ensureLayout(job.job);
  renderSummary(job);
  renderTopology(job);
  renderAccuracy(job);
  renderBytes(job);
  renderCost(job);
  renderCounters(job, store);
  renderLog(job);
}

let layoutFor: string | undefined;
let accPlot: uPlot | undefined;
let accKey = '';
let bytesPlot: uPlot | undefined;
let bytesKey = '';
let xAxis: 'round' | 'time' = 'round';

function ensureLayout(job: string): void {
  if (layoutFor === job) return;
  layoutFor = job;
  accPlot?.destroy();
  bytesPlot?.destroy();
  accPlot = bytesPlot = undefined;
  accKey = bytesKey = '';
  const root = $('root');
  root.querySelectorAll('section').forEach((s) => s.remove());
  root.insertAdjacentHTML('beforeend', `
    <section class="wide" id="summary" data-testid="summary"></section>
    <section id="topology"><h2>Topology</h2><svg class="topo" id="topo-svg" role="img" aria-label="topology"></svg><div class="nodes" id="nodes" data-testid="nodes"></div><div id="roles" class="muted"></div></section>
    <section id="accuracy"><div class="chart-head"><h2>Accuracy and loss</h2>
      <label class="muted">x: <select id="xaxis" data-testid="x-axis"><option value="round">round</option><option value="time">time</option></select></label></div>
      <div id="acc-chart" data-testid="accuracy-chart"></div><div class="markers" id="markers" data-testid="fault-markers"></div></section>
    <section id="bytes"><h2>Bytes per worker per round</h2><div id="bytes-chart" data-testid="bytes-chart"></div></section>
    <section id="cost" data-testid="cost"></section>
    <section id="counters"></section>
    <section class="wide"><h2>Event log <span class="muted" id="log-note"></span></h2><div class="logbox"><table class="log"><tbody id="log" data-testid="event-log"></tbody></table></div></section>`);
  const xs = $<HTMLSelectElement>('xaxis');
  xs.value = xAxis;
  xs.addEventListener('change', () => {
    xAxis = xs.value === 'time' ? 'time' : 'round';
    accKey = '';
    schedule();
  });
}

function clockLabel(job: JobState): string {
  if (job.clock === 'virtual') return 'modelled (virtual clock)';
  if (job.clock === 'wall') return 'wall clock';
  return 'clock unknown (no job-started yet)';
}

function renderSummary(job: JobState): void {
  const fin = job.finished;
  const lastEval = job.evals[job.evals.length - 1];
  const acc = fin?.accuracy ?? lastEval?.accuracy;
  $('summary').innerHTML = `<div class="summary">
    <span>job <b>${esc(job.job)}</b></span>
    <span>topology <b data-testid="topology">${esc(job.topology ?? '?')}</b></span>
    <span>mode <b>${esc(job.mode ?? '?')}</b></span>
    <span class="badge ${job.clock === 'virtual' ? 'modelled' : ''}" data-testid="clock" data-value="${esc(job.clock ?? '')}">${esc(clockLabel(job))}</span>
    <span>workers <b data-testid="workers" data-value="${job.workers ?? ''}">${job.workers ?? '?'}</b></span>
    <span>model <b>${esc(job.model ?? '?')}</b></span>
    <span>round <b data-testid="last-round" data-value="${job.lastRound}">${job.lastRound}</b>${job.rounds ? ' / ' + job.rounds : ''}</span>
    ${job.scenario ? `<span>scenario <b>${esc(job.scenario)}</b></span>` : ''}
    ${fin
      ? `<span>final accuracy <b class="big" data-testid="final-accuracy" data-value="${fin.accuracy ?? ''}">${fin.accuracy !== undefined ? (fin.accuracy * 100).toFixed(2) + '%' : 'n/a'}</b> <span class="badge">finished</span></span>`
      : `<span>accuracy <b class="big" data-testid="current-accuracy" data-value="${acc ?? ''}">${acc !== undefined ? (acc * 100).toFixed(2) + '%' : '–'}</b> <span class="badge">running</span></span>`}
  </div>`;
}

const STATE_COLOR: Record<string, string> = { alive: '#1a7f37', slow: '#b7791f', dead: '#cf222e', rejoining: '#0969da' };

function nodeText(n: NodeInfo): string {
  let s = n.state;
  if (n.state !== 'alive' && n.round !== undefined) s += ` since round ${n.round}`;
  return s;
}

function renderTopology(job: JobState): void {
  const nodes = job.nodeOrder.map((id) => own(job.nodes, id)!).filter(Boolean);
  $('nodes').innerHTML = nodes.map((n) => {
    const roles: string[] = [];
    if (job.checkpointWriter === n.id) roles.push('writes checkpoints');
    const shards = job.shardOwners.reduce((c, o) => c + (o === n.id ? 1 : 0), 0);
    if (shards > 0) roles.push(`${shards} shard${shards > 1 ? 's' : ''}`);
    return `<div class="node ${n.state}" data-testid="node-${esc(n.id)}" data-state="${n.state}" data-round="${n.round ?? ''}" title="${esc(n.reason ?? '')}">
      <div class="id">${esc(n.id)}</div><div class="state ${n.state}">${esc(nodeText(n))}</div>
      <div class="muted">${n.lastRound !== undefined ? 'last round ' + n.lastRound : 'no round yet'}${n.reason ? ' · ' + esc(n.reason) : ''}</div>
      ${roles.length ? `<div>${esc(roles.join(', '))}</div>` : ''}</div>`;
  }).join('');
  const gen = job.topology === 'ps'
    ? `server generation <b data-testid="server-generation">${job.serverGeneration ?? job.generation}</b>`
    : `view generation <b data-testid="generation">${job.generation}</b>`;
  $('roles').innerHTML = `${gen} · checkpoint writer <b data-testid="checkpoint-writer">${esc(job.checkpointWriter ?? '–')}</b>` +
    (job.members.length ? ` · view: ${esc(job.members.join(' '))}` : '') + (job.nodesRefused ? ` · ${job.nodesRefused} nodes past the limit not shown` : '');
  drawTopology(job, nodes);
}

/** Nodes on a circle; edges of the exchange: every pair for p2p (up to 16 nodes), the server to each worker for ps. */
function drawTopology(job: JobState, nodes: NodeInfo[]): void {
  const svg = $('topo-svg') as unknown as SVGSVGElement;
  const w = svg.clientWidth || 480, h = 220;
  const center = nodes.find((n) => n.id === 'ps');
  const ring = nodes.filter((n) => n !== center);
  const r = Math.min(w, h) / 2 - 28;
  const pos = new Map<string, [number, number]>();
  ring.forEach((n, i) => {
    const a = (2 * Math.PI * i) / Math.max(1, ring.length) - Math.PI / 2;
    pos.set(n.id, [w / 2 + r * Math.cos(a), h / 2 + r * Math.sin(a)]);
  });
  if (center) pos.set(center.id, [w / 2, h / 2]);
  const live = (n: NodeInfo) => n.state !== 'dead';
  let edges = '';
  if (center) {
    for (const n of ring) {
      const [x1, y1] = pos.get(center.id)!, [x2, y2] = pos.get(n.id)!;
      edges += `<line x1="${x1}" y1="${y1}" x2="${x2}" y2="${y2}" stroke="${live(n) ? '#8c959f' : '#ffcecb'}" stroke-dasharray="${live(n) ? '' : '4 3'}"/>`;
    }
  } else if (ring.length <= 16) {
    for (let i = 0; i < ring.length; i++) for (let j = i + 1; j < ring.length; j++) {
      const a = ring[i]!, b = ring[j]!;
      const [x1, y1] = pos.get(a.id)!, [x2, y2] = pos.get(b.id)!;
      const ok = live(a) && live(b);
      edges += `<line x1="${x1}" y1="${y1}" x2="${x2}" y2="${y2}" stroke="${ok ? '#8c959f' : '#ffcecb'}" stroke-dasharray="${ok ? '' : '4 3'}"/>`;
    }
  }
  const rad = nodes.length > 32 ? 5 : 14;
  const circles = nodes.map((n) => {
    const [x, y] = pos.get(n.id)!;
    const writer = job.checkpointWriter === n.id ? `<circle cx="${x}" cy="${y}" r="${rad + 4}" fill="none" stroke="#6639ba" stroke-width="2"/>` : '';
    const label = nodes.length <= 32 ? `<text x="${x}" y="${y + rad + 12}" text-anchor="middle">${esc(n.id)}</text>` : '';
    return `${writer}<circle cx="${x}" cy="${y}" r="${rad}" fill="${STATE_COLOR[n.state]}"><title>${esc(n.id)}: ${esc(nodeText(n))}</title></circle>${label}`;
  }).join('');
  svg.setAttribute('viewBox', `0 0 ${w} ${h}`);
  svg.innerHTML = edges + circles;
}

const PHASE_COLOR: Record<FaultMark['phase'], string> = { injected: '#cf222e', detected: '#b7791f', recovered: '#1a7f37' };

function chartWidth(id: string): number {
  return Math.max(300, ($(id).parentElement?.clientWidth ?? 520) - 24);
}

function renderAccuracy(job: JobState): void {
  const t0 = job.startMs ?? 0;
  const xOf = (round: number, timeMs: number) => (xAxis === 'round' ? round : (timeMs - t0) / 1000);
  const xs = job.evals.map((p) => xOf(p.round, p.timeMs));
  const acc = job.evals.map((p) => p.accuracy * 100);
  const loss = job.evals.map((p) => p.loss ?? null);
  const faults = job.faults;
  const el = $('acc-chart');
  const last = job.evals[job.evals.length - 1];
  el.dataset.points = String(job.evals.length);
  el.dataset.lastAccuracy = last ? String(last.accuracy) : '';
  el.dataset.lastRound = last ? String(last.round) : '';
  const key = `${job.job}|${xAxis}`;
  if (accKey !== key) {
    accPlot?.destroy();
    accKey = key;
    const opts: uPlot.Options = {
      width: chartWidth('acc-chart'),
      height: 260,
      scales: { x: { time: false }, acc: { range: [0, 100] }, loss: { auto: true } },
      axes: [
        { label: xAxis === 'round' ? 'round' : `time (s, ${job.clock === 'virtual' ? 'modelled' : 'wall'})` },
        { scale: 'acc', label: 'accuracy %' },
        { scale: 'loss', side: 1, label: 'loss', grid: { show: false } },
      ],
      series: [
        { label: xAxis },
        { label: 'accuracy %', scale: 'acc', stroke: '#0969da', width: 2, points: { show: true, size: 4 } },
        { label: 'loss', scale: 'loss', stroke: '#8250df', width: 1.5, dash: [6, 4] },
      ],
      hooks: {
        // Fault markers: a vertical line per fault phase, drawn over the plot.
        draw: [(u) => {
          const ctx = u.ctx;
          const cur = layoutFor && store ? own(store.jobs, layoutFor) : undefined;
          if (!cur) return;
          ctx.save();
          for (const f of cur.faults) {
            const x = u.valToPos(xOf(f.round, f.timeMs), 'x', true);
            if (!Number.isFinite(x) || x < u.bbox.left || x > u.bbox.left + u.bbox.width) continue;
            ctx.strokeStyle = PHASE_COLOR[f.phase];
            ctx.lineWidth = 2 * devicePixelRatio;
            ctx.setLineDash(f.phase === 'injected' ? [] : [5 * devicePixelRatio, 4 * devicePixelRatio]);
            ctx.beginPath();
            ctx.moveTo(x, u.bbox.top);
            ctx.lineTo(x, u.bbox.top + u.bbox.height);
            ctx.stroke();
            if (f.phase === 'injected') {
              ctx.fillStyle = PHASE_COLOR.injected;
              ctx.font = `${11 * devicePixelRatio}px sans-serif`;
              ctx.fillText(`⚡ ${f.fault}`, x + 4 * devicePixelRatio, u.bbox.top + 14 * devicePixelRatio);
            }
          }
          ctx.restore();
        }],
      },
    };
    el.innerHTML = '';
    accPlot = new uPlot(opts, [xs, acc, loss], el);
  } else {
    accPlot!.setData([xs, acc, loss]);
  }
  $('markers').innerHTML = faults.map((f) =>
    `<span class="marker ${f.phase}" data-testid="fault-marker" data-round="${f.round}" data-phase="${f.phase}" data-fault="${esc(f.fault)}" data-time-ms="${f.timeMs}">` +
    `${esc(f.phase)} ${esc(f.fault)} · round ${f.round}${f.roundsLost !== undefined ? ` · ${f.roundsLost} lost` : ''}</span>`).join('') ||
    '<span class="muted">no faults</span>';
}

function renderBytes(job: JobState): void {
  const ids = job.nodeOrder.filter((id) => job.bytes.some((r) => own(r.byNode, id) !== undefined));
  const rounds = job.bytes.map((r) => r.round);
  const data: uPlot.AlignedData = [rounds, ...ids.map((id) => job.bytes.map((r) => own(r.byNode, id) ?? null))];
  const el = $('bytes-chart');
  el.dataset.series = String(ids.length);
  el.dataset.rounds = String(rounds.length);
  const key = `${job.job}|${ids.join(',')}`;
  if (bytesKey !== key) {
    bytesPlot?.destroy();
    bytesKey = key;
    const palette = ['#0969da', '#cf222e', '#1a7f37', '#8250df', '#bf3989', '#b7791f', '#0a7ea4', '#57606a'];
    el.innerHTML = '';
    bytesPlot = new uPlot({
      width: chartWidth('bytes-chart'),
      height: 260,
      scales: { x: { time: false } },
      axes: [{ label: 'round' }, { label: 'bytes', size: 70, values: (_u, vals) => vals.map(fmtBytes) }],
      series: [{ label: 'round' }, ...ids.map((id, i) => ({ label: id, stroke: palette[i % palette.length]!, width: 1.5, spanGaps: false }))],
      legend: { show: ids.length <= 16 },
    }, data, el);
  } else {
    bytesPlot!.setData(data);
  }
}

function fmtBytes(v: number): string {
  if (v >= 1e9) return (v / 1e9).toFixed(1) + ' GB';
  if (v >= 1e6) return (v / 1e6).toFixed(1) + ' MB';
  if (v >= 1e3) return (v / 1e3).toFixed(1) + ' kB';
  return String(v);
}

function renderCost(job: JobState): void {
  const c = job.cost;
  $('cost').innerHTML = `<h2>Running cost <span class="badge modelled">modelled, not a bill</span></h2>` + (c
    ? `<div class="summary"><span>VM <b class="big" data-testid="cost-vm" data-value="${c.vmUsd}">$${c.vmUsd.toFixed(6)}</b></span>
       <span>serverless <b class="big" data-testid="cost-serverless" data-value="${c.serverlessUsd}">$${c.serverlessUsd.toFixed(6)}</b></span>
       <span class="muted">at round ${c.round}</span></div>
       <p class="muted" data-testid="cost-prices">prices: ${esc(c.prices)}</p>`
    : '<p class="muted">no cost event yet</p>');
}

function renderCounters(job: JobState, s: StoreState): void {
  const c = job.counters;
  const cp = job.lastCheckpoint;
  $('counters').innerHTML = `<h2>Counters</h2><div class="summary">
    <span>events <b data-testid="events-count" data-value="${c.events}">${c.events}</b></span>
    <span>duplicates ignored <b data-testid="duplicates" data-value="${c.duplicates}">${c.duplicates}</b></span>
    <span>seq gaps <b data-testid="gaps" data-value="${c.gaps}">${c.gaps}</b></span>
    <span>source restarts <b data-testid="restarts" data-value="${c.restarts}">${c.restarts}</b></span>
    <span>malformed <b data-testid="malformed-count" data-value="${s.malformed.count}">${s.malformed.count}</b></span>
    <span>checkpoints <b>${job.checkpoints}</b>${cp ? ` (last: round ${cp.round} by ${esc(cp.writer)})` : ''}</span>
    ${s.jobsEvicted ? `<span>jobs evicted <b>${s.jobsEvicted}</b></span>` : ''}
  </div>` + (s.malformed.reasons.length
    ? `<p class="muted">last malformed events (of ${s.malformed.count}):</p><ul class="malformed" data-testid="malformed-reasons">${
      s.malformed.reasons.slice(-8).reverse().map((m) => `<li>${esc(m.origin)}: ${esc(m.reason)}</li>`).join('')}</ul>`
    : '');
}

const LOG_SHOWN = 200;

function renderLog(job: JobState): void {
  const t0 = job.startMs ?? 0;
  const rows = job.log.slice(-LOG_SHOWN).reverse();
  $('log-note').textContent = `(newest first; ${rows.length} of the ${job.log.length} kept, ${job.counters.events} received)`;
  $('log').innerHTML = rows.map((e) =>
    `<tr data-testid="log-row" data-kind="${e.kind}"><td class="k">${((e.timeMs - t0) / 1000).toFixed(3)} s</td><td class="k">${esc(e.source)}#${e.seq}</td><td class="k">${e.kind}</td><td>${esc(e.text)}</td></tr>`).join('');
}

$<HTMLSelectElement>('job').addEventListener('change', (e) => {
  selected = (e.target as HTMLSelectElement).value;
  userPicked = true;
  schedule();
});
window.addEventListener('resize', () => {
  accPlot?.setSize({ width: chartWidth('acc-chart'), height: 260 });
  bytesPlot?.setSize({ width: chartWidth('bytes-chart'), height: 260 });
});
connect();
