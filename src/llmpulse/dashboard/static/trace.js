// One trace: the span tree laid over the trace's timeline (a waterfall) and one span's details.
"use strict";
const LONG_TEXT = 2000; // prompts and responses longer than this start collapsed

function spanTree(spans) {
  const ids = new Set(spans.map((s) => s.span_id));
  const children = new Map();
  for (const s of spans) {
    const parent = s.parent_id && ids.has(s.parent_id) ? s.parent_id : null;
    if (!children.has(parent)) children.set(parent, []);
    children.get(parent).push(s);
  }
  const ordered = [];
  const walk = (parent, depth) => {
    for (const s of children.get(parent) || []) { ordered.push([s, depth]); walk(s.span_id, depth + 1); }
  };
  walk(null, 0);
  return ordered;
}

function showSpan(s) {
  document.getElementById("span-detail").hidden = false;
  document.getElementById("span-title").textContent = s.name + " (" + s.kind + ")";
  const fields = [
    ["span id", s.span_id], ["status", s.status + (s.error_type ? " · " + s.error_type : "")],
    ["error", s.error_message], ["model", s.model], ["provider", s.provider],
    ["prompt version", s.prompt_version], ["latency", LP.num(s.latency_ms, 1) + " ms"],
    ["time to first token", s.ttft_ms === null ? null : LP.num(s.ttft_ms, 1) + " ms"],
    ["tokens in / out / total", [s.input_tokens, s.output_tokens, s.total_tokens].map((v) => LP.num(v)).join(" / ")],
    ["cached / reasoning tokens", LP.num(s.cache_read_tokens) + " / " + LP.num(s.reasoning_tokens)],
    ["cost", LP.usd(s.cost_usd)], ["session", s.session_id], ["user", s.user_id], ["service", s.service],
  ].filter(([, v]) => v !== null && v !== undefined);
  LP.fillTable("span-fields", fields);
  document.getElementById("span-attributes").textContent = JSON.stringify(s.attributes, null, 2);
  document.getElementById("span-events").textContent = s.events.length ? JSON.stringify(s.events, null, 2) : "none";
  for (const part of ["input", "output"]) {
    const text = s[part];
    document.getElementById("span-" + part).textContent = text === null ? "(not recorded)" : text;
    document.getElementById("span-" + part + "-box").open = text !== null && text.length <= LONG_TEXT;
  }
}

LP.page(async function () {
  const id = encodeURIComponent(document.getElementById("page").dataset.arg);
  const [trace, page] = await Promise.all([
    LP.api("/api/v1/traces/" + id), LP.api("/api/v1/traces/" + id + "/spans", { limit: 1000 }),
  ]);
  document.getElementById("title").textContent = "Trace " + (trace.name || trace.trace_id);
  const cards = document.getElementById("cards");
  cards.replaceChildren();
  LP.card(cards, "Duration", LP.num(trace.duration_ms, 1) + " ms");
  LP.card(cards, "Spans", LP.num(trace.spans) + (page.next_cursor ? " (first 1000 shown)" : ""));
  LP.card(cards, "Errors", LP.num(trace.errors));
  LP.card(cards, "Tokens", LP.num(trace.total_tokens));
  LP.card(cards, "Cost", LP.usd(trace.cost_usd));
  const t0 = trace.start_time, total = Math.max(trace.end_time - trace.start_time, 1e-6);
  const box = document.getElementById("waterfall");
  box.replaceChildren();
  for (const [s, depth] of spanTree(page.items)) {
    const row = LP.el("button", null, "span-row" + (s.status === "error" ? " error" : ""));
    row.type = "button";
    const label = LP.el("span", s.name, "span-name");
    label.style.paddingLeft = depth * 1.2 + "em";
    const lane = LP.el("span", null, "lane");
    const bar = LP.el("span", null, "bar");
    bar.style.left = (100 * (s.start_time - t0)) / total + "%";
    bar.style.width = Math.max((100 * (s.end_time - s.start_time)) / total, 0.3) + "%";
    lane.appendChild(bar);
    row.append(label, lane, LP.el("span", LP.num(s.latency_ms, 1) + " ms", "span-ms"));
    row.addEventListener("click", () => showSpan(s));
    box.appendChild(row);
  }
  const selected = page.items.find((s) => s.span_id === LP.params().get("span")) || page.items[0];
  if (selected) showSpan(selected);
});
