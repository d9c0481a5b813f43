// Models: one row per model over the window, from the overview's per-model rollups.
"use strict";
LP.page(async function () {
  const data = await LP.api("/api/v1/dashboard/overview", LP.range(0));
  const rows = data.models.slice().sort((a, b) => b.calls - a.calls);
  LP.fillTable("models", rows.map((m) => [
    m.group.model ? LP.link("/models/" + encodeURIComponent(m.group.model) + window.location.search, m.group.model) : "(no model: chains, tools, ...)",
    LP.num(m.calls), LP.num(m.errors), LP.num(m.p95_latency_ms, 1), LP.num(m.total_tokens),
    LP.usd(m.cost_usd), m.cost_usd === null ? "–" : LP.usd((1000 * m.cost_usd) / Math.max(m.calls, 1)),
  ]));
});
