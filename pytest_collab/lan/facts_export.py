"""The fact inventory (a small CMDB) as html, csv, json, markdown or sql, and as the
fact tree ``ansible -m setup --tree DIR`` writes, which ansible-cmdb renders.

Rows are devices, columns short aliases (``name``, ``os``, ``ip``, ``mem``, ...) or any
fact by its Ansible name (nested ones dotted: ``ansible_default_ipv4.address``). The
html table sorts by clicking a header, with no external script, so it opens offline.
"""
from __future__ import annotations

import csv
import html
import io
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable

from pytest_collab.errors import CollabError

if TYPE_CHECKING:
    from pytest_collab.lan.profile import Device

FORMATS = ("html", "csv", "json", "markdown", "sql")


def _fact(*path: str) -> Callable[["Device"], Any]:
    def get(device: "Device") -> Any:
        value: Any = device.facts
        for part in path:
            value = value.get(part) if isinstance(value, dict) else None
        return value
    return get


def _cpu_model(values: Any) -> Any:
    """The model in Ansible's processor list (index, vendor, model, ...): its last entry that
    is not an index; Arm boards without 'model name' list indexes only (then: none)."""
    names = [v for v in values if not str(v).isdigit()] if isinstance(values, list) else []
    return names[-1] if names else None


def _joined(values: Any) -> str:
    return ",".join(str(v) for v in values) if isinstance(values, list) else ""


ALIASES: dict[str, Callable[["Device"], Any]] = {
    "name": lambda d: d.name,
    "kind": lambda d: d.kind,
    "tags": lambda d: ",".join(d.tags),
    "address": lambda d: d.address,
    "arch": lambda d: d.arch or d.facts.get("collab_arch"),
    "os": lambda d: d.facts.get("collab_os_pretty") or d.os,
    "kernel": _fact("ansible_kernel"),
    "ip": lambda d: _fact("ansible_default_ipv4", "address")(d) or d.address,
    "mac": lambda d: _fact("ansible_default_ipv4", "macaddress")(d) or d.mac,
    "cpu": lambda d: _cpu_model(d.facts.get("ansible_processor")),
    "cpus": _fact("ansible_processor_vcpus"),
    "mem": _fact("ansible_memtotal_mb"),
    "disk": _fact("collab_disk_total_gb"),
    "board": _fact("collab_board_model"),
    "jetpack": _fact("collab_jetpack"),
    "gpu": lambda d: _joined(d.facts.get("collab_gpus")),
    "docker": _fact("collab_docker_version"),
    "python": _fact("ansible_python_version"),
    "temp": _fact("collab_temperature_max_c"),
    "facts_time": lambda d: d.facts_time,
}
DEFAULT_COLUMNS = ("name", "kind", "address", "arch", "os", "kernel", "cpus", "mem", "disk",
                   "board", "gpu", "docker", "python", "temp", "facts_time")


def _flat(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for key, sub in value.items():
            _flat(f"{prefix}.{key}" if prefix else str(key), sub, out)
    else:
        out[prefix] = value


def available_columns(devices: Iterable["Device"]) -> list[str]:
    names: dict[str, None] = dict.fromkeys(ALIASES)
    for device in devices:
        flat: dict[str, Any] = {}
        _flat("", device.facts, flat)
        names.update(dict.fromkeys(flat))
    return list(names)


def choose_columns(devices: list["Device"], columns: Iterable[str] | None = None,
                   exclude: Iterable[str] = ()) -> list[str]:
    """The columns to show; an unknown name is an error listing close ones."""
    known = available_columns(devices)
    wanted = list(columns) if columns else list(DEFAULT_COLUMNS)
    for name in [*wanted, *exclude]:
        if name not in known:
            import difflib
            close = difflib.get_close_matches(name, known, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise CollabError(f"unknown fact column {name!r}{hint} (aliases: {', '.join(ALIASES)})")
    dropped = set(exclude)
    return [c for c in wanted if c not in dropped]


def rows(devices: list["Device"], columns: list[str]) -> list[dict[str, Any]]:
    out = []
    for device in devices:
        flat: dict[str, Any] = {}
        _flat("", device.facts, flat)
        out.append({c: ALIASES[c](device) if c in ALIASES else flat.get(c) for c in columns})
    return out


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def to_csv(table: list[dict[str, Any]], columns: list[str]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in table:
        writer.writerow([_cell(row[c]) for c in columns])
    return buffer.getvalue()


def to_json(table: list[dict[str, Any]], columns: list[str]) -> str:
    return json.dumps(table, indent=2, default=str) + "\n"


def to_markdown(table: list[dict[str, Any]], columns: list[str]) -> str:
    def esc(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(esc(_cell(r[c])) for c in columns) + " |" for r in table]
    return "\n".join(lines) + "\n"


def _sql_name(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sql_value(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + _cell(value).replace("'", "''") + "'"


def to_sql(table: list[dict[str, Any]], columns: list[str], name: str = "devices") -> str:
    """CREATE TABLE + INSERTs (SQLite/PostgreSQL compatible; numbers typed as REAL)."""
    def kind(col: str) -> str:
        values = [r[col] for r in table if r[col] is not None]
        numeric = values and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                 for v in values)
        return "REAL" if numeric else "TEXT"
    table_name = _sql_name(re.sub(r"\W", "_", name))
    lines = [f"CREATE TABLE {table_name} ("
             + ", ".join(f"{_sql_name(c)} {kind(c)}" for c in columns) + ");"]
    cols = ", ".join(_sql_name(c) for c in columns)
    for row in table:
        lines.append(f"INSERT INTO {table_name} ({cols}) VALUES ("
                     + ", ".join(_sql_value(row[c]) for c in columns) + ");")
    return "\n".join(lines) + "\n"


SORT_SCRIPT = """<script>
document.querySelectorAll('th').forEach((th, i) => th.addEventListener('click', () => {
  const body = th.closest('table').tBodies[0], asc = th.dataset.asc !== '1';
  th.dataset.asc = asc ? '1' : '0';
  const key = r => r.cells[i].dataset.v ?? r.cells[i].textContent;
  [...body.rows].sort((a, b) => {
    const x = key(a), y = key(b), nx = parseFloat(x), ny = parseFloat(y);
    const c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
    return asc ? c : -c; }).forEach(r => body.appendChild(r));
}));
</script>"""


def to_html(table: list[dict[str, Any]], columns: list[str], title: str = "devices") -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "\n".join("<tr>" + "".join(f"<td>{html.escape(_cell(r[c]))}</td>" for c in columns)
                     + "</tr>" for r in table)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            "<style>body{font-family:sans-serif}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:3px 6px}th{cursor:pointer;background:#eee}"
            "</style></head><body>"
            f"<h1>{html.escape(title)}</h1><table><thead><tr>{head}</tr></thead>"
            f"<tbody>\n{body}\n</tbody></table>{SORT_SCRIPT}</body></html>\n")


def export(devices: list["Device"], fmt: str, *, columns: Iterable[str] | None = None,
           exclude: Iterable[str] = (), title: str = "devices") -> str:
    """Render the fact table of ``devices`` in ``fmt`` (one of ``FORMATS``)."""
    if fmt not in FORMATS:
        raise CollabError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    cols = choose_columns(devices, columns, exclude)
    table = rows(devices, cols)
    if fmt == "html":
        return to_html(table, cols, title)
    if fmt == "sql":
        return to_sql(table, cols, title)
    return {"csv": to_csv, "json": to_json, "markdown": to_markdown}[fmt](table, cols)


def tree_document(facts: dict[str, Any]) -> dict[str, Any]:
    """One host's file as ``ansible -m setup --tree`` writes it."""
    return {"ansible_facts": {**facts, "gather_subset": ["all"], "module_setup": True}, "changed": False}


def write_tree(devices: list["Device"], directory: Path,
               errors: dict[str, str] | None = None) -> list[Path]:
    """One JSON file per device, named by the device (Ansible: the inventory host name).

    A device without facts whose gathering failed gets the file Ansible writes for an
    unreachable host, so ansible-cmdb lists it as such; one never gathered gets none.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for device in devices:
        if device.facts:
            doc = tree_document(device.facts)
        elif errors and device.name in errors:
            doc = {"changed": False, "msg": errors[device.name], "unreachable": True}
        else:
            continue
        path = directory / device.name
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(doc, sort_keys=True), encoding="utf-8")
        tmp.replace(path)
        written.append(path)
    return written


# collab's own facts as ansible-cmdb custom columns (``ansible-cmdb -C FILE``): its overview
# then shows the board, JetPack and GPUs next to Ansible's columns.
CMDB_COLUMNS = (("Board", "board", "collab_board_model"), ("JetPack", "jetpack", "collab_jetpack"),
                ("L4T", "l4t", "collab_l4t_release"), ("Docker", "docker", "collab_docker_version"),
                ("Max temp (C)", "temp", "collab_temperature_max_c"))


def cmdb_columns() -> str:
    """The custom-columns file ansible-cmdb reads (a Python literal list of column dicts)."""
    columns: list[dict[str, Any]] = [
        {"title": title, "id": f"collab_{ident}", "sType": "string", "visible": True,
         "jsonxs": f"ansible_facts.{fact}"} for title, ident, fact in CMDB_COLUMNS]
    columns.append({"title": "GPUs", "id": "collab_gpus", "sType": "string", "visible": True,
                    "tpl": "${', '.join(jsonxs(host, 'ansible_facts.collab_gpus', default=[]))}"})
    import pprint
    return pprint.pformat(columns, sort_dicts=False, width=110) + "\n"
