// Overview: totals with the change against the previous window, series charts, top models.
"use strict";
LP.page(async function () {
  const now = LP.range(0), before = LP.range(1);
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
  LP.chart("chart-calls", "Requests", [{ x, y: col("calls"), type: "bar", name: "calls" }], "calls");
  LP.chart("chart-errors", "Error rate", [{ x, y: col("error_rate"), type: "scatter", name: "error rate" }], "share");
  LP.chart("chart-latency", "Latency", [
    { x, y: col("p50_latency_ms"), type: "scatter", name: "p50" },
    { x, y: col("p95_latency_ms"), type: "scatter", name: "p95" },
  ], "ms");
  LP.chart("chart-tokens", "Tokens", [
    { x, y: col("input_tokens"), type: "bar", name: "input" },
    { x, y: col("output_tokens"), type: "bar", name: "output" },
  ], "tokens");
  LP.chart("chart-cost", "Cost", [{ x, y: col("cost_usd"), type: "scatter", name: "cost" }], "USD");

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
});
