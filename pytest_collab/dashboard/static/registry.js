// Registry page: repositories, tags, digests, sizes; look-up by task/arch/model; ensure with progress.
"use strict";

const rowsBody = document.querySelector("#artifacts tbody");
let query = {};

function typeCell(r) {
  if (r.error) return el("span", {class: "pill bad", title: r.error}, "unreadable");
  const label = r.kind === "artifact" ? (r.artifact_type || "artifact") : r.kind;
  return el("span", {title: r.media_type}, label, r.platforms && r.platforms.length ? el("div", {class: "muted"}, r.platforms.join(", ")) : null);
}

async function load() {
  const qs = new URLSearchParams(Object.entries(query).filter(([, v]) => v)).toString();
  const data = await api("GET", "/api/registry" + (qs ? "?" + qs : ""));
  if (!data) return;
  const status = document.getElementById("status");
  document.getElementById("url").textContent = data.url;
  status.replaceChildren(data.reachable ? el("span", {class: "pill ok"}, `reachable · ${data.repositories.length} repositories`)
                                        : el("span", {class: "pill unreachable", title: data.error}, "unreachable"));
  if (!data.reachable) flash(data.error, true);
  const advice = document.getElementById("advice");
  advice.hidden = !data.advice;
  advice.textContent = data.advice || "";
  const rows = data.matches || data.rows;
  rowsBody.replaceChildren();
  if (data.reachable && !rows.length) rowsBody.append(el("tr", {}, el("td", {colspan: 7, class: "muted"}, data.matches ? "nothing matches" : "the registry is empty")));
  for (const r of rows) {
    rowsBody.append(el("tr", {dataset: {ref: r.ref}},
      el("td", {}, el("b", {}, r.repository)), el("td", {}, r.task || "-"), el("td", {}, r.tag),
      el("td", {}, typeCell(r)), el("td", {}, el("code", {title: r.digest}, (r.digest || "").slice(0, 19))),
      el("td", {class: "num"}, fmtBytes(r.size)),
      el("td", {}, el("button", {onclick: () => { document.querySelector("#ensure [name=ref]").value = r.ref; ensure(r.ref, ""); }}, "ensure"))));
  }
}

async function follow(job) {
  const out = document.getElementById("progress");
  out.hidden = false;
  out.textContent = job.title + "\n";
  let since = 0;
  for (;;) {
    const view = await api("GET", `/api/jobs/${job.id}?since=${since}`);
    if (!view) return;
    if (view.lines.length) out.textContent += view.lines.join("\n") + "\n";
    since = view.next;
    if (view.state !== "running") {
      out.textContent += view.state === "done" ? `done: ${view.result.ref} ${view.result.how}\n` : `FAILED: ${view.error}\n`;
      out.dataset.state = view.state;
      load();
      return;
    }
    await new Promise(r => setTimeout(r, 500));
  }
}

async function ensure(ref, build) {
  const job = await api("POST", "/api/registry/ensure", {ref, build: build || null});
  if (job) follow(job);
}

document.getElementById("lookup").addEventListener("submit", ev => {
  ev.preventDefault();
  query = Object.fromEntries(new FormData(ev.target).entries());
  load();
});
document.getElementById("clear").addEventListener("click", () => { document.getElementById("lookup").reset(); query = {}; load(); });
document.getElementById("ensure").addEventListener("submit", ev => {
  ev.preventDefault();
  const f = new FormData(ev.target);
  ensure(f.get("ref"), f.get("build"));
});
load();
