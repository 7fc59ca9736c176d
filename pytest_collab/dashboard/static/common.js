// Shared by every page: the token, the API helper, DOM and number formatting.
"use strict";

(function keepToken() {
  const url = new URL(location.href);
  const given = url.searchParams.get("token");
  if (given) {
    sessionStorage.setItem("collabToken", given);
    url.searchParams.delete("token");
    history.replaceState(null, "", url.pathname + url.search + url.hash);
  }
})();

function token() { return sessionStorage.getItem("collabToken") || ""; }

function flash(text, bad) {
  const box = document.getElementById("flash");
  if (!box) return;
  box.textContent = text || "";
  box.hidden = !text;
  box.className = bad ? "flash bad" : "flash";
}

// fetch JSON; errors (the API always explains them) go to the flash box and give null
async function api(method, path, body) {
  const headers = {"Accept": "application/json"};
  if (token()) headers["Authorization"] = "Bearer " + token();
  const init = {method, headers};
  if (body !== undefined) { headers["Content-Type"] = "application/json"; init.body = JSON.stringify(body); }
  let resp;
  try { resp = await fetch(path, init); } catch (err) { flash(`${method} ${path}: ${err}`, true); return null; }
  let data = null;
  try { data = await resp.json(); } catch (err) { data = {error: `HTTP ${resp.status}`}; }
  if (!resp.ok) {
    const hint = resp.status === 401 || resp.status === 403 ? " (open the URL `collab dashboard` printed, with its ?token=)" : "";
    flash(`${data.error || "HTTP " + resp.status}${hint}`, true);
    return null;
  }
  return data;
}

// el("td", {class: "x"}, "text", child) - text is always text, never HTML
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(node.dataset, v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function fmtBytes(n) {
  if (n === null || n === undefined || isNaN(n)) return "-";
  const units = ["B", "kB", "MB", "GB", "TB"];
  let i = 0; n = Number(n);
  while (Math.abs(n) >= 1000 && i < units.length - 1) { n /= 1000; i++; }
  return `${n.toFixed(i && n < 100 ? 1 : 0)} ${units[i]}`;
}

function fmtDuration(s) {
  if (s === null || s === undefined || isNaN(s)) return "-";
  s = Number(s);
  if (s < 60) return `${s.toFixed(1)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}

function fmtTime(t) {
  if (!t) return "-";
  const d = typeof t === "number" ? new Date(t * 1000) : new Date(t);
  return isNaN(d) ? String(t) : d.toLocaleString();
}

document.addEventListener("DOMContentLoaded", () => {
  const auth = document.getElementById("auth");
  if (auth) auth.textContent = token() ? "actions enabled" : "read-only: open the printed URL with ?token= to act";
  if (auth && !token()) auth.classList.add("ro");
});
