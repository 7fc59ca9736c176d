// Runs page: every run folder; open its report, compare, tag, delete.
"use strict";

const body = document.querySelector("#runs tbody");

function counts(c) {
  if (!c) return "-";
  return Object.entries(c).map(([k, v]) => `${v} ${k}`).join(", ") || "0";
}

function runRow(r) {
  const id = encodeURIComponent(r.id);
  const statusClass = r.status.replace(/ /g, "");
  const actions = el("td", {});
  if (r.status !== "not a run" && r.status !== "running") {
    actions.append(el("a", {href: `/runs/${id}/report`, target: "_blank", class: "open"}, r.report ? "report" : "render report"), " ",
      el("button", {onclick: async () => {
        const tag = prompt(`tag for ${r.id} (letters, digits, . _ -); an existing tag is removed`);
        if (!tag) return;
        const remove = (r.tags || []).includes(tag);
        if (await api("POST", `/api/runs/${id}/tag`, {tag, remove})) load();
      }}, "tag"), " ");
  }
  if (r.status === "running") actions.append(el("a", {href: "/live"}, "live"));
  if (r.status !== "running") {
    actions.append(el("button", {class: "danger", onclick: async () => {
      if (!confirm(`delete ${r.path}?`)) return;
      if (await api("DELETE", `/api/runs/${id}`)) { flash(`deleted ${r.path}`); load(); }
    }}, "delete"));
  }
  const commit = r.commit ? `${r.commit.slice(0, 10)}${r.dirty ? " (dirty)" : ""}` : "-";
  const duration = r.status === "running" && r.started ? (Date.now() - new Date(r.started)) / 1000 : r.duration_s;
  return el("tr", {dataset: {run: r.id}},
    el("td", {}, r.results ? el("input", {type: "checkbox", value: r.id}) : null),
    el("td", {}, el("b", {}, r.id), r.problem ? el("div", {class: "muted"}, r.problem) : null),
    el("td", {}, el("span", {class: "pill " + statusClass}, r.status)),
    el("td", {}, fmtTime(r.started)), el("td", {class: "num"}, fmtDuration(duration)),
    el("td", {}, r.profile || "-"), el("td", {title: r.branch || ""}, el("code", {}, commit)),
    el("td", {}, counts(r.counts)), el("td", {}, (r.tags || []).map(t => el("span", {class: "pill"}, t))),
    actions);
}

async function load() {
  const data = await api("GET", "/api/runs");
  if (!data) return;
  const checked = new Set([...body.querySelectorAll("input:checked")].map(i => i.value));
  body.replaceChildren(...data.runs.map(runRow));
  body.querySelectorAll("input[type=checkbox]").forEach(i => (i.checked = checked.has(i.value)));
  if (!data.runs.length) body.append(el("tr", {}, el("td", {colspan: 10, class: "muted"}, "no runs yet")));
}

document.getElementById("compare").addEventListener("click", () => {
  const picked = [...body.querySelectorAll("input:checked")].map(i => i.value).reverse();  // oldest = baseline
  if (picked.length < 2) { flash("select two or more runs (the oldest is the baseline)", true); return; }
  location.href = "/compare?" + picked.map(r => "run=" + encodeURIComponent(r)).join("&");
});
load();
setInterval(load, 5000);
