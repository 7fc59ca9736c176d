"""`collab lan|facts|run|sync|shell` against the real sshd servers (only loopback)."""
from __future__ import annotations

import argparse
import json

import pytest
import yaml

from pytest_collab.cli import facts as cli_facts
from pytest_collab.cli import lan as cli_lan
from pytest_collab.cli import remote as cli_remote


def collab(*argv: str) -> int:
    """Only this issue's sub-commands, so other groups' work in progress can't interfere."""
    parser = argparse.ArgumentParser(prog="collab")
    sub = parser.add_subparsers()
    for module in (cli_lan, cli_facts, cli_remote):
        module.register(sub)
    args = parser.parse_args(list(argv))
    return args.func(args)


@pytest.fixture
def lab_dir(ssh_lab, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ssh_lab.write_profile(tmp_path / "network_profiles" / "lab.yaml")
    return tmp_path


def _doc(lab_dir):
    return yaml.safe_load((lab_dir / "network_profiles" / "lab.yaml").read_text())


def test_run_on_kind_and_all(lab_dir, capsys):
    assert collab("run", "lab", "rpi", "echo hi from $(hostname)") == 0
    out = capsys.readouterr().out
    assert "== dev1 [ok]" in out and "hi from" in out and "dev0" not in out
    assert collab("run", "lab", "all", "test -e /nonexistent") == 1
    out = capsys.readouterr().out
    assert out.count("[exit 1]") == 3


def test_facts_stored_and_exported(lab_dir, capsys, tmp_path):
    assert collab("facts", "lab", "--export", "json", "--columns", "name,mem,cpus,arch",
                  "--exclude", "arch") == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == ["dev0", "dev1", "dev2"]
    assert all(isinstance(r["mem"], int) and r["mem"] > 0 and "arch" not in r for r in rows)
    stored = _doc(lab_dir)["devices"][0]
    assert stored["facts"]["ansible_memtotal_mb"] == rows[0]["mem"] and stored["facts_time"]
    assert collab("facts", "lab", "--no-gather", "--export", "html",
                  "-o", str(tmp_path / "f.html")) == 0
    assert "<td>dev2</td>" in (tmp_path / "f.html").read_text()


def test_sync_and_check_and_show(lab_dir, capsys, tmp_path):
    code = tmp_path / "my_code"
    code.mkdir()
    (code / "main.py").write_text("print('x')\n")
    dest = tmp_path / "remote_code"
    assert collab("sync", "lab", str(code), "dev2", "--dest", str(dest)) == 0
    assert (dest / "main.py").read_text() == "print('x')\n"
    assert collab("lan", "check", "lab") == 0
    out = capsys.readouterr().out
    assert out.count(" ok ") == 3
    assert collab("lan", "show", "lab", "--columns", "name,kind") == 0
    assert "| dev0 | server |" in capsys.readouterr().out


def test_init_add_import_export(lab_dir, tmp_path, capsys):
    assert collab("lan", "init", "fresh") == 0
    assert (lab_dir / "network_profiles" / ".gitignore").exists()
    assert collab("lan", "add", "fresh", "jetson-01", "10.0.0.21", "--kind", "jetson",
                  "--user", "nvidia") == 0
    inv = tmp_path / "hosts.ini"
    inv.write_text("[rpi]\nrpi-01 ansible_host=10.0.0.31 ansible_password=x\n")
    assert collab("lan", "import", "fresh", str(inv)) == 0
    assert "ansible_password" in capsys.readouterr().err
    doc = yaml.safe_load((lab_dir / "network_profiles" / "fresh.yaml").read_text())
    assert [d["name"] for d in doc["devices"]][1:] == ["jetson-01", "rpi-01"]
    assert "password" not in json.dumps(doc)
    assert collab("lan", "export", "fresh") == 0
    assert "rpi-01 ansible_host=10.0.0.31" in capsys.readouterr().out


def test_discover_owned_loopback_range(ssh_lab, lab_dir, capsys):
    assert collab("lan", "init", "found") == 0
    assert collab("lan", "discover", "found", ssh_lab.cidr, "--port", str(ssh_lab.port),
                  "--user", ssh_lab.user, "--key", str(ssh_lab.client_key), "--trust",
                  "--all", "--no-mdns") == 0
    doc = yaml.safe_load((lab_dir / "network_profiles" / "found.yaml").read_text())
    found = [d for d in doc["devices"] if d.get("transport") == "ssh"]
    assert {d["address"] for d in found} == {s.host for s in ssh_lab.servers}
    assert all(d["facts"]["ansible_memtotal_mb"] > 0 for d in found)
    assert all(d["ssh"].get("host_key_policy", "reject") == "reject" for d in found)
    known = (lab_dir / "network_profiles" / "found.known_hosts").read_text().splitlines()
    assert sorted(known) == sorted(s.known_hosts_line for s in ssh_lab.servers)


def test_shell_argv_uses_profile_trust(ssh_lab, lab_dir):
    from pytest_collab.cli.lan import load_lan
    lan = load_lan("lab")
    argv = cli_remote.shell_argv(lan.device("dev0"), lan.path)
    assert argv[:3] == ["ssh", "-p", str(ssh_lab.port)]
    assert "StrictHostKeyChecking=yes" in argv and argv[-1] == f"{ssh_lab.user}@127.0.1.9"
