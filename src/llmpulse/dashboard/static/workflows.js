// Workflows: no data source yet; the page says so (no empty charts) and only keeps the header.
"use strict";
LP.page(async function () {});
