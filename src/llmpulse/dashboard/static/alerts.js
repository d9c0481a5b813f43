// Alerts: newest first, filtered by state; acknowledge or resolve (needs an admin key).
"use strict";
LP.filterForm("filters");
async function change(alert, action) {
  try {
    await LP.send("PUT", "/api/v1/alerts/" + alert.id, { action: action, who: "dashboard", note: "from the dashboard" });
    LP.setParams({});
  } catch (error) { LP.showError(error); }
}
async function silence(alert) {
  const matchers = Object.entries(alert.labels).map(([name, value]) => ({ name: name, op: "=", value: value }));
  const ends = String(Math.round(Date.now() / 1000) + 3600);
  try {
    await LP.send("POST", "/api/v1/alerts/silences", {
      matchers: matchers, ends_at: ends, created_by: "dashboard", comment: "silenced for 1 h from the dashboard",
    });
    LP.setParams({});
  } catch (error) { LP.showError(error); }
}

function button(label, action, onClick) {
  const b = LP.el("button", label);
  b.type = "button";
  b.dataset.action = action;
  b.addEventListener("click", onClick);
  return b;
}

LP.page(async function () {
  const page = await LP.api("/api/v1/alerts", Object.assign(LP.filters(["state"]), { limit: 200 }));
  LP.fillTable("alerts", page.items.map((a) => {
    const actions = LP.el("span");
    if (a.state === "firing") actions.appendChild(button("Acknowledge", "acknowledge", () => change(a, "acknowledge")));
    if (a.state !== "resolved") {
      actions.appendChild(button("Resolve", "resolve", () => change(a, "resolve")));
      actions.appendChild(button("Silence 1 h", "silence", () => silence(a)));
    }
    return [LP.time(a.fired_at), a.rule, a.severity, a.state, a.summary,
      Object.entries(a.labels).map(([k, v]) => k + "=" + v).join(", "), actions];
  }), "No alerts.");
  const [silences, rules] = await Promise.all([
    LP.api("/api/v1/alerts/silences"), LP.api("/api/v1/alerts/rules"),
  ]);
  LP.fillTable("silences", silences.map((x) => [
    x.state, x.matchers.map((m) => m.name + m.op + m.value).join(", "), x.ends_at, x.created_by, x.comment,
  ]), "No active silence.");
  LP.fillTable("rules", rules.map((r) => [r.name, r.source, JSON.stringify(r.spec)]), "No rules.");
});
