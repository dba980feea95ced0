// The dashboard reads only the public API: analytics roll-ups, queue depths and processors.
// window.dashboardState tells tests (and curious people) what was last drawn.
const charts = {};
window.dashboardState = { refreshes: 0, errors: [], points: {} };
const keyInput = document.getElementById('key');
keyInput.value = localStorage.getItem('cqrsi-key') ?? '';
keyInput.addEventListener('change', () => { localStorage.setItem('cqrsi-key', keyInput.value); refresh(); });
document.getElementById('window').addEventListener('change', refresh);

async function api(path) {
  const headers = keyInput.value ? { Authorization: `Bearer ${keyInput.value}` } : {};
  const response = await fetch(path, { headers });
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
    // Built from text nodes, never markup: a processor's name, region or offline reason is data
    // that reached the core from elsewhere and must not be able to script the operator's page.
    document.querySelector('#processors tbody').replaceChildren(...processors.map(p => {
      const row = document.createElement('tr');
      const cells = [p.worker, p.region, p.device, String(p.slots), p.online ? 'online' : `offline (${p.offlineReason ?? '?'})`,
        new Date(p.lastSeen).toLocaleString()];
      for (const text of cells) {
        const cell = row.insertCell();
        cell.textContent = text;
      }
      row.cells[4].className = p.online ? 'online' : 'offline';
      return row;
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
