"""The real Ansible tools (ansible-core, ansible-cmdb from the ``test`` extra) for the
compatibility tests: found next to this interpreter or on PATH; missing -> skip
locally, fail under CI (tests/services.py)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from services import missing


@dataclass
class AnsibleTools:
    bindir: Path

    @property
    def env(self) -> dict[str, str]:
        # ansible-cmdb's launcher looks for `python` on PATH: the venv's comes first.
        return {**os.environ, "PATH": f"{self.bindir}{os.pathsep}{os.environ.get('PATH', '')}",
                "ANSIBLE_HOST_KEY_CHECKING": "False", "ANSIBLE_LOCALHOST_WARNING": "False",
                "ANSIBLE_DEPRECATION_WARNINGS": "False", "ANSIBLE_NOCOLOR": "1",
                # no lingering ControlPersist masters, nothing added to ~/.ssh/known_hosts
                "ANSIBLE_SSH_ARGS": "-o ControlMaster=no -o UserKnownHostsFile=/dev/null",
                "ANSIBLE_LOCAL_TEMP": str(Path(os.environ.get("TMPDIR", "/tmp")) / "collab-ansible-tmp")}

    def run(self, tool: str, *args: str, check: bool = True, timeout: float = 180) -> subprocess.CompletedProcess:
        proc = subprocess.run([str(self.bindir / tool), *args], capture_output=True, text=True,
                              env=self.env, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"{tool} {' '.join(args)} failed ({proc.returncode}):\n"
                                 f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        return proc

    def inventory_list(self, path: Path) -> dict[str, Any]:
        return json.loads(self.run("ansible-inventory", "-i", str(path), "--list").stdout)


@pytest.fixture(name="ansible_tools", scope="session")
def ansible_tools_fixture() -> AnsibleTools:
    bindir = Path(sys.executable).parent
    for tool in ("ansible", "ansible-inventory", "ansible-cmdb"):
        if not (bindir / tool).exists():
            found = shutil.which(tool)
            if found is None:
                missing(f"{tool} not installed (pip install -e '.[test]' brings ansible-core and ansible-cmdb)")
            else:
                bindir = Path(found).parent
    return AnsibleTools(bindir)
