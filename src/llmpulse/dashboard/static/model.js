// One model: model-performance over whole days (series, token split, prompt versions, runs).
"use strict";
LP.page(async function () {
  const model = document.getElementById("page").dataset.arg;
  const days = Math.max(1, Math.ceil(LP.windowSeconds() / 86400));
  document.getElementById("days").textContent = String(days);
  const d = await LP.api("/api/v1/dashboard/model-performance/" + encodeURIComponent(model), { days_back: days });
  const t = d.totals || {};
  const cards = document.getElementById("cards");
  cards.replaceChildren();
  LP.card(cards, "Calls", LP.num(t.calls || 0));
  LP.card(cards, "Error rate", LP.pct(t.error_rate || 0));
  LP.card(cards, "p95 latency", LP.num(t.p95_latency_ms, 1) + " ms");
  LP.card(cards, "Cost", LP.usd(t.cost_usd));
  if (d.catalog) {
    LP.card(cards, "Price in / out per 1M tokens",
      LP.usd(1e6 * (d.catalog.input_price_per_token || 0)) + " / " + LP.usd(1e6 * (d.catalog.output_price_per_token || 0)));
  }
  const x = d.daily.map((r) => new Date(r.bucket_start * 1000));
  const col = (name) => d.daily.map((r) => r[name]);
  LP.chart("chart-calls", "Calls and errors per day", [
    { x, y: col("calls"), type: "bar", name: "calls" },
    { x, y: col("errors"), type: "bar", name: "errors" },
  ], "calls");
  LP.chart("chart-latency", "Latency per day", [
    { x, y: col("p50_latency_ms"), type: "scatter", name: "p50" },
    { x, y: col("p95_latency_ms"), type: "scatter", name: "p95" },
  ], "ms");
  LP.chart("chart-tokens", "Token split per day", [
    { x, y: col("input_tokens"), type: "bar", name: "input" },
    { x, y: col("output_tokens"), type: "bar", name: "output" },
    { x, y: col("cache_read_tokens"), type: "bar", name: "cached" },
    { x, y: col("reasoning_tokens"), type: "bar", name: "reasoning" },
  ], "tokens");
  LP.chart("chart-cost", "Cost per day", [{ x, y: col("cost_usd"), type: "scatter", name: "cost" }], "USD");
  LP.fillTable("prompt-versions", d.prompt_versions.map((v) => [
    v.group.prompt_version || "(none)", LP.num(v.calls), LP.pct(v.error_rate),
    LP.num(v.p50_latency_ms, 1), LP.num(v.p95_latency_ms, 1), LP.num(v.total_tokens), LP.usd(v.cost_usd),
  ]));
  LP.fillTable("runs", d.runs.map((r) => [
    LP.link("/runs?run=" + encodeURIComponent(r.run_id), r.name), r.kind, r.status, LP.time(r.started_at),
    Object.entries(r.metrics).map(([k, v]) => k + "=" + LP.num(v, 4)).join(", "),
  ]), "No runs of this model.");
});
