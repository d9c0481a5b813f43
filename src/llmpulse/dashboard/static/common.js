// llmpulse dashboard: helpers shared by every page. Every value from the API is written with
// textContent (never parsed as HTML), so data is always text. No globals besides LP.
"use strict";
(function () {
  const WINDOWS = { "15m": 900, "1h": 3600, "6h": 21600, "24h": 86400, "7d": 604800 };
  const REFRESH_MS = 30000;
  let loader = null;
  let timer = null;

  function params() { return new URLSearchParams(window.location.search); }
  // A custom range (?from=&to=, the datetime-local values, local time) beats the picker.
  function custom() {
    const from = Date.parse(params().get("from") || ""), to = Date.parse(params().get("to") || "");
    return Number.isFinite(from) && Number.isFinite(to) && to > from ? { start: from / 1000, end: to / 1000 } : null;
  }
  function windowName() {
    if (custom()) return "custom";
    const w = params().get("w");
    return w in WINDOWS ? w : "1h";
  }
  function windowSeconds() { const c = custom(); return c ? c.end - c.start : WINDOWS[windowName()]; }
  function range(shift) {
    const c = custom();
    const end = (c ? c.end : Date.now() / 1000) - (shift || 0) * windowSeconds();
    return { start: end - windowSeconds(), end: end };
  }

  // Set (or with "" remove) URL parameters, record them in history, then reload the data.
  function setParams(values) {
    const p = params();
    for (const [name, value] of Object.entries(values)) {
      if (value === "" || value === null || value === undefined) p.delete(name);
      else p.set(name, value);
    }
    const query = p.toString();
    window.history.pushState(null, "", window.location.pathname + (query ? "?" + query : ""));
    refresh();
  }

  async function problem(response) {
    try {
      const body = await response.json();
      return body.detail || body.title || response.statusText;
    } catch (e) { return response.statusText; }
  }

  async function api(path, query) {
    const url = new URL(path, window.location.origin);
    for (const [name, value] of Object.entries(query || {})) {
      if (value !== "" && value !== null && value !== undefined) url.searchParams.set(name, value);
    }
    const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(path + ": " + response.status + " " + await problem(response));
    return response.json();
  }

  async function send(method, path, body) {
    const token = document.querySelector('meta[name="csrf-token"]').content;
    const response = await fetch(path, {
      method: method, credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": token },
      body: JSON.stringify(body),
    });
    if (!response.ok) throw new Error(method + " " + path + ": " + response.status + " " + await problem(response));
    return response.json();
  }

  function el(tag, text, cls) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (cls) node.className = cls;
    return node;
  }

  function link(href, text) { const a = el("a", text); a.href = href; return a; }

  function fillTable(id, rows, empty) {
    const body = document.querySelector("#" + id + " tbody");
    body.replaceChildren();
    if (!rows.length) {
      const cell = el("td", empty || "Nothing in this window.", "muted");
      cell.colSpan = document.querySelectorAll("#" + id + " thead th").length || 2;
      const tr = el("tr"); tr.appendChild(cell); body.appendChild(tr);
      return;
    }
    for (const cells of rows) {
      const tr = el("tr");
      for (const cell of cells) {
        const td = el("td");
        if (cell instanceof Node) td.appendChild(cell); else td.textContent = cell === null || cell === undefined ? "–" : String(cell);
        tr.appendChild(td);
      }
      body.appendChild(tr);
    }
  }

  function num(value, digits) {
    if (value === null || value === undefined) return "–";
    return Number(value).toLocaleString("en-US", { maximumFractionDigits: digits === undefined ? 0 : digits });
  }
  function pct(value) { return value === null || value === undefined ? "–" : (100 * value).toFixed(2) + " %"; }
  function usd(value) { return value === null || value === undefined ? "–" : "$" + Number(value).toFixed(4); }
  function time(seconds) { return seconds ? new Date(seconds * 1000).toISOString().replace("T", " ").slice(0, 19) : "–"; }

  // A stat card: label, value and, when a previous value is known, the change against it.
  function card(container, label, value, current, previous) {
    const box = el("div", null, "card");
    box.appendChild(el("div", label, "label"));
    box.appendChild(el("div", value, "value"));
    if (previous !== undefined) {
      let change = "no previous data";
      if (previous && current !== null && current !== undefined) {
        const ratio = (current - previous) / previous;
        change = (ratio >= 0 ? "+" : "") + (100 * ratio).toFixed(1) + " % vs previous window";
      }
      box.appendChild(el("div", change, "change"));
    }
    container.appendChild(box);
  }

  // plotly.js loads after our scripts (a page's data requests start before the browser spends
  // its time evaluating plotly); charts wait for it, tables and numbers do not.
  let plotly = null;
  function plotlyReady() {
    if (window.Plotly) return Promise.resolve(window.Plotly);
    if (!plotly) {
      plotly = new Promise((resolve, reject) => {
        const tag = document.getElementById("plotly");
        if (!tag) { reject(new Error("this page does not load plotly.js")); return; }
        tag.addEventListener("load", () => resolve(window.Plotly));
        tag.addEventListener("error", () => reject(new Error("plotly.js did not load")));
      });
    }
    return plotly;
  }
  let drawing = [];

  // Plot one chart (once plotly.js is there); traces carry numbers and dates only, never user
  // text (plotly reads some HTML in labels). `extra` is merged into the layout (shapes...).
  function chart(id, title, traces, yTitle, xType, extra) {
    const node = document.getElementById(id);
    const layout = Object.assign({
      title: { text: title, font: { size: 14 } }, height: 260,
      margin: { l: 50, r: 10, t: 36, b: 36 }, yaxis: { title: { text: yTitle || "" }, rangemode: "tozero" },
      xaxis: { type: xType || "date" }, showlegend: traces.length > 1, legend: { orientation: "h" },
    }, extra || {});
    const job = plotlyReady().then((Plotly) => Plotly.react(node, traces, layout, { displaylogo: false, responsive: true }))
      .then(() => {
        node.dataset.points = String(traces.reduce((n, t) => n + t.x.length, 0));
        node.dataset.marks = String((layout.shapes || []).length);
      });
    drawing.push(job);
    return job;
  }

  function showError(error) {
    const box = document.getElementById("error");
    if (error) { box.textContent = String(error.message || error); box.hidden = false; }
    else { box.textContent = ""; box.hidden = true; }
  }

  async function refresh() {
    for (const button of document.querySelectorAll("[data-window]")) {
      button.setAttribute("aria-pressed", String(button.dataset.window === windowName()));
    }
    const paused = params().get("paused") === "1";
    const pause = document.getElementById("pause");
    pause.textContent = paused ? "Resume" : "Pause";
    pause.setAttribute("aria-pressed", String(paused));
    if (!loader) return;
    document.body.dataset.ready = "false";
    try {
      await loader();
      await Promise.all(drawing.splice(0));
      showError(null);
      document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString();
    } catch (error) {
      drawing = [];
      showError(error);
    }
    document.body.dataset.ready = "true";
    clearTimeout(timer);
    if (!paused) timer = setTimeout(refresh, REFRESH_MS);
  }

  // A page registers its loader once; it runs now, on every URL change and on each refresh.
  // Scripts are deferred, so the document is parsed when this runs: no need to wait for
  // DOMContentLoaded (which also waits for plotly.js).
  function page(load) {
    loader = load;
    const start = function () {
      for (const button of document.querySelectorAll("[data-window]")) {
        button.addEventListener("click", () => setParams({ w: button.dataset.window, from: "", to: "" }));
      }
      const form = document.getElementById("custom-window");
      const sync = () => {
        form.elements.from.value = params().get("from") || "";
        form.elements.to.value = params().get("to") || "";
      };
      sync();
      window.addEventListener("popstate", sync);
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        setParams({ from: form.elements.from.value, to: form.elements.to.value });
      });
      document.getElementById("pause").addEventListener("click", () => {
        setParams({ paused: params().get("paused") === "1" ? "" : "1" });
      });
      window.addEventListener("popstate", refresh);
      refresh();
    };
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
    else start();
  }

  // A filter form mirrors the URL: its fields start from it and submitting writes them back.
  function filterForm(id, extra) {
    const form = document.getElementById(id);
    const sync = () => { for (const field of form.elements) if (field.name) field.value = params().get(field.name) || ""; };
    sync();
    window.addEventListener("popstate", sync); // Back and Forward bring the fields back too
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const values = Object.assign({}, extra || {});
      for (const field of form.elements) if (field.name) values[field.name] = field.value.trim();
      setParams(values);
    });
  }

  function filters(names) {
    const out = {};
    for (const name of names) { const v = params().get(name); if (v) out[name] = v; }
    return out;
  }

  window.LP = {
    api, send, el, link, fillTable, num, pct, usd, time, card, chart, page, params, range,
    windowSeconds, setParams, filterForm, filters, showError,
  };
})();
