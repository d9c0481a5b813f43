// Alerts: newest first, filtered by state; acknowledge or resolve (needs an admin key).
"use strict";
LP.filterForm("filters");
async function change(alert, action) {
  try {
    await LP.send("PUT", "/api/v1/alerts/" + alert.id, { action: action, who: "dashboard", note: "from the dashboard" });
    LP.setParams({});
  } catch (error) { LP.showError(error); }
}
LP.page(async function () {
  const page = await LP.api("/api/v1/alerts", Object.assign(LP.filters(["state"]), { limit: 200 }));
  LP.fillTable("alerts", page.items.map((a) => {
    const actions = LP.el("span");
    if (a.state === "firing") {
      const ack = LP.el("button", "Acknowledge"); ack.type = "button"; ack.dataset.action = "acknowledge";
      ack.addEventListener("click", () => change(a, "acknowledge"));
      actions.appendChild(ack);
    }
    if (a.state !== "resolved") {
      const resolve = LP.el("button", "Resolve"); resolve.type = "button"; resolve.dataset.action = "resolve";
      resolve.addEventListener("click", () => change(a, "resolve"));
      actions.appendChild(resolve);
    }
    return [LP.time(a.fired_at), a.rule, a.severity, a.state, a.summary,
      Object.entries(a.labels).map(([k, v]) => k + "=" + v).join(", "), actions];
  }), "No alerts.");
});
