// The dashboard reads only the public API: analytics roll-ups, queue depths and processors.
// window.dashboardState tells tests (and curious people) what was last drawn.
const charts = {};
window.dashboardState = { refreshes: 0, errors: [], points: {} };
const keyInput = document.getElementById('key');
keyInput.value = localStorage.getItem('cqrsi-key') ?? '';
keyInput.addEventListener('change', () => { localStorage.setItem('cqrsi-key', keyInput.value); refresh(); });
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

async function refresh() {
  const hours = Number(document.getElementById('window').value);
  const to = new Date(Date.now() + 3600_000).toISOString();
  const from = new Date(Date.now() - hours * 3600_000).toISOString();
  const range = `from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`;
  try {
    const [queues, usage, utilization, processors] = await Promise.all([
      api('/v1/analytics/queues'),
      api(`/v1/analytics/usage?${range}&groupBy=model,device`),
      api(`/v1/analytics/utilization?${range}&groupBy=worker`),
      api('/v1/analytics/processors'),
    ]);
    draw('queues', 'bar', queues.map(q => `${q.model} · ${q.region}`),
      [{ label: 'waiting', data: queues.map(q => q.waiting) }, { label: 'in flight', data: queues.map(q => q.inFlight) }],
      { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } } });
    const done = bySeries(usage.filter(r => r.device !== '-'), r => r.model, r => r.succeeded + r.failed);
    draw('throughput', 'line', done.labels, done.datasets, { scales: { y: { beginAtZero: true } } });
    const cost = bySeries(usage.filter(r => r.device !== '-'), r => `${r.model} (${r.device})`, r => r.cost);
    draw('cost', 'line', cost.labels, cost.datasets, { scales: { y: { beginAtZero: true } } });
    const busy = bySeries(utilization, r => r.key, r => r.busyPercent ?? 0);
    draw('utilization', 'bar', busy.labels, busy.datasets, { scales: { y: { beginAtZero: true, max: 100 } } });
    // A processor's name, region or offline reason is data from elsewhere: text only (row()).
    document.querySelector('#processors tbody').replaceChildren(...processors.map(p => {
      const tr = row([p.worker, p.region, p.device, String(p.slots), p.online ? 'online' : `offline (${p.offlineReason ?? '?'})`,
        new Date(p.lastSeen).toLocaleString()]);
      tr.cells[4].className = p.online ? 'online' : 'offline';
      return tr;
    }));
    window.dashboardState.refreshes++;
    document.getElementById('status').textContent = `updated ${new Date().toLocaleTimeString()} · refreshes every 5 s`;
  } catch (error) {
    window.dashboardState.errors.push(String(error));
    document.getElementById('status').textContent = String(error);
  }
}

refresh();
setInterval(refresh, 5000);

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

async function refreshJobs() {
  const [status, model, tenant] = jobFilters.map(input => input.value.trim());
  const query = new URLSearchParams({ limit: '50' });
  if (status) query.set('status', status);
  if (model) query.set('model', model);
  if (tenant) query.set('tenant', tenant);
  try {
    const page = await api(`/v1/jobs?${query}`);
    document.querySelector('#jobs tbody').replaceChildren(...page.jobs.map(job => {
      const actions = document.createElement('span');
      if (cancellable.has(job.status)) actions.append(button('cancel', () => act('DELETE', `/v1/jobs/${job.id}`, `cancel ${job.id}`)));
      if (retryable.has(job.status)) actions.append(button('retry', () => act('POST', `/v1/jobs/${job.id}:retry`, `retry ${job.id}`)));
      const tr = row([job.id, job.tenant, job.model, job.region, job.status, new Date(job.submittedAt).toLocaleString(),
        String(job.attempts), job.error ? `${job.error.code}: ${job.error.message}` : '', actions]);
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

refreshJobs();
refreshBatches();
setInterval(() => { refreshJobs(); refreshBatches(); }, 5000);
