// Runs: filtered list; ?run= shows that run's metric points as step series.
"use strict";
LP.filterForm("filters", { run: "" });
document.getElementById("compare").addEventListener("click", () => {
  const ids = Array.from(document.querySelectorAll("#runs input[type=checkbox]:checked")).map((c) => c.value);
  LP.setParams({ compare: ids.join(",") });
});

// Summary metrics of the chosen runs side by side: one row per metric, one column per run.
async function compareRuns() {
  const ids = (LP.params().get("compare") || "").split(",").filter((id) => id);
  const box = document.getElementById("run-compare");
  box.hidden = ids.length === 0;
  if (!ids.length) return;
  const runs = await Promise.all(ids.slice(0, 10).map((id) => LP.api("/api/v1/runs/" + encodeURIComponent(id))));
  const head = LP.el("tr");
  head.appendChild(LP.el("th", "Metric"));
  for (const r of runs) head.appendChild(LP.el("th", r.name + " (" + r.run_id + ")"));
  document.querySelector("#compare-table thead").replaceChildren(head);
  const names = Array.from(new Set(runs.flatMap((r) => Object.keys(r.metrics)))).sort();
  LP.fillTable("compare-table", names.map((name) => [name, ...runs.map((r) => LP.num(r.metrics[name], 4))]),
    "These runs have no summary metrics.");
}
LP.page(async function () {
  const page = await LP.api("/api/v1/runs", Object.assign(LP.filters(["model", "experiment", "status"]), { limit: 100 }));
  LP.fillTable("runs", page.items.map((r) => {
    const open = LP.el("a", r.name);
    open.href = "#";
    open.addEventListener("click", (event) => { event.preventDefault(); LP.setParams({ run: r.run_id }); });
    const pick = LP.el("input");
    pick.type = "checkbox";
    pick.value = r.run_id;
    pick.checked = (LP.params().get("compare") || "").split(",").includes(r.run_id);
    pick.setAttribute("aria-label", "compare");
    return [pick, open, r.kind, r.experiment, r.model, r.status, LP.time(r.started_at),
      Object.entries(r.metrics).map(([k, v]) => k + "=" + LP.num(v, 4)).join(", ")];
  }), "No runs match.");
  await compareRuns();
  const runId = LP.params().get("run");
  const detail = document.getElementById("run-detail");
  detail.hidden = !runId;
  if (!runId) return;
  const metrics = await LP.api("/api/v1/runs/" + encodeURIComponent(runId) + "/metrics", { limit: 10000 });
  document.getElementById("run-title").textContent = "Run " + runId;
  const series = new Map();
  for (const p of metrics.items) {
    if (!series.has(p.name)) series.set(p.name, { x: [], y: [] });
    const s = series.get(p.name);
    s.x.push(p.step === null ? s.x.length : p.step);
    s.y.push(p.value);
  }
  // Metric names are user text: the legend shows them by number, the table below names them.
  const names = Array.from(series.keys());
  LP.chart("chart-run", "Metric points by step (series numbered as in the run's metric list)",
    names.map((name, i) => ({ x: series.get(name).x, y: series.get(name).y, type: "scatter", name: "series " + (i + 1) })), "value", "linear");
  const list = LP.el("ol", null, "series-names");
  for (const name of names) list.appendChild(LP.el("li", name));
  detail.querySelector(".series-names")?.remove();
  detail.appendChild(list);
});
