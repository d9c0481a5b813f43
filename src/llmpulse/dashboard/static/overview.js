// Overview: totals with the change against the previous window, series charts, top models.
"use strict";
// Which chart marks a finding of each check (run regressions and trends are listed only).
const CHART_OF = {
  latency_spike: "chart-latency", token_spike: "chart-tokens", cost_spike: "chart-cost",
  error_rate_jump: "chart-errors", branch_shift: "chart-calls",
};
const SEVERITY_COLOR = { critical: "#e35d6a", warning: "#f0ad4e" };

// Shapes and numbered labels (numbers only: plotly reads HTML in label text) for each chart.
function marks(findings, cur) {
  const out = {};
  findings.forEach((f, i) => {
    const id = CHART_OF[f.check];
    const x0 = Math.max(f.window.start, cur.start), x1 = Math.min(f.window.end, cur.end);
    if (!id || !(x1 > x0)) return;
    const m = out[id] || (out[id] = { shapes: [], annotations: [] });
    m.shapes.push({
      type: "rect", xref: "x", yref: "paper", x0: new Date(x0 * 1000), x1: new Date(x1 * 1000),
      y0: 0, y1: 1, fillcolor: SEVERITY_COLOR[f.severity] || "#999", opacity: 0.2, line: { width: 0 }, layer: "below",
    });
    m.annotations.push({
      xref: "x", yref: "paper", x: new Date((x0 + x1) * 500), y: 1, yanchor: "bottom", showarrow: false,
      text: String(i + 1), font: { size: 11, color: SEVERITY_COLOR[f.severity] || "#999" },
    });
  });
  return out;
}

function evidence(f) {
  const parts = [];
  if (f.baseline !== null || f.current !== null) {
    let text = "baseline " + LP.num(f.baseline, 4) + " → current " + LP.num(f.current, 4);
    if (f.change_pct !== null) text += " (" + (f.change_pct >= 0 ? "+" : "") + LP.num(f.change_pct, 1) + " %)";
    parts.push(text);
  }
  if (f.score !== null) parts.push("score " + LP.num(f.score, 2));
  if (f.confidence !== null) parts.push("confidence " + LP.num(f.confidence, 4));
  if (f.p_value !== null) parts.push("p " + Number(f.p_value).toExponential(2));
  parts.push(f.method);
  for (const [k, v] of Object.entries(f.details || {})) parts.push(k + " " + (typeof v === "object" ? JSON.stringify(v) : v));
  return parts.join("; ");
}

function listFindings(result) {
  const note = document.getElementById("findings-note");
  if (result.error) {
    note.textContent = "The checks could not run: " + (result.error.message || result.error);
    LP.fillTable("findings", [], "No findings to show.");
    return;
  }
  const f = result.body;
  note.textContent = "llmpulse check over " + LP.time(f.start) + " – " + LP.time(f.end) + " UTC (checked " +
    LP.time(f.checked_at) + ", " + LP.num(f.series_checked) + " series; " + LP.num(f.check_seconds, 2) + " s)";
  LP.fillTable("findings", f.findings.map((x, i) => [
    String(i + 1), x.severity, x.check,
    Object.entries(x.subject).map(([k, v]) => k + "=" + (v === null ? "(none)" : v)).join(", "),
    LP.time(x.window.start) + " – " + LP.time(x.window.end), evidence(x), x.message,
  ]), "Nothing found in this window" + (f.skipped.length ? " (" + f.skipped.length + " series had too little data to check)." : "."));
}

LP.page(async function () {
  const now = LP.range(0), before = LP.range(1);
  // The findings may take longer (the first check of a window): charts do not wait for them.
  let findings = null;
  const note = document.getElementById("findings-note");
  if (!note.textContent) note.textContent = "Running llmpulse check over this window…";
  const findingsDone = LP.api("/api/v1/dashboard/findings", now)
    .then((body) => ({ body }), (error) => ({ error }))
    .then((result) => { findings = result; return result; });
  const [cur, prev, prompts] = await Promise.all([
    LP.api("/api/v1/dashboard/overview", now),
    LP.api("/api/v1/dashboard/overview", before),
    LP.api("/api/v1/metrics/summary?group_by=prompt_version", now),
  ]);
  const t = cur.totals || {}, p = prev.totals || {};
  const cards = document.getElementById("cards");
  cards.replaceChildren();
  LP.card(cards, "Requests", LP.num(t.calls || 0), t.calls || 0, p.calls || 0);
  LP.card(cards, "Error rate", LP.pct(t.error_rate || 0), t.error_rate || 0, p.error_rate || 0);
  LP.card(cards, "p50 latency", LP.num(t.p50_latency_ms, 1) + " ms", t.p50_latency_ms, p.p50_latency_ms);
  LP.card(cards, "p95 latency", LP.num(t.p95_latency_ms, 1) + " ms", t.p95_latency_ms, p.p95_latency_ms);
  LP.card(cards, "Tokens", LP.num(t.total_tokens || 0), t.total_tokens || 0, p.total_tokens || 0);
  LP.card(cards, "Cost", LP.usd(t.cost_usd), t.cost_usd, p.cost_usd);

  const x = cur.series.map((r) => new Date(r.bucket_start * 1000));
  const col = (name) => cur.series.map((r) => r[name]);
  const draw = (m) => Promise.all([
    LP.chart("chart-calls", "Requests", [{ x, y: col("calls"), type: "bar", name: "calls" }], "calls", null, m["chart-calls"]),
    LP.chart("chart-errors", "Error rate", [{ x, y: col("error_rate"), type: "scatter", name: "error rate" }], "share", null, m["chart-errors"]),
    LP.chart("chart-latency", "Latency", [
      { x, y: col("p50_latency_ms"), type: "scatter", name: "p50" },
      { x, y: col("p95_latency_ms"), type: "scatter", name: "p95" },
    ], "ms", null, m["chart-latency"]),
    LP.chart("chart-tokens", "Tokens", [
      { x, y: col("input_tokens"), type: "bar", name: "input" },
      { x, y: col("output_tokens"), type: "bar", name: "output" },
    ], "tokens", null, m["chart-tokens"]),
    LP.chart("chart-cost", "Cost", [{ x, y: col("cost_usd"), type: "scatter", name: "cost" }], "USD", null, m["chart-cost"]),
  ]);
  const markedNow = findings && findings.body ? marks(findings.body.findings, cur) : {};
  const drawn = draw(markedNow);
  const redrawn = findingsDone.then((result) => {
    listFindings(result);
    // Drawn without marks while the checks were still running: draw again with them.
    const late = Object.keys(markedNow).length === 0 && result.body ? marks(result.body.findings, cur) : {};
    return Object.keys(late).length ? drawn.then(() => draw(late)) : drawn;
  });

  const models = cur.models.slice().sort((a, b) => b.calls - a.calls).slice(0, 10);
  LP.fillTable("top-models", models.map((m) => [
    m.group.model ? LP.link("/models/" + encodeURIComponent(m.group.model), m.group.model) : "(no model: chains, tools, ...)",
    LP.num(m.calls), LP.pct(m.error_rate), LP.num(m.p95_latency_ms, 1),
    LP.num(m.total_tokens), LP.usd(m.cost_usd),
  ]));
  const versions = prompts.filter((p) => p.group.prompt_version).sort((a, b) => b.calls - a.calls).slice(0, 10);
  LP.fillTable("top-prompts", versions.map((p) => [
    p.group.prompt_version, LP.num(p.calls), LP.pct(p.error_rate), LP.num(p.p95_latency_ms, 1),
    LP.num(p.total_tokens), LP.usd(p.cost_usd),
  ]), "No call with a prompt version in this window.");
  await redrawn;
});
