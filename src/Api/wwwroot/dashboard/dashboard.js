// The dashboard reads only the public API: analytics roll-ups, queue depths, processors, jobs and
// batches. It follows GET /v1/events/stream (the live part, at the end) and polls every 5 s only
// while that stream is down. window.dashboardState tells tests (and curious people) what was last
// drawn, and how (mode: 'live' or 'polling').
const charts = {};
window.dashboardState = { refreshes: 0, errors: [], points: {}, mode: 'starting', live: { events: 0, resyncs: 0, lastEventId: null } };
const keyInput = document.getElementById('key');
keyInput.value = localStorage.getItem('cqrsi-key') ?? '';
keyInput.addEventListener('change', () => { localStorage.setItem('cqrsi-key', keyInput.value); restartLive(); });
document.getElementById('window').addEventListener('change', refresh);

// The key the user typed, as every request of the page sends it (none in local mode).
const authorization = () => (keyInput.value ? { Authorization: `Bearer ${keyInput.value}` } : {});

async function api(path) {
  const response = await fetch(path, { headers: authorization() });
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

function draw(id, type, labels, datasets, options = {}) {
  window.dashboardState.points[id] = datasets.reduce((n, d) => n + d.data.length, 0);
  if (charts[id]) {
    charts[id].data.labels = labels;
    charts[id].data.datasets = datasets;
    charts[id].update('none');
    return;
  }
  charts[id] = new Chart(document.getElementById(id), {
    type, data: { labels, datasets },
    options: { animation: false, responsive: true, maintainAspectRatio: false, elements: { point: { radius: 4 } }, ...options },
  });
}

const hourLabel = iso => new Date(iso).toISOString().slice(5, 13).replace('T', ' ') + 'h';

function bySeries(rows, seriesOf, valueOf) {
  const buckets = [...new Set(rows.map(r => r.bucket))].sort();
  const series = [...new Set(rows.map(seriesOf))].sort();
  return {
    labels: buckets.map(hourLabel),
    datasets: series.map(name => ({
      label: name,
      data: buckets.map(b => rows.filter(r => r.bucket === b && seriesOf(r) === name).reduce((sum, r) => sum + valueOf(r), 0)),
    })),
  };
}

function drawQueues(queues) {
  draw('queues', 'bar', queues.map(q => `${q.model} · ${q.region}`),
    [{ label: 'waiting', data: queues.map(q => q.waiting) }, { label: 'in flight', data: queues.map(q => q.inFlight) }],
    { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } } });
}

// A processor's name, region or offline reason is data from elsewhere: text only (row()).
function drawProcessors(processors) {
  document.querySelector('#processors tbody').replaceChildren(...processors.map(p => {
    const tr = row([p.worker, p.region, p.device, String(p.slots), p.online ? 'online' : `offline (${p.offlineReason ?? '?'})`,
      new Date(p.lastSeen).toLocaleString()]);
    tr.cells[4].className = p.online ? 'online' : 'offline';
    return tr;
  }));
}

function showStatus() {
  const how = window.dashboardState.mode === 'live' ? 'live' : 'refreshes every 5 s';
  document.getElementById('status').textContent = `updated ${new Date().toLocaleTimeString()} · ${how}`;
}

async function refresh() {
  const hours = Number(document.getElementById('window').value);
  const to = new Date(Date.now() + 3600_000).toISOString();
  const from = new Date(Date.now() - hours * 3600_000).toISOString();
  const range = `from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`;
  // Each part on its own: a key without the operator role reads queues and usage but not the
  // processors' utilization (403); it gets the charts it may read, and a note for the others.
  const parts = await Promise.allSettled([
    api('/v1/analytics/queues'),
    api(`/v1/analytics/usage?${range}&groupBy=model,device`),
    api(`/v1/analytics/utilization?${range}&groupBy=worker`),
    api('/v1/analytics/processors'),
  ]);
  const [queues, usage, utilization, processors] = parts.map(p => (p.status === 'fulfilled' ? p.value : null));
  const failures = parts.filter(p => p.status === 'rejected').map(p => p.reason?.message ?? String(p.reason));
  const notForThisKey = failures.filter(f => f.endsWith('HTTP 403'));
  const errors = failures.filter(f => !f.endsWith('HTTP 403'));
  try {
    if (queues) drawQueues(queues);
    if (usage) {
      const done = bySeries(usage.filter(r => r.device !== '-'), r => r.model, r => r.succeeded + r.failed);
      draw('throughput', 'line', done.labels, done.datasets, { scales: { y: { beginAtZero: true } } });
      const cost = bySeries(usage.filter(r => r.device !== '-'), r => `${r.model} (${r.device})`, r => r.cost);
      draw('cost', 'line', cost.labels, cost.datasets, { scales: { y: { beginAtZero: true } } });
    }
    if (utilization) {
      const busy = bySeries(utilization, r => r.key, r => r.busyPercent ?? 0);
      draw('utilization', 'bar', busy.labels, busy.datasets, { scales: { y: { beginAtZero: true, max: 100 } } });
    }
    if (processors) drawProcessors(processors);
  } catch (error) {
    errors.push(String(error));
  }
  window.dashboardState.notForThisKey = notForThisKey.map(f => f.split('?')[0].split(': HTTP')[0]);
  if (errors.length > 0) {
    window.dashboardState.errors.push(...errors);
    document.getElementById('status').textContent = errors.join('; ');
    return;
  }
  window.dashboardState.refreshes++;
  showStatus();
  if (notForThisKey.length > 0) {
    // What was refused, as it was: without a key every chart is (usage and queues need an analyst's key).
    const refused = window.dashboardState.notForThisKey.map(path => path.split('/').pop()).join(', ');
    document.getElementById('status').textContent += keyInput.value
      ? ` · not for this key's roles: ${refused}`
      : ` · not for this key's roles: ${refused} (no key: enter an analyst's or the operator's key above)`;
  }
}

// Jobs and batches: tables built from text nodes only (row(), as the processors table), with the two
// actions an operator needs most: cancel a queued or running job, retry an ended one that did not succeed.
window.dashboardState.jobs = 0;
window.dashboardState.batches = 0;
window.dashboardState.actions = [];
const jobFilters = ['job-status', 'job-model', 'job-tenant'].map(id => document.getElementById(id));
jobFilters.forEach(input => input.addEventListener('change', refreshJobs));
document.getElementById('job-filters').addEventListener('submit', event => { event.preventDefault(); refreshJobs(); });

// A table row from text nodes (or elements the page made), never markup: names, reasons and errors
// reach the core from elsewhere and must not be able to script the operator's page.
function row(cells) {
  const tr = document.createElement('tr');
  for (const value of cells) {
    const cell = tr.insertCell();
    if (value instanceof Node) cell.append(value); else cell.textContent = value ?? '';
  }
  return tr;
}

function button(label, action) {
  const b = document.createElement('button');
  b.type = 'button';
  b.textContent = label;
  b.addEventListener('click', action);
  return b;
}

async function act(method, path, what) {
  const response = await fetch(path, { method, headers: authorization() });
  const problem = response.ok ? null : await response.json().catch(() => ({}));
  const text = response.ok ? `${what}: done (HTTP ${response.status})` : `${what}: ${problem.detail ?? problem.title ?? `HTTP ${response.status}`}`;
  window.dashboardState.actions.push({ what, status: response.status });
  document.getElementById('job-message').textContent = text;
  await refreshJobs();
}

const cancellable = new Set(['queued', 'running']);
const retryable = new Set(['failed', 'expired', 'cancelled']);

function jobActions(id, status) {
  const actions = document.createElement('span');
  if (cancellable.has(status)) actions.append(button('cancel', () => act('DELETE', `/v1/jobs/${id}`, `cancel ${id}`)));
  if (retryable.has(status)) actions.append(button('retry', () => act('POST', `/v1/jobs/${id}:retry`, `retry ${id}`)));
  return actions;
}

async function refreshJobs() {
  const [status, model, tenant] = jobFilters.map(input => input.value.trim());
  const query = new URLSearchParams({ limit: '50' });
  if (status) query.set('status', status);
  if (model) query.set('model', model);
  if (tenant) query.set('tenant', tenant);
  try {
    const page = await api(`/v1/jobs?${query}`);
    document.querySelector('#jobs tbody').replaceChildren(...page.jobs.map(job => {
      const tr = row([job.id, job.tenant, job.model, job.region, job.status, new Date(job.submittedAt).toLocaleString(),
        String(job.attempts), job.error ? `${job.error.code}: ${job.error.message}` : '', jobActions(job.id, job.status)]);
      tr.cells[0].className = 'id';
      tr.dataset.job = job.id;
      tr.dataset.status = job.status;
      return tr;
    }));
    window.dashboardState.jobs = page.jobs.length;
  } catch (error) {
    window.dashboardState.errors.push(String(error));
    document.getElementById('job-message').textContent = String(error);
  }
}

async function refreshBatches() {
  try {
    const page = await api('/v1/batches?limit=20');
    document.querySelector('#batches tbody').replaceChildren(...page.batches.map(batch => {
      const bar = document.createElement('progress');
      bar.max = batch.progress.total || 1;
      bar.value = batch.progress.finished;
      const progress = document.createElement('span');
      progress.append(bar, ` ${batch.progress.finished} / ${batch.progress.total}`);
      const tr = row([batch.id, batch.status, progress, String(batch.counts.succeeded), String(batch.counts.failed + batch.counts.cancelled + batch.counts.expired + batch.counts.refused),
        batch.cost.amount.toFixed(4), new Date(batch.submittedAt).toLocaleString(), batch.deadline ? new Date(batch.deadline).toLocaleString() : '']);
      tr.cells[0].className = 'id';
      tr.dataset.batch = batch.id;
      return tr;
    }));
    window.dashboardState.batches = page.batches.length;
  } catch (error) {
    window.dashboardState.errors.push(String(error));
  }
}

function refreshAll() {
  return Promise.all([refresh(), refreshJobs(), refreshBatches()]);
}

// Live updates. GET /v1/events/stream is read with fetch, not EventSource: EventSource cannot send
// the Authorization header, and a key in the URL would end in proxies' logs and the browser's history.
// While the stream is up nothing polls: 'queues' and 'processors' redraw their chart and table, 'jobs'
// changes the rows it names (a new job, or any change under a filter, re-reads the list, at most
// every 2 s), endings re-read the hourly roll-ups and batches (at most every 10 s), 'resync' re-reads
// everything. When the stream fails the page polls every 5 s and tries the stream again.
const live = window.dashboardState.live;
const terminal = new Set(['succeeded', 'failed', 'cancelled', 'expired']);
let pollTimer = null;
let liveAbort = null;
let liveRetry = null;
let liveBackoff = 1000;

function setMode(mode) {
  const was = window.dashboardState.mode;
  window.dashboardState.mode = mode;
  if (mode === 'live') {
    clearInterval(pollTimer);
    pollTimer = null;
  } else if (!pollTimer) {
    pollTimer = setInterval(refreshAll, 5000);
    if (was !== 'polling') refreshAll();
  }
}

// A function that runs at most once per `ms`, the last call's wish kept (trailing).
function debounced(action, ms) {
  let timer = null;
  return () => { timer ??= setTimeout(() => { timer = null; action(); }, ms); };
}

const rereadJobs = debounced(refreshJobs, 2000);
const rereadRollups = debounced(() => { refresh(); refreshBatches(); }, 10_000);

// The same terminal rule as the server's coalescing: an ended job reopens only by a retry.
function applyChanges(changes) {
  const filtered = jobFilters.some(input => input.value.trim() !== '');
  for (const change of changes) {
    const tr = document.querySelector(`#jobs tbody tr[data-job="${CSS.escape(change.id)}"]`);
    if (!tr || filtered) {
      rereadJobs();
      continue;
    }
    if (terminal.has(tr.dataset.status) && change.event !== 'v1.job_retried') continue;
    tr.dataset.status = change.status;
    tr.cells[4].textContent = change.status;
    tr.cells[8].replaceChildren(jobActions(change.id, change.status));
  }
  if (changes.some(c => terminal.has(c.status))) rereadRollups();
}

function onLiveEvent(type, data, id) {
  live.events++;
  if (id) live.lastEventId = id;
  const body = data ? JSON.parse(data) : null;
  switch (type) {
    case 'hello':
      liveBackoff = 1000;
      setMode('live');
      if (!body.resumed) refreshAll();
      break;
    case 'jobs': applyChanges(body.changes); break;
    case 'queues': drawQueues(body); showStatus(); break;
    case 'processors': drawProcessors(body); showStatus(); break;
    case 'resync': live.resyncs++; refreshAll(); break;
  }
}

// One Server-Sent Events block: its event type, data lines and id.
function parseBlock(block) {
  let type = 'message', id = null;
  const data = [];
  for (const line of block.split('\n')) {
    const colon = line.indexOf(':');
    if (colon === 0) continue;
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'event') type = value;
    else if (field === 'data') data.push(value);
    else if (field === 'id') id = value;
  }
  return { type, data: data.join('\n'), id };
}

async function follow() {
  liveAbort = new AbortController();
  try {
    const headers = { ...authorization(), Accept: 'text/event-stream' };
    if (live.lastEventId) headers['Last-Event-ID'] = live.lastEventId;
    const response = await fetch('/v1/events/stream', { headers, cache: 'no-store', signal: liveAbort.signal });
    if (!response.ok || !response.body) throw new Error(`/v1/events/stream: HTTP ${response.status}`);
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer = (buffer + value).replace(/\r\n?/g, '\n');
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const { type, data, id } = parseBlock(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
        onLiveEvent(type, data, id);
      }
    }
  } catch (error) {
    if (error.name === 'AbortError') return;
    live.lastError = String(error);
  }
  // Ended or failed: poll until it is back.
  setMode('polling');
  liveRetry = setTimeout(follow, liveBackoff);
  liveBackoff = Math.min(liveBackoff * 2, 30_000);
}

// A new key: a new stream (the old one shows what the old key may see).
function restartLive() {
  liveAbort?.abort();
  clearTimeout(liveRetry);
  live.lastEventId = null;
  liveBackoff = 1000;
  follow();
}

// The first read comes with the stream's hello (it follows from then on, so nothing falls between);
// a stream that fails, or says nothing for 3 s, leaves the page polling.
follow();
setTimeout(() => { if (window.dashboardState.mode === 'starting') setMode('polling'); }, 3000);
