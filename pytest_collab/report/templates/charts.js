/* pytest-collab report: draw every JSON chart spec (script.chart-spec) with uPlot
   (inlined above). Hover: values in the legend below the plot; drag: zoom x;
   double-click: reset. Test spans are shaded bands labelled with the test id. */
(function () {
  "use strict";
  function fmt(v) {
    if (v == null || isNaN(v)) return "-";
    var a = Math.abs(v);
    if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(2);
    return (+v.toPrecision(4)).toLocaleString("en-US", {maximumFractionDigits: 6});
  }
  /* a log axis spans the data, not whole decades around it */
  function logRange(u, min, max) { return [min / 1.15, max * 1.15]; }
  function tickValues(u, vals) { return vals.map(function (v) { return v == null ? "" : fmt(v); }); }
  function bandsHook(spec) {
    return function (u) {
      var ctx = u.ctx, box = u.bbox;
      ctx.save();
      ctx.beginPath();
      ctx.rect(box.left, box.top, box.width, box.height);
      ctx.clip();
      ctx.font = Math.round(11 * devicePixelRatio) + "px system-ui, sans-serif";
      ctx.textBaseline = "top";
      spec.bands.forEach(function (b, i) {
        var x0 = u.valToPos(b.from, "x", true), x1 = u.valToPos(b.to, "x", true);
        if (x1 < box.left || x0 > box.left + box.width) return;
        ctx.fillStyle = i % 2 ? "rgba(80,110,160,0.07)" : "rgba(80,110,160,0.14)";
        ctx.fillRect(x0, box.top, Math.max(x1 - x0, 1), box.height);
        ctx.strokeStyle = "rgba(60,70,90,0.45)";
        ctx.lineWidth = devicePixelRatio;
        ctx.beginPath(); ctx.moveTo(x0, box.top); ctx.lineTo(x0, box.top + box.height); ctx.stroke();
        var left = Math.max(x0, box.left), label = b.label;
        var room = Math.min(x1, box.left + box.width) - left - 6 * devicePixelRatio;
        if (room < 20 * devicePixelRatio) return;
        while (label.length > 3 && ctx.measureText(label).width > room) label = label.slice(0, -2);
        if (label !== b.label) label = label.slice(0, -1) + "\u2026";
        ctx.fillStyle = "rgba(30,35,48,0.75)";
        ctx.fillText(label, left + 3 * devicePixelRatio, box.top + 3 * devicePixelRatio);
      });
      ctx.restore();
    };
  }
  function draw(el) {
    var spec = JSON.parse(el.textContent);
    var holder = document.createElement("div");
    holder.className = "chart";
    el.parentNode.insertBefore(holder, el);
    var tables = spec.series.map(function (s) { return [s.x, s.y]; });
    /* NULL_EXPAND (2): a gap between tests spans to the neighbouring real points, so no
       stub of line is drawn across the alignment points of other series */
    var data = tables.length ? uPlot.join(tables, tables.map(function () { return [0, 2]; })) : [[]];
    var stepped = spec.step ? uPlot.paths.stepped({align: 1}) : undefined;
    var series = [{label: spec.step ? "x" : "t (s)", value: function (u, v) { return fmt(v); }}].concat(
      spec.series.map(function (s) {
        return {label: s.label, stroke: s.color, dash: s.dash, width: 1.5, spanGaps: false,
                paths: stepped, points: {show: false}, value: function (u, v) { return fmt(v); }};
      }));
    var width = Math.max(360, Math.min(holder.parentNode.clientWidth || 1000, 1100));
    var opts = {
      title: spec.title, width: width, height: spec.height, series: series,
      scales: {x: {time: false, distr: spec.xlog ? 3 : 1, range: spec.xlog ? logRange : undefined},
               y: {distr: spec.ylog ? 3 : 1,
                   range: spec.yrange ? function () { return spec.yrange; } : undefined}},
      axes: [
        {label: spec.xlabel, labelSize: 20, values: tickValues},
        {label: spec.ylabel, labelSize: 20, size: 64, values: tickValues}
      ],
      legend: {live: true},
      cursor: {drag: {x: true, y: false}},
      hooks: {drawClear: spec.bands.length ? [bandsHook(spec)] : []}
    };
    new uPlot(opts, data, holder);
  }
  document.querySelectorAll("script.chart-spec").forEach(function (el) {
    try { draw(el); } catch (e) {
      var p = document.createElement("p");
      p.className = "error";
      p.textContent = "chart could not be drawn: " + e;
      el.parentNode.insertBefore(p, el);
    }
  });
  /* sortable tables: click a header; numbers sort as numbers (data-v), text as text */
  document.querySelectorAll("table.sortable").forEach(function (table) {
    table.querySelectorAll("thead th").forEach(function (th, col) {
      th.tabIndex = 0;
      th.title = "sort";
      th.addEventListener("click", function () {
        var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
        var asc = th.getAttribute("aria-sort") !== "ascending";
        table.querySelectorAll("thead th").forEach(function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", asc ? "ascending" : "descending");
        function key(r) {
          var c = r.cells[col], v = c && c.getAttribute("data-v");
          return v !== null && v !== "" && !isNaN(+v) ? +v : (c ? c.textContent : "");
        }
        rows.sort(function (a, b) {
          var x = key(a), y = key(b);
          var d = (typeof x === "number" && typeof y === "number") ? x - y : String(x).localeCompare(String(y));
          return asc ? d : -d;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });
})();
