/**
 * The report page's own script (plain ES2017 JavaScript, no dependencies besides the inlined
 * chart.js). It reads the embedded JSON (`#report-data`), decodes the data columns, draws every
 * figure with chart.js (min–max decimation for long curves: the full data stay in the page) and
 * every weight montage on a canvas, then signals readiness for tests and tools:
 *
 * - `document.body.dataset.ready = "1"`, `dataset.charts`, `dataset.points`, `dataset.errors`;
 * - `window.__report = { charts: [{ id, title, datasets: [{ label, points, total }] }],
 *   montages: [{ id, units, width, height, inked }], errors: [] }`, where `points` is what chart.js
 *   drew after decimation and `total` the finite points in the data.
 *
 * Failures are reported with `console.error` and shown in place of the figure.
 * `window.__reportDraw()` draws the page again from the current `#report-data` and figure elements
 * (destroying the charts drawn before): the live pages of `deno task serve` call it after swapping
 * in new data.
 *
 * @module
 */

/** Source of the page script (kept free of backticks and `${`). */
export const CLIENT_SCRIPT = String.raw`
(function () {
  "use strict";
  // the chart objects of the last drawing, destroyed when the page is drawn again
  var drawn = [];
  function draw() {
  drawn.forEach(function (chart) { chart.destroy(); });
  drawn = [];
  var state = { charts: [], montages: [], errors: [] };
  window.__report = state;
  var body = document.body;
  body.dataset.ready = "0";

  function fail(where, err, el) {
    var msg = where + ": " + (err && err.message ? err.message : String(err));
    state.errors.push(msg);
    console.error("report: " + msg);
    if (el) {
      var p = document.createElement("p");
      p.className = "alert";
      p.textContent = "This figure could not be drawn (" + msg + ").";
      el.insertAdjacentElement("afterend", p);
    }
  }

  function finish() {
    var points = 0;
    state.charts.forEach(function (c) {
      c.datasets = c.chart.data.datasets.map(function (d, i) {
        var n = c.chart.getDatasetMeta(i).data.length;
        points += n;
        return { label: d.label, points: n, total: d.total };
      });
    });
    var charts = state.charts;
    state.charts = charts.map(function (c) {
      return { id: c.id, title: c.title, datasets: c.datasets };
    });
    body.dataset.charts = String(charts.length);
    body.dataset.points = String(points);
    body.dataset.errors = String(state.errors.length);
    body.dataset.ready = "1";
  }

  var data;
  try {
    data = JSON.parse(document.getElementById("report-data").textContent);
  } catch (e) {
    fail("embedded data", e, null);
    finish();
    return;
  }

  function bytesOf(b64) {
    var bin = atob(b64);
    var bytes = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return bytes;
  }

  var columnCache = {};
  function column(key) {
    if (columnCache[key]) return columnCache[key];
    var c = data.columns[key];
    if (!c) throw new Error("missing data column " + key);
    var bytes = bytesOf(c.b64);
    var arr = c.dtype === "f64" ? new Float64Array(bytes.buffer) : new Float32Array(bytes.buffer);
    if (arr.length !== c.n) throw new Error("data column " + key + " has " + arr.length + " values, expected " + c.n);
    columnCache[key] = arr;
    return arr;
  }

  function formatValue(v, format) {
    if (v === null || v === undefined || !isFinite(v)) return "";
    if (format === "percent") return (Math.round(v * 10000) / 100) + "%";
    if (format === "sci" || format === "log10") {
      if (v === 0) return "0";
      var a = Math.abs(v);
      return a >= 0.01 && a < 10000 ? String(Number(v.toPrecision(3))) : v.toExponential(2);
    }
    var abs = Math.abs(v);
    if (abs >= 1e4 && abs < 1e15 && Math.round(v) === v) {
      return abs >= 1e6 ? Number((v / 1e6).toPrecision(4)) + "M" : Number((v / 1e3).toPrecision(4)) + "k";
    }
    if (abs !== 0 && (abs >= 1e6 || abs < 1e-3)) return v.toExponential(2);
    return String(Number(v.toPrecision(4)));
  }

  function tickCallback(axis, type) {
    if (type === "category") return undefined;
    if (axis.format === "percent") {
      return function (v) { return Math.round(v * 1000) / 10 + "%"; };
    }
    if (type === "logarithmic") {
      return function (v) {
        var l = Math.log10(v);
        if (Math.abs(l - Math.round(l)) > 1e-9) return "";
        var e = Math.round(l);
        return e >= -2 && e <= 3 ? String(Math.pow(10, e)) : "1e" + e;
      };
    }
    return function (v) { return formatValue(v, axis.format); };
  }

  function scale(axis, fallbackType) {
    var s = {
      type: axis.type || fallbackType,
      title: { display: true, text: axis.label, font: { weight: "600" } },
      ticks: { maxRotation: 0, autoSkipPadding: 8 },
      grid: { color: "#ececec" },
    };
    if (axis.min !== undefined && axis.min !== null) s.min = axis.min;
    if (axis.max !== undefined && axis.max !== null) s.max = axis.max;
    var cb = tickCallback(axis, s.type);
    if (cb) s.ticks.callback = cb;
    if (s.type === "category") s.ticks.maxRotation = 60;
    return s;
  }

  // the finite points of two columns; "kept" (when given) receives the index of each
  function pointsOf(xKey, yKey, kept) {
    var ys = column(yKey);
    var xs = xKey ? column(xKey) : null;
    var out = [];
    for (var i = 0; i < ys.length; i++) {
      var x = xs ? xs[i] : i;
      var y = ys[i];
      if (isFinite(x) && isFinite(y)) {
        out.push({ x: x, y: y });
        if (kept) kept.push(i);
      }
    }
    return out;
  }

  function valuesOf(yKey) {
    var ys = column(yKey);
    var out = new Array(ys.length);
    var finite = 0;
    for (var i = 0; i < ys.length; i++) {
      if (isFinite(ys[i])) { out[i] = ys[i]; finite++; } else out[i] = null;
    }
    return { values: out, finite: finite };
  }

  function dataset(fig, s) {
    var isBar = fig.kind === "bar";
    var scatter = fig.kind === "scatter";
    var d = {
      label: s.label,
      borderColor: s.color,
      backgroundColor: s.color,
      borderWidth: s.width || (isBar && s.type !== "line" ? 0 : 1.6),
      borderDash: s.dash ? [6, 4] : [],
      pointRadius: s.pointRadius !== undefined ? s.pointRadius : (scatter ? 3.5 : 0),
      pointHoverRadius: 4,
      pointStyle: s.pointStyle || "circle",
      showLine: s.line !== undefined ? s.line : !scatter,
      fill: false,
      spanGaps: false,
      group: s.group,
      inLegend: s.legend !== false,
    };
    if (s.type) d.type = s.type;
    if (isBar) {
      var v = valuesOf(s.y);
      d.data = v.values;
      d.total = v.finite;
      if (s.type === "line") d.pointRadius = 0;
    } else {
      var kept = s.pointColors || s.tooltips ? [] : null;
      d.data = pointsOf(s.x, s.y, kept);
      d.total = d.data.length;
      if (s.pointColors) {
        d.backgroundColor = kept.map(function (i) { return s.pointColors[i]; });
        d.pointBackgroundColor = d.backgroundColor;
      }
      if (s.tooltips) d.tips = kept.map(function (i) { return s.tooltips[i] || []; });
    }
    return d;
  }

  function legendClick(e, item, legend) {
    var chart = legend.chart;
    var ds = chart.data.datasets;
    var group = ds[item.datasetIndex].group;
    var visible = chart.isDatasetVisible(item.datasetIndex);
    ds.forEach(function (d, i) {
      if (i === item.datasetIndex || (group && d.group === group)) chart.setDatasetVisibility(i, !visible);
    });
    chart.update();
  }

  function chartConfig(fig) {
    var isBar = fig.kind === "bar";
    var datasets = fig.series.map(function (s) { return dataset(fig, s); });
    var legendShown = fig.legend !== undefined ? fig.legend : datasets.length > 1;
    return {
      type: isBar ? "bar" : fig.kind === "scatter" ? "scatter" : "line",
      data: { labels: isBar ? fig.categories : undefined, datasets: datasets },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: true,
        aspectRatio: fig.aspect || 1.6,
        parsing: isBar ? true : false,
        normalized: true,
        interaction: fig.kind === "line"
          ? { mode: "nearest", axis: "x", intersect: false }
          : { mode: "nearest", intersect: true },
        plugins: {
          decimation: { enabled: fig.kind === "line", algorithm: "min-max" },
          legend: {
            display: legendShown,
            position: "bottom",
            onClick: legendClick,
            labels: {
              usePointStyle: fig.kind === "scatter",
              boxWidth: 14,
              boxHeight: fig.kind === "line" ? 2 : fig.kind === "bar" ? 10 : 8,
              filter: function (item, chartData) {
                return chartData.datasets[item.datasetIndex].inLegend !== false;
              },
            },
          },
          tooltip: {
            callbacks: {
              title: function (items) {
                if (!items.length) return "";
                if (isBar) return items[0].label;
                var tips = items[0].dataset.tips;
                if (tips) return tips[items[0].dataIndex][0] || "";
                return fig.x.label + " " + formatValue(items[0].parsed.x, fig.x.format);
              },
              label: function (item) {
                if (item.dataset.tips) return item.dataset.tips[item.dataIndex].slice(1);
                return item.dataset.label + ": " + formatValue(item.parsed.y, fig.y.format);
              },
            },
          },
        },
        scales: { x: scale(fig.x, isBar ? "category" : "linear"), y: scale(fig.y, "linear") },
      },
    };
  }

  Chart.defaults.font.family = "system-ui, -apple-system, 'Segoe UI', Roboto, Arial, sans-serif";
  Chart.defaults.font.size = 12;
  Chart.defaults.color = "#3c4043";

  (data.figures || []).forEach(function (fig) {
    var el = document.getElementById(fig.id);
    try {
      if (!el) throw new Error("no element #" + fig.id);
      var canvas = el.querySelector("canvas");
      var chart = new Chart(canvas, chartConfig(fig));
      drawn.push(chart);
      state.charts.push({ id: fig.id, title: fig.title, chart: chart });
    } catch (e) {
      fail("figure " + fig.id, e, el);
    }
  });

  function drawMontage(m) {
    var canvas = document.getElementById(m.id);
    var bytes = bytesOf(m.b64);
    var w = m.width, h = m.height, plane = w * h, gap = 2;
    var labelH = m.labels ? 16 : 0;
    var tw = w * m.scale, th = h * m.scale;
    var rows = Math.ceil(m.units / m.cols);
    canvas.width = m.cols * (tw + gap) + gap;
    canvas.height = rows * (th + gap + labelH) + gap;
    var ctx = canvas.getContext("2d");
    ctx.fillStyle = "#ffffff";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.imageSmoothingEnabled = false;
    var tile = document.createElement("canvas");
    tile.width = w;
    tile.height = h;
    var tctx = tile.getContext("2d");
    var img = tctx.createImageData(w, h);
    for (var u = 0; u < m.units; u++) {
      var base = u * 3 * plane;
      for (var p = 0; p < plane; p++) {
        img.data[4 * p] = bytes[base + p];
        img.data[4 * p + 1] = bytes[base + plane + p];
        img.data[4 * p + 2] = bytes[base + 2 * plane + p];
        img.data[4 * p + 3] = 255;
      }
      tctx.putImageData(img, 0, 0);
      var x = gap + (u % m.cols) * (tw + gap);
      var y = gap + Math.floor(u / m.cols) * (th + gap + labelH);
      ctx.drawImage(tile, x, y, tw, th);
      if (m.labels) {
        ctx.fillStyle = "#3c4043";
        ctx.font = "12px system-ui, sans-serif";
        ctx.textAlign = "center";
        ctx.textBaseline = "top";
        ctx.fillText(m.labels[u], x + tw / 2, y + th + 2, tw);
      }
    }
    var px = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
    var inked = 0;
    for (var i = 0; i < px.length; i += 4) {
      if (px[i] !== 255 || px[i + 1] !== 255 || px[i + 2] !== 255) inked++;
    }
    state.montages.push({ id: m.id, units: m.units, width: canvas.width, height: canvas.height, inked: inked });
  }

  (data.montages || []).forEach(function (m) {
    try {
      drawMontage(m);
    } catch (e) {
      fail("montage " + m.id, e, document.getElementById(m.id));
    }
  });

  requestAnimationFrame(function () { requestAnimationFrame(finish); });
  }
  // the live pages of deno task serve swap in new data and draw again
  window.__reportDraw = draw;
  draw();
})();
`;
