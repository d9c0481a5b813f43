// System: the health endpoint (store reachability and revision, the ingest gate).
"use strict";
LP.page(async function () {
  const response = await fetch("/api/v1/health", { credentials: "same-origin" });
  const h = await response.json(); // 503 still carries the body: show it
  const cards = document.getElementById("cards");
  cards.replaceChildren();
  LP.card(cards, "Status", h.status);
  LP.card(cards, "Version", h.version);
  LP.card(cards, "Uptime", LP.num(h.uptime_seconds / 3600, 2) + " h");
  LP.card(cards, "Keys required", h.auth_required ? "yes" : "no");
  LP.fillTable("store", Object.entries(h.store).map(([k, v]) => [k, v]));
  LP.fillTable("ingest", Object.entries(h.ingest).map(([k, v]) => [k, v]));
});
