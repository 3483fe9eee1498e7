/**
 * The script of the dashboard's live pages (plain ES2017, no dependencies). It opens the page's
 * event stream (`<body data-events="…">`) and, at each `update` event, swaps in the new title line,
 * body and embedded data it carries and draws the figures again with the report's own script
 * (`window.__reportDraw`). The browser reconnects by itself when the stream drops.
 *
 * For tests and tools: `document.body.dataset.updates` counts the updates applied, and
 * `dataset.stream` is `open` or `lost`.
 *
 * @module
 */

/** Source of the live script (kept free of backticks and `${`). */
export const LIVE_SCRIPT = String.raw`
(function () {
  "use strict";
  var body = document.body;
  // a page without the report's script (the index) is ready as it is
  if (!document.getElementById("report-data")) body.dataset.ready = "1";
  var url = body.dataset.events;
  if (!url || !window.EventSource) return;
  var updates = 0;
  var stream = new EventSource(url);
  stream.onopen = function () { body.dataset.stream = "open"; };
  stream.onerror = function () { body.dataset.stream = "lost"; };
  stream.addEventListener("update", function (e) {
    var f;
    try {
      f = JSON.parse(e.data);
    } catch (err) {
      console.error("live: bad update: " + err.message);
      return;
    }
    var main = document.querySelector("main");
    if (main && typeof f.main === "string") main.innerHTML = f.main;
    var sub = document.querySelector("header .sub");
    if (sub && typeof f.sub === "string") sub.innerHTML = f.sub;
    var data = document.getElementById("report-data");
    if (data && typeof f.data === "string") data.textContent = f.data;
    if (typeof f.title === "string") document.title = f.title;
    updates++;
    body.dataset.updates = String(updates);
    if (window.__reportDraw && data) window.__reportDraw();
  });
})();
`;
