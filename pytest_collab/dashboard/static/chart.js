// A small canvas line chart (no library): one series, time on x, auto-scaled y.
"use strict";

function drawChart(canvas, ts, ys, opts) {
  const ctx = canvas.getContext("2d");
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight;
  if (canvas.width !== w * dpr) { canvas.width = w * dpr; canvas.height = h * dpr; }
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  const pad = {l: 48, r: 6, t: 16, b: 16};
  const pts = ts.map((t, i) => [t, ys[i]]).filter(p => p[1] !== null && p[1] !== undefined);
  ctx.font = "10px system-ui, sans-serif";
  ctx.fillStyle = "#555";
  ctx.fillText(opts.title, pad.l, 11);
  if (!pts.length) { ctx.fillText("no data", pad.l, h / 2); return; }
  const now = opts.now, span = opts.span;
  let max = Math.max(...pts.map(p => p[1]), opts.min || 0);
  if (max <= 0) max = 1;
  max *= 1.1;
  const x = t => pad.l + (w - pad.l - pad.r) * (1 - (now - t) / span);
  const y = v => h - pad.b - (h - pad.t - pad.b) * (v / max);
  ctx.strokeStyle = "#ddd"; ctx.lineWidth = 1;
  for (const f of [0, 0.5, 1]) {
    const v = max * f;
    ctx.beginPath(); ctx.moveTo(pad.l, y(v)); ctx.lineTo(w - pad.r, y(v)); ctx.stroke();
    ctx.fillText(opts.fmt(v), 2, y(v) + 3);
  }
  ctx.strokeStyle = opts.color || "#1f6fb2"; ctx.lineWidth = 1.5;
  ctx.beginPath();
  pts.forEach((p, i) => (i ? ctx.lineTo(x(p[0]), y(p[1])) : ctx.moveTo(x(p[0]), y(p[1]))));
  ctx.stroke();
  const last = pts[pts.length - 1][1];
  ctx.fillStyle = "#222";
  const label = opts.fmt(last);
  ctx.fillText(label, w - pad.r - ctx.measureText(label).width, 11);
}
