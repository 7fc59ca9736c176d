// Live page: sessions streamed by Server-Sent Events; charts per device; a program's log tail.
"use strict";

const root = document.getElementById("sessions");
const cards = new Map();      // session id -> {card, parts, devices: Map(name -> {box, canvases, now})}
let selected = null;          // {run, path, title}

const METRICS = [
  {key: "cpu", title: "CPU %", fmt: v => `${v.toFixed(0)} %`, color: "#1f6fb2", min: 100},
  {key: "mem", title: "memory", fmt: fmtBytes, color: "#7a3fb0"},
  {key: "net", title: "network rx+tx /s", fmt: v => fmtBytes(v) + "/s", color: "#1b8a5a", min: 1000},
  {key: "power", title: "power W", fmt: v => `${v.toFixed(2)} W`, color: "#c0392b", min: 1},
];

function sessionCard(s) {
  let entry = cards.get(s.id);
  if (!entry) {
    const card = el("div", {class: "session", dataset: {session: s.id}});
    const head = el("div", {});
    const tests = el("div", {});
    const programs = el("div", {});
    const grid = el("div", {class: "devices"});
    card.append(head, tests, programs, grid);
    entry = {card, head, tests, programs, grid, devices: new Map()};
    cards.set(s.id, entry);
  }
  entry.card.classList.toggle("gone", !s.alive);
  entry.grid.hidden = !s.alive;  // an ended session has nothing left to draw
  const folded = !s.alive && !entry.open;  // ended sessions fold to one line; a click unfolds
  entry.tests.hidden = folded;
  entry.programs.hidden = folded || !s.programs.length;
  const state = s.alive ? "running" : (s.state === "finished" ? "finished" : "gone (pytest ended without finishing)");
  const toggle = s.alive ? null : el("button", {onclick: () => { entry.open = !entry.open; sessionCard(s); }},
                                     entry.open ? "hide" : "details");
  entry.head.replaceChildren(
    el("h2", {}, `${s.run_id} · ${s.worker}`, " ", el("span", {class: "pill " + (s.alive ? "running" : "")}, state), " ", toggle),
    el("div", {class: "muted"}, `${s.user}@${s.host} pid ${s.pid} · profile ${s.profile} · started ${fmtTime(s.started)} · `,
       Object.entries(s.counts).map(([k, v]) => `${v} ${k}`).join(", ") || "no test finished yet"));
  const testRows = s.tests.map(t => el("tr", {dataset: {test: t.nodeid}},
    el("td", {}, t.nodeid), el("td", {}, el("span", {class: "pill " + t.state}, t.label)),
    el("td", {class: "num"}, t.duration_s !== undefined ? fmtDuration(t.duration_s) : fmtDuration(Date.now() / 1000 - t.since)),
    el("td", {}, t.devices ? Object.entries(t.devices).map(([k, v]) => `${k}: ${v.join(", ")}`).join("; ") : "-")));
  entry.tests.replaceChildren(el("table", {class: "data tests"},
    el("thead", {}, el("tr", {}, el("th", {}, "test"), el("th", {}, "state"), el("th", {}, "time"), el("th", {}, "devices"))),
    el("tbody", {}, testRows)));
  const progRows = s.programs.map(p => el("tr", {dataset: {program: p.name, device: p.device}},
    el("td", {}, el("b", {}, p.name)), el("td", {}, p.device), el("td", {}, el("span", {class: "pill " + (p.status === "running" ? "running" : "")}, p.status)),
    el("td", {class: "num"}, p.status === "running" && p.cpu != null ? `${p.cpu.toFixed(0)} %` : "-"),
    el("td", {class: "num"}, p.status === "running" ? fmtBytes(p.rss) : "-"), el("td", {class: "muted"}, p.test),
    el("td", {}, el("a", {class: "log", onclick: () => selectLog(s.run_id, p)}, "log"))));
  entry.programs.replaceChildren(el("table", {class: "data programs"},
    el("thead", {}, el("tr", {}, ["program", "device", "status", "CPU", "memory", "test", ""].map(h => el("th", {}, h)))),
    el("tbody", {}, progRows)));
  for (const [name, series] of Object.entries(s.devices)) {
    let dev = entry.devices.get(name);
    if (!dev) {
      const canvases = METRICS.map(m => el("canvas", {dataset: {metric: m.key}}));
      const now = el("div", {class: "now"});
      const box = el("div", {class: "device", dataset: {device: name}}, el("h3", {}, name), now, el("div", {class: "charts"}, canvases));
      entry.grid.append(box);
      dev = {box, canvases, now};
      entry.devices.set(name, dev);
    }
    const last = key => (series[key] && series[key].length ? series[key][series[key].length - 1] : null);
    dev.now.replaceChildren(...METRICS.map(m => el("span", {class: "metric", dataset: {metric: m.key}},
      `${m.title}: `, last(m.key) === null ? "-" : m.fmt(last(m.key)), "   ")));
    const now = Date.now() / 1000;
    const span = series.t.length ? Math.min(90, Math.max(20, now - series.t[0])) : 90;  // a young run fills the chart
    METRICS.forEach((m, i) => drawChart(dev.canvases[i], series.t, series[m.key],
      {title: m.title, fmt: m.fmt, color: m.color, min: m.min, now, span}));
  }
  return entry.card;
}

function render(snap) {
  document.getElementById("stamp").textContent = "last update " + new Date(snap.time * 1000).toLocaleTimeString();
  const ids = new Set(snap.sessions.map(s => s.id));
  for (const id of [...cards.keys()]) if (!ids.has(id)) { cards.get(id).card.remove(); cards.delete(id); }
  document.getElementById("none").hidden = snap.sessions.some(s => s.alive);
  for (const s of snap.sessions) root.append(sessionCard(s));  // append moves: keeps the order
}

function selectLog(run, p) {
  selected = {run, path: p.log, title: `${p.name} on ${p.device} (${p.test})`};
  document.getElementById("logbox").hidden = false;
  document.getElementById("logtitle").textContent = "log: " + selected.title;
  pollLog();
}

async function pollLog() {
  if (!selected) return;
  const q = new URLSearchParams({run: selected.run, path: selected.path, lines: 200});
  const data = await api("GET", "/api/live/log?" + q);
  if (data) {
    const box = document.getElementById("log");
    const atEnd = box.scrollTop + box.clientHeight >= box.scrollHeight - 4;
    box.textContent = data.lines.join("\n");
    if (atEnd) box.scrollTop = box.scrollHeight;
  }
}

function connect() {
  const source = new EventSource("/api/live/stream" + (token() ? "?token=" + encodeURIComponent(token()) : ""));
  source.onmessage = ev => render(JSON.parse(ev.data));
  source.onerror = () => { document.getElementById("stamp").textContent = "(reconnecting...)"; };
}
connect();
setInterval(pollLog, 1000);
