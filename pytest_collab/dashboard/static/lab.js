// Lab page: the profile's devices, facts, health (collab lan check) and leases.
"use strict";

const table = document.getElementById("devices");
const profile = table.dataset.profile;
let devices = [];

function healthCell(h) {
  if (!h) return el("span", {class: "pill"}, "not checked");
  if (!h.ok) return el("span", {class: "pill bad", title: h.error}, "FAIL: " + h.error);
  return el("span", {class: "pill ok", title: `checked ${fmtTime(h.checked)}`},
            `ok ${h.latency_ms} ms`, h.disk_free_gb !== null ? ` · ${h.disk_free_gb} GB free` : "");
}

function leaseCell(l) {
  if (!l || !l.busy) return el("span", {class: "pill"}, "free");
  const who = `${l.user}@${l.host} pid ${l.pid}`;
  return el("span", {}, el("span", {class: "pill busy"}, "leased"), " ", who,
            l.test ? el("div", {class: "muted"}, l.test) : null,
            l.since ? el("div", {class: "muted"}, "since " + fmtTime(l.since)) : null);
}

function showFacts(d) {
  const box = document.getElementById("facts");
  document.getElementById("facts-title").textContent =
    `${d.name}: facts ${d.facts_time ? "from " + d.facts_time : "(none gathered yet)"}${d.facts_saved ? "" : " (not saved: built-in profile)"}`;
  const body = box.querySelector("tbody");
  body.replaceChildren();
  const flat = {};
  (function walk(prefix, v) {
    if (v && typeof v === "object" && !Array.isArray(v)) for (const [k, s] of Object.entries(v)) walk(prefix ? prefix + "." + k : k, s);
    else if (Array.isArray(v)) flat[prefix] = v.some(x => x && typeof x === "object") ? JSON.stringify(v) : v.join(", ");
    else flat[prefix] = v;
  })("", {device: {name: d.name, kind: d.kind, address: d.address, transport: d.transport, runtime: d.runtime,
                   tags: d.tags, ssh: d.ssh}, ...d.facts});
  for (const [k, v] of Object.entries(flat)) body.append(el("tr", {}, el("td", {}, k), el("td", {}, v === null ? "-" : String(v))));
  box.hidden = false;
  box.scrollIntoView({behavior: "smooth"});
}

function render(view) {
  devices = view.devices;
  document.getElementById("meta").textContent =
    `${view.description || ""} · file ${view.path || "(built in)"} · controller ${view.controller.name} ${view.controller.address} · leases in ${view.lease_dir}`;
  const body = table.querySelector("tbody");
  body.replaceChildren();
  for (const d of devices) {
    const s = d.summary;
    body.append(el("tr", {dataset: {device: d.name}},
      el("td", {}, el("b", {}, d.name), d.tags.length ? el("div", {class: "muted"}, d.tags.join(", ")) : null),
      el("td", {}, d.kind), el("td", {}, d.address, el("div", {class: "muted"}, `${d.transport} · ${d.runtime}`)),
      el("td", {}, s.arch || "-"), el("td", {}, s.os || "-"), el("td", {class: "num"}, s.cpus ?? "-"),
      el("td", {class: "num"}, s.mem ?? "-"), el("td", {}, s.python || "-"), el("td", {}, s.docker || "-"),
      el("td", {class: "health"}, healthCell(d.health)), el("td", {class: "lease"}, leaseCell(d.lease)),
      el("td", {}, el("button", {onclick: () => showFacts(d)}, "facts"))));
  }
}

async function load() {
  const view = await api("GET", `/api/lan/${encodeURIComponent(profile)}`);
  if (view) render(view);
}

async function action(path, label) {
  const busy = document.getElementById("busy");
  document.querySelectorAll("button.act").forEach(b => (b.disabled = true));
  busy.textContent = label + "...";
  const t0 = Date.now();
  const done = await api("POST", path, {});
  document.querySelectorAll("button.act").forEach(b => (b.disabled = false));
  await load();
  busy.textContent = done ? `${label}: done in ${((Date.now() - t0) / 1000).toFixed(1)} s${done.note ? " (" + done.note + ")" : ""}` : "";
}

document.getElementById("check").addEventListener("click", () => action(`/api/lan/${encodeURIComponent(profile)}/check`, "checking"));
document.getElementById("refresh").addEventListener("click", () => action(`/api/lan/${encodeURIComponent(profile)}/facts`, "gathering facts"));
document.getElementById("profile").addEventListener("change", ev => (location.href = "/lab/" + encodeURIComponent(ev.target.value)));
load();
setInterval(load, 5000);  // leases change while runs go on
