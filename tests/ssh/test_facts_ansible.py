"""``collab facts`` against the real ``ansible -m setup`` on the same loopback sshd, and
ansible-cmdb rendering collab's ``--tree`` in every template the source document uses."""
from __future__ import annotations

import csv
import io
import json
import shutil
import sys

import pytest

from pytest_collab.lan import facts, facts_export
from pytest_collab.transport.ssh import connect

from .ansible_tools import AnsibleTools, ansible_tools_fixture  # noqa: F401  (the fixture)

# facts that must be equal, value for value
EXACT = ("architecture", "userspace_architecture", "userspace_bits", "system", "kernel", "kernel_version",
         "machine", "nodename", "hostname", "fqdn", "domain", "machine_id", "distribution",
         "distribution_version", "distribution_major_version", "distribution_minor_version",
         "distribution_release", "distribution_file_variety", "os_family", "lsb", "processor",
         "processor_count", "processor_cores", "processor_threads_per_core", "processor_vcpus",
         "processor_nproc", "flags", "memtotal_mb", "swaptotal_mb", "default_ipv4", "default_ipv6",
         "product_name", "product_serial", "product_uuid", "product_version", "system_vendor",
         "bios_vendor", "bios_version", "board_name", "board_vendor", "form_factor",
         "virtualization_type", "virtualization_role", "python_version", "python", "devices", "device_links",
         "dns", "user_id", "user_uid", "user_gid", "user_gecos", "user_dir", "user_shell", "real_user_id",
         "effective_user_id", "real_group_id", "effective_group_id", "cmdline", "proc_cmdline", "fips",
         "apparmor", "locally_reachable_ips", "ssh_host_key_rsa_public", "ssh_host_key_rsa_public_keytype",
         "ssh_host_key_ecdsa_public", "ssh_host_key_ed25519_public", "ssh_host_key_dsa_public")
SETS = ("interfaces", "all_ipv4_addresses", "all_ipv6_addresses", "virtualization_tech_guest",
        "virtualization_tech_host")
ETHTOOL_KEYS = {"features", "timestamping", "hw_timestamp_filters", "phc_index"}   # ethtool only
MOUNT_STABLE = ("mount", "device", "fstype", "options", "dump", "passno", "uuid", "size_total",
                "block_size", "block_total", "inode_total")


@pytest.fixture(scope="module")
def both(ssh_lab, ansible_tools: AnsibleTools, tmp_path_factory):
    """(Ansible's facts, collab's facts after, collab's facts before) of the sshd on 127.0.1.9.

    The machine is shared: an interface or a mount may come or go while Ansible runs, so
    collab gathers right before and right after it; each fact must equal one of the two."""
    root = tmp_path_factory.mktemp("ansible-setup")
    server = ssh_lab.servers[0]
    python = shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin") or sys.executable
    inventory = root / "hosts.ini"
    inventory.write_text(f"[lab]\n{server.name} ansible_host={server.host} ansible_port={server.port} "
                         f"ansible_user={ssh_lab.user} ansible_connection=ssh "
                         f"ansible_ssh_private_key_file={ssh_lab.client_key} "
                         f"ansible_python_interpreter={python}\n")
    known = ssh_lab.known_hosts(root / "known_hosts")
    device = ssh_lab.device(0, known_hosts=str(known))
    device.python = python          # as ansible_python_interpreter: the same interpreter answers

    def gather() -> dict:
        transport = connect(device)
        try:
            return facts.gather(transport)
        finally:
            transport.close()
    before = gather()
    ansible_tools.run("ansible", "-i", str(inventory), "all", "-m", "setup", "--tree", str(root / "tree"))
    theirs = json.loads((root / "tree" / server.name).read_text())
    return theirs, gather(), before


def _agree(key: str, theirs: dict, ours: dict, before: dict, shape=lambda v: v) -> None:
    want = shape(theirs.get(key))
    assert want in (shape(ours.get(key)), shape(before.get(key))), \
        f"{key}: ansible {theirs.get(key)!r}, collab {ours.get(key)!r} (before: {before.get(key)!r})"


def test_tree_file_format_is_ansibles(both, tmp_path):
    theirs, ours, before = both
    assert set(theirs) == {"ansible_facts", "changed"} and theirs["changed"] is False
    from pytest_collab.lan.profile import Device
    written = facts_export.write_tree([Device(name="dev0", kind="rpi", facts=ours)], tmp_path)
    doc = json.loads(written[0].read_text())
    assert set(doc) == set(theirs) and doc["changed"] is False
    assert set(doc["ansible_facts"]) == {*ours, "gather_subset", "module_setup"}
    # every fact Ansible has, collab has too (an interface that came or went meanwhile: in one snapshot)
    assert set(theirs["ansible_facts"]) - set(doc["ansible_facts"]) - set(before) <= NOT_GATHERED


# Facts outside this list (security modules, users, services, local facts, ...).
NOT_GATHERED = {"ansible_env", "ansible_fibre_channel_wwn", "ansible_hostnqn", "ansible_iscsi_iqn",
                "ansible_is_chroot", "ansible_local", "ansible_lvm", "ansible_pkg_mgr", "ansible_selinux",
                "ansible_selinux_python_present", "ansible_service_mgr", "ansible_system_capabilities",
                "ansible_system_capabilities_enforced", "ansible_discovered_interpreter_python"}


def test_exact_facts_match_ansible(both):
    theirs, ours, before = both
    a = theirs["ansible_facts"]
    checked = 0
    for name in EXACT:
        key = f"ansible_{name}"
        _agree(key, a, ours, before)          # absent in Ansible's -> absent in collab's too
        checked += key in a
    for name in SETS:
        _agree(f"ansible_{name}", a, ours, before, shape=sorted)
    assert checked >= 35
    assert ours["ansible_distribution_version"].count(".") >= a["ansible_distribution_major_version"].count(".")


def test_per_interface_facts_match_ansible(both):
    theirs, ours, before = both
    a = theirs["ansible_facts"]
    def no_ethtool(value):
        """Without ethtool's keys; a bridge's members in name order (Ansible: directory order)."""
        if not isinstance(value, dict):
            return value
        return {k: sorted(v) if k == "interfaces" else v for k, v in value.items() if k not in ETHTOOL_KEYS}
    for iface in a["ansible_interfaces"]:
        _agree(f"ansible_{iface.replace('-', '_')}", a, ours, before, shape=no_ethtool)


def test_volatile_facts_match_within_their_drift(both):
    theirs, ours, before = both
    a = theirs["ansible_facts"]
    total = a["ansible_memtotal_mb"]
    assert abs(ours["ansible_memfree_mb"] - a["ansible_memfree_mb"]) < total * 0.2
    for group, keys in a["ansible_memory_mb"].items():
        assert set(ours["ansible_memory_mb"][group]) == set(keys)
    assert ours["ansible_memory_mb"]["real"]["total"] == a["ansible_memory_mb"]["real"]["total"]
    assert abs(ours["ansible_uptime_seconds"] - a["ansible_uptime_seconds"]) < 300
    assert set(ours["ansible_loadavg"]) == set(a["ansible_loadavg"]) == {"1m", "5m", "15m"}
    # Ansible lists mounts in the order its threads finish: compare by mount point
    _agree("ansible_mounts", a, ours, before, shape=lambda ms: sorted(m["mount"] for m in ms or []))
    mine = {m["mount"]: m for m in ours["ansible_mounts"] + before["ansible_mounts"]}
    for mount in a["ansible_mounts"]:
        assert set(mine[mount["mount"]]) == set(mount), mount["mount"]
        assert {k: mine[mount["mount"]][k] for k in MOUNT_STABLE} == {k: mount[k] for k in MOUNT_STABLE}
        assert abs(mine[mount["mount"]]["size_available"] - mount["size_available"]) < 2 * 1024 ** 3
    dt, their_dt = ours["ansible_date_time"], a["ansible_date_time"]
    assert set(their_dt) - set(dt) <= {"tz_dst"} and set(dt) <= set(their_dt)
    assert (dt["tz"], dt["tz_offset"]) == (their_dt["tz"], their_dt["tz_offset"])
    assert abs(int(dt["epoch"]) - int(their_dt["epoch"])) < 300


TEMPLATES = ("html_fancy", "csv", "json", "markdown", "sql")
STABLE_HTML_COLUMNS = "name,fqdn,main_ip,os,kernel,arch,virt,cpu_type,vcpus,ram,prodname,prodserial"


@pytest.fixture(scope="module")
def trees(both, tmp_path_factory):
    """Ansible's tree and collab's tree of the same host, side by side."""
    from pytest_collab.lan.profile import Device
    theirs, ours, before = both
    root = tmp_path_factory.mktemp("cmdb")
    (root / "ansible").mkdir()
    (root / "ansible" / "dev0").write_text(json.dumps(theirs))
    facts_export.write_tree([Device(name="dev0", kind="rpi", facts=ours)], root / "collab")
    return root / "ansible", root / "collab"


def _cmdb(tools: AnsibleTools, template: str, tree, *options: str) -> str:
    proc = tools.run("ansible-cmdb", "-t", template, *options, str(tree))
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.stdout


def _overview(page: str) -> list[str]:
    """The cells of html_fancy's host overview table, whitespace collapsed."""
    import re
    body = page[page.index("<tbody>"):page.index("</tbody>")]
    return [" ".join(re.sub(r"<[^>]+>", " ", cell).split()) for cell in re.findall(r"<td>(.*?)</td>", body, re.S)]


@pytest.mark.parametrize("template", TEMPLATES)
def test_ansible_cmdb_renders_collab_tree(trees, ansible_tools, template, both):
    _, ours, _ = both
    out = _cmdb(ansible_tools, template, trees[1])
    name, ip = "dev0", ours["ansible_default_ipv4"]["address"]
    os_name = f"{ours['ansible_distribution']} {ours['ansible_distribution_version']}"
    if template == "csv":
        row = next(csv.DictReader(io.StringIO(out)))
        for column in ("Name", "OS", "IP", "Mem", "CPUs", "Arch"):
            assert row[column] and "Unk" not in row[column] and row[column] not in ("0", "0g"), (column, row)
        assert row["OS"] == os_name and row["IP"] == ip and row["CPUs"] == str(ours["ansible_processor_count"])
    elif template == "json":
        data = json.loads(out)
        host = data[0] if isinstance(data, list) else data["dev0"]
        assert host["ansible_facts"]["ansible_memtotal_mb"] == ours["ansible_memtotal_mb"]
    elif template == "sql":
        import sqlite3
        db = sqlite3.connect(":memory:")
        db.executescript(out)
        row = db.execute("select name, os_name, os_version, main_ip, ram, vcpus, arch_hardware, "
                         "arch_userspace from hosts").fetchone()
        assert all(v not in (None, "", 0) for v in row), row
        assert row[:4] == (name, ours["ansible_distribution"], ours["ansible_distribution_version"], ip)
    else:
        for value in (name, os_name if template == "html_fancy" else ours["ansible_distribution_version"], ip,
                      str(ours["ansible_memtotal_mb"]), ours["ansible_architecture"]):
            assert value in out, (template, value)


def test_ansible_cmdb_same_view_of_both_trees(trees, ansible_tools):
    """Stable columns read the same from Ansible's tree and from collab's."""
    theirs, ours = (_overview(_cmdb(ansible_tools, "html_fancy", t, "--columns", STABLE_HTML_COLUMNS))
                    for t in trees)
    assert theirs == ours and len(ours) == len(STABLE_HTML_COLUMNS.split(","))
    assert all(cell for cell in ours), ours
    a, c = (list(csv.reader(io.StringIO(_cmdb(ansible_tools, "csv", t, "--columns",
                                               "name,os,ip,arch,mem,cpus,virt")))) for t in trees)
    assert a == c and a[0] == ["Name", "OS", "IP", "Arch", "Mem", "CPUs", "Virt"]


def test_ansible_cmdb_columns_and_exclude_cols(trees, ansible_tools, both):
    _, ours, _ = both
    page = _cmdb(ansible_tools, "html_fancy", trees[1], "--columns", "name,os,main_ip,ram,vcpus,arch",
                 "--exclude-cols", "ram")
    cells = _overview(page)
    assert cells[0] == "dev0" and len(cells) == 5 and all(cells)
    assert ours["ansible_default_ipv4"]["address"] in cells and str(ours["ansible_processor_vcpus"]) in cells
    full = _overview(_cmdb(ansible_tools, "html_fancy", trees[1], "--exclude-cols", "dtap,comment,ext_id"))
    assert "dev0" in full and ours["ansible_date_time"]["iso8601"] in full    # the Timestamp column


def test_collab_facts_tree_cli_then_ansible_cmdb(ssh_lab, ansible_tools, tmp_path, monkeypatch, capsys):
    """`collab facts LAB --tree DIR` over the loopback lab; ansible-cmdb reads every host.
    A device that can not be reached gets Ansible's 'unreachable' file and the command fails."""
    from pytest_collab.cli import main
    monkeypatch.chdir(tmp_path)
    profile = ssh_lab.write_profile(tmp_path / "network_profiles" / "lab.yaml")
    profile.write_text(profile.read_text().replace("127.0.1.11", "127.0.1.14"))   # nobody listens there
    assert main(["facts", "lab", "--tree", "tree", "--timeout", "10", "--cmdb-columns", "collab.columns"]) == 1
    assert capsys.readouterr().out == ""                  # --tree alone prints no table
    assert sorted(p.name for p in (tmp_path / "tree").iterdir()) == ["dev0", "dev1", "dev2"]
    doc = json.loads((tmp_path / "tree" / "dev2").read_text())
    assert doc["unreachable"] is True and doc["msg"] and "ansible_facts" not in doc
    rows = list(csv.DictReader(io.StringIO(_cmdb(ansible_tools, "csv", tmp_path / "tree"))))
    assert sorted(r["Name"] for r in rows) == ["dev0", "dev1"]
    assert all(r["OS"].strip() and r["IP"] and r["Mem"] != "0g" and r["CPUs"] != "0" for r in rows)
    page = _cmdb(ansible_tools, "html_fancy", tmp_path / "tree", "-C", str(tmp_path / "collab.columns"))
    assert "<th>JetPack</th>" in page and "<th>GPUs</th>" in page


def test_ansible_cmdb_renders_captured_boards(ansible_tools, tmp_path):
    """A Raspberry Pi on Raspbian and a Jetson (captured outputs): every template renders."""
    from pytest_collab.lan.profile import Device

    from .test_facts_parse import JETSON_OUTPUT, RPI_OUTPUT
    boards = [Device(name="rpi-01", kind="rpi", facts=facts.parse_facts(RPI_OUTPUT)),
              Device(name="orin-01", kind="jetson", facts=facts.parse_facts(JETSON_OUTPUT))]
    facts_export.write_tree(boards, tmp_path)
    for template in TEMPLATES:
        assert _cmdb(ansible_tools, template, tmp_path)
    rows = {r["Name"]: r for r in csv.DictReader(io.StringIO(_cmdb(ansible_tools, "csv", tmp_path)))}
    assert (rows["rpi-01"]["OS"], rows["rpi-01"]["IP"], rows["rpi-01"]["Mem"], rows["rpi-01"]["CPUs"]) == \
        ("Debian 11", "192.168.1.21", "4g", "4")
    assert rows["rpi-01"]["Arch"] == "armv7l/Unk"      # Ansible has no userspace_architecture on Arm either
    assert (rows["orin-01"]["OS"], rows["orin-01"]["CPUs"]) == ("Ubuntu 20.04", "12")
    # collab's own facts as ansible-cmdb custom columns
    columns = tmp_path.parent / f"{tmp_path.name}.columns"
    columns.write_text(facts_export.cmdb_columns())
    cells = _overview(_cmdb(ansible_tools, "html_fancy", tmp_path, "-C", str(columns), "--columns", "name"))
    table = {row[0]: row[1:] for row in (cells[i:i + 7] for i in range(0, len(cells), 7))}
    assert table == {"orin-01": ["NVIDIA Jetson AGX Orin Developer Kit", "5.1.2", "35.4.1", "", "51.5",
                                 "integrated (Tegra)"],
                     "rpi-01": ["Raspberry Pi 4 Model B Rev 1.4", "", "", "24.0.5", "48.686", ""]}
