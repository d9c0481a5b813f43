// Traces: filters in the URL, newest first, cursor pages (the cursor is in the URL too).
"use strict";
const TRACE_FILTERS = ["model", "status", "name", "session_id", "user_id", "service", "min_latency_ms", "min_cost_usd"];
LP.filterForm("filters", { cursor: "" });
document.getElementById("first").addEventListener("click", () => LP.setParams({ cursor: "" }));
document.getElementById("next").addEventListener("click", (event) => {
  LP.setParams({ cursor: event.target.dataset.cursor });
});
LP.page(async function () {
  const query = Object.assign(LP.range(0), LP.filters(TRACE_FILTERS), { limit: 50 });
  const cursor = LP.params().get("cursor");
  if (cursor) query.cursor = cursor;
  const page = await LP.api("/api/v1/traces", query);
  LP.fillTable("traces", page.items.map((t) => [
    LP.time(t.start_time), LP.link("/traces/" + encodeURIComponent(t.trace_id), t.name || t.trace_id),
    t.service, LP.num(t.duration_ms, 1), LP.num(t.spans), LP.num(t.errors), LP.num(t.total_tokens), LP.usd(t.cost_usd),
  ]), "No trace matches in this window.");
  const next = document.getElementById("next");
  next.disabled = !page.next_cursor;
  next.dataset.cursor = page.next_cursor || "";
  document.getElementById("first").disabled = !cursor;
});
