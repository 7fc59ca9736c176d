"""Flower on the devices: the launchers ``pytest_collab.flower`` starts on every device.

Shipped inside the device kit (``collab_devicekit.flower``), so the same programs run on
the local lab, over SSH, on the emulated lab and in containers. Each is a module run
with ``python -m collab_devicekit.flower.<name>``:

- ``superlink``: Flower's SuperLink on a free port;
- ``supernode``: one SuperNode with any node config, idle fleet poll capped;
- ``superexec``: a warm SuperExec that forks for each ClientApp/ServerApp task and
  measures every task (``hooks``);
- ``run_app``: ``flwr run`` of an app folder or archive, then the run's real status.

Stdlib only at import time; flwr is imported inside the programs that run it.
"""
from __future__ import annotations

#: The Flower versions these launchers are written for: they replace Flower's executor
#: and cap sleeps inside Flower modules, so another minor version is refused, not guessed.
SUPPORTED = ((1, 41), (1, 42))
SUPPORTED_TEXT = "flwr>=1.41,<1.42"
