// System: server health (store, ingest gate), the store's size, ingest counters and rate, the
// age of the newest span, and host metrics (points named system_*) when they are recorded.
"use strict";
function bytes(n) {
  if (n === null || n === undefined) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return LP.num(n, i ? 1 : 0) + " " + units[i];
}
function seconds(s) {
  if (s === null || s === undefined) return "–";
  if (s < 120) return LP.num(s, 1) + " s";
  if (s < 7200) return LP.num(s / 60, 1) + " min";
  return LP.num(s / 3600, 1) + " h";
}
function counts(map) {
  const entries = Object.entries(map || {});
  return entries.length ? entries.map(([k, v]) => k + " " + LP.num(v)).join(", ") : "none";
}

async function hostMetrics() {
  const span = LP.range(0);
  const names = (await LP.api("/api/v1/metrics/names", span)).filter((n) => n.startsWith("system_"));
  const none = document.getElementById("host-none"), table = document.getElementById("hosts");
  const charts = document.getElementById("host-charts");
  none.hidden = names.length > 0;
  table.hidden = names.length === 0;
  charts.replaceChildren();
  if (!names.length) return;
  const rows = [];
  let n = 0;
  for (const name of names.slice(0, 8)) {
    const page = await LP.api("/api/v1/metrics/points", Object.assign({ name, limit: 10000 }, span));
    // One series per label set; labels are user text, so the legend numbers them and the
    // table below names them.
    const series = new Map();
    for (const p of page.items) {
      const key = JSON.stringify(p.labels || {});
      if (!series.has(key)) series.set(key, { x: [], y: [], labels: p.labels || {} });
      const s = series.get(key);
      s.x.push(new Date(p.timestamp * 1000));
      s.y.push(p.value);
    }
    const traces = [];
    for (const s of series.values()) {
      n += 1;
      traces.push({ x: s.x, y: s.y, type: "scatter", name: "series " + n });
      rows.push([String(n), name, Object.entries(s.labels).map(([k, v]) => k + "=" + v).join(", "),
        LP.num(s.y[s.y.length - 1], 2), LP.num(s.y.length)]);
    }
    const box = LP.el("div", null, "chart");
    box.id = "chart-host-" + charts.children.length;
    charts.appendChild(box);
    LP.chart(box.id, "Host metric " + charts.children.length + " (see the table)", traces, "value");
  }
  LP.fillTable("hosts", rows);
}

LP.page(async function () {
  const [response, sys] = await Promise.all([
    fetch("/api/v1/health", { credentials: "same-origin" }),
    LP.api("/api/v1/dashboard/system"),
  ]);
  const h = await response.json(); // 503 still carries the body: show it
  const perMinute = sys.rate.length ? sys.rate.reduce((a, r) => a + r.spans, 0) / 15 : 0;
  const cards = document.getElementById("cards");
  cards.replaceChildren();
  LP.card(cards, "Status", h.status);
  LP.card(cards, "Version", h.version);
  LP.card(cards, "Uptime", LP.num(h.uptime_seconds / 3600, 2) + " h");
  LP.card(cards, "Keys required", h.auth_required ? "yes" : "no");
  LP.card(cards, "Store size", bytes(sys.store.size_bytes));
  LP.card(cards, "Ingest rate", LP.num(perMinute, 1) + " spans/min");
  LP.card(cards, "Newest span", sys.newest_span_age_seconds === null ? "none in 7 days" : seconds(sys.newest_span_age_seconds) + " ago");
  LP.card(cards, "Queue", LP.num(h.ingest.in_flight) + " writing, " + LP.num(h.ingest.waiting) + " waiting");

  const rows = Object.entries(h.store).map(([k, v]) => [k, typeof v === "number" ? LP.num(v, 2) : v]);
  rows.push(["size", bytes(sys.store.size_bytes)]);
  if (sys.store.wal_bytes !== undefined) rows.push(["WAL", bytes(sys.store.wal_bytes)]);
  for (const [table, count] of Object.entries(sys.store.rows || {})) rows.push(["rows: " + table, LP.num(count)]);
  for (const warning of sys.store.warnings || []) rows.push(["warning", warning]);
  LP.fillTable("store", rows);

  const i = sys.ingest;
  LP.fillTable("ingest", [
    ["batches writing / waiting", LP.num(h.ingest.in_flight) + " / " + LP.num(h.ingest.waiting)],
    ["write slots / queue capacity", LP.num(h.ingest.concurrency) + " / " + LP.num(h.ingest.queue_capacity)],
    ["batches accepted", LP.num(h.ingest.accepted_batches)],
    ["batches refused (queue full: 503, retried by the SDK)", LP.num(h.ingest.rejected_batches)],
    ["since the last commit", seconds(h.ingest.seconds_since_last_commit)],
    ["requests by outcome", counts(i.requests)],
    ["spans stored", LP.num(i.spans_stored)],
    ["spans sent again (already stored, not counted twice)", LP.num(i.duplicate_spans)],
    ["spans dropped, by reason", counts(i.dropped_spans)],
    ...Object.entries(i.by_source).map(([source, c]) => [
      "from " + source, LP.num(c.spans_stored) + " stored, dropped: " + counts(c.dropped_spans)]),
  ]);

  const x = sys.rate.map((r) => new Date(r.bucket_start * 1000));
  LP.chart("chart-rate", "Spans stored per minute, last 15 minutes (every server process)",
    [{ x, y: sys.rate.map((r) => r.spans), type: "bar", name: "spans" }], "spans");
  await hostMetrics();
});
