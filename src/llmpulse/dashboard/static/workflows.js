// Workflows: pick one (?workflow=), see its flow (the server's SVG as an image: nothing in it
// runs), nodes and routes, branch shares over time, its runs (?outcome=, ?cursor=) and one run's
// path (?run=).
"use strict";
function workflowPath(name, rest) { return "/api/v1/workflows/" + encodeURIComponent(name) + rest; }

document.getElementById("workflow").addEventListener("change", (event) => {
  LP.setParams({ workflow: event.target.value, run: "", cursor: "" });
});
document.getElementById("first").addEventListener("click", () => LP.setParams({ cursor: "" }));
const outcomeField = document.querySelector("#run-filter select[name=outcome]");
outcomeField.addEventListener("change", () => LP.setParams({ outcome: outcomeField.value, cursor: "" }));
document.getElementById("next").addEventListener("click", (event) => LP.setParams({ cursor: event.target.dataset.cursor }));

function pickWorkflow(items) {
  const select = document.getElementById("workflow");
  const wanted = LP.params().get("workflow");
  select.replaceChildren(...items.map((w) => {
    const option = LP.el("option", w.name + " (" + LP.num(w.decisions) + " decisions)");
    option.value = w.name;
    return option;
  }));
  const names = items.map((w) => w.name);
  const chosen = names.includes(wanted) ? wanted : names[0];
  select.value = chosen;
  return chosen;
}

function drawFlow(name, win, flow, nodes) {
  const img = document.getElementById("flow-img");
  const src = workflowPath(name, "/flow.svg") + "?" + new URLSearchParams({ start: win.start, end: win.end });
  img.dataset.workflow = name;
  img.src = src;
  LP.fillTable("nodes", nodes.nodes.map((n) => [
    n.name, LP.num(n.calls), LP.num(n.errors), LP.pct(n.error_rate), LP.num(n.p95_latency_ms, 1),
    LP.usd(n.cost_per_call_usd),
  ]));
  LP.fillTable("edges", flow.edges.map((e, i) => ["R" + (i + 1), e.source, e.target, LP.num(e.count), LP.pct(e.share)]));
}

// Route names are user text: the chart's legend numbers them (R1, R2...) as the Routes table does.
function drawShares(flow, shares) {
  const number = new Map(flow.edges.map((e, i) => [e.source + "\u0000" + e.target, i + 1]));
  const x = shares.buckets.map((b) => new Date(b * 1000));
  const traces = shares.routes.map((r) => ({
    x: x, y: r.shares, type: "scatter", mode: "lines+markers", connectgaps: false,
    name: "R" + (number.get(r.source + "\u0000" + r.target) || "?"),
  }));
  LP.chart("chart-shares", "Share of each route in its decision (R numbers as in Routes)", traces, "share");
}

async function drawRuns(name, win) {
  outcomeField.value = LP.params().get("outcome") || "";
  const query = Object.assign({}, win, LP.filters(["outcome"]), { limit: 25 });
  const cursor = LP.params().get("cursor");
  if (cursor) query.cursor = cursor;
  const page = await LP.api(workflowPath(name, "/runs"), query);
  LP.fillTable("runs", page.items.map((r) => {
    const open = LP.link("?" + new URLSearchParams(Object.assign(Object.fromEntries(LP.params()), { run: r.trace_id })), LP.time(r.start_time));
    open.addEventListener("click", (event) => { event.preventDefault(); LP.setParams({ run: r.trace_id }); });
    const outcome = LP.el("span", r.outcome + (r.error_type ? " (" + r.error_type + ")" : ""), "outcome-" + r.outcome);
    return [open, outcome, LP.num(r.duration_ms, 1), LP.num(r.total_tokens), LP.usd(r.cost_usd),
      r.path.join(" → ") + (r.path_truncated ? " …" : "")];
  }), query.outcome ? "No run of this workflow ended " + query.outcome + " in this window." : "No run of this workflow in this window.");
  const next = document.getElementById("next");
  next.disabled = !page.next_cursor;
  next.dataset.cursor = page.next_cursor || "";
  document.getElementById("first").disabled = !cursor;
}

async function drawRun(name) {
  const traceId = LP.params().get("run");
  const detail = document.getElementById("run-detail");
  detail.hidden = !traceId;
  if (!traceId) return;
  const run = await LP.api(workflowPath(name, "/runs/" + encodeURIComponent(traceId)));
  document.getElementById("run-title").textContent = "Path of run " + traceId;
  document.getElementById("run-trace").href = "/traces/" + encodeURIComponent(traceId);
  document.getElementById("run-summary").textContent = run.run.outcome + " · " + LP.num(run.run.duration_ms, 1) +
    " ms · " + LP.usd(run.run.cost_usd) + (run.truncated ? " · only the first spans were costed" : "");
  const path = document.getElementById("run-path");
  path.replaceChildren(...run.run.path.map((node) => LP.el("li", node)));
  LP.fillTable("run-steps", run.steps.map((s) => [
    LP.el("span", s.node, s.status === "error" ? "error" : ""), LP.time(s.start_time),
    s.status + (s.error_type ? " (" + s.error_type + ")" : ""), LP.num(s.latency_ms, 1), LP.num(s.total_tokens), LP.usd(s.cost_usd),
  ]), "This run executed no node of the workflow (only its decisions were recorded).");
}

LP.page(async function () {
  const win = LP.range(0);
  const list = await LP.api("/api/v1/workflows", Object.assign({}, win, { limit: 500 }));
  document.getElementById("unavailable").hidden = list.items.length > 0;
  document.getElementById("workflow-view").hidden = list.items.length === 0;
  if (!list.items.length) return;
  const name = pickWorkflow(list.items);
  const [flow, nodes, shares] = await Promise.all([
    LP.api(workflowPath(name, "/flow"), win),
    LP.api(workflowPath(name, "/nodes"), Object.assign({}, win, { order: "p95" })),
    LP.api(workflowPath(name, "/branches"), win),
  ]);
  drawFlow(name, win, flow, nodes);
  drawShares(flow, shares);
  await drawRuns(name, win);
  await drawRun(name);
});
