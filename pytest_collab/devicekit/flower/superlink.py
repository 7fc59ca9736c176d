"""Device program: Flower SuperLink (Fleet, Control and Runtime API on one port).

With ``--isolation process`` (the default here) the ServerApp runs in a warm
``superexec --apps serverapp`` started next to it, not in a fresh ``flwr-serverapp``
interpreter per run; ``--isolation subprocess`` restores Flower's default.

Prints ``READY superlink port=<port>`` once the port accepts connections.
"""

from __future__ import annotations

import argparse
import sys

from ._launch import check_flower, flower_bin, flower_env, free_port, supervise


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--host", default="127.0.0.1", help="address to bind (the device's LAN "
                    "address on a real lab); default 127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0 = pick a free port; default 0")
    ap.add_argument("--isolation", choices=("process", "subprocess"), default="process",
                    help="process: the ServerApp runs in superexec --apps serverapp (start "
                         "it next); subprocess: Flower starts flwr-serverapp; default process")
    ap.add_argument("--flwr-home", default=None, help="Flower state folder; default a temp dir")
    a = ap.parse_args()
    check_flower()
    port = a.port or free_port(a.host)
    argv = [flower_bin("flower-superlink"), "--insecure", "--host", a.host, "--port", str(port),
            # No `uv sync` at run time: the lab has no internet and deps are preinstalled.
            "--disable-runtime-dependency-installation", "--isolation", a.isolation]
    return supervise(argv, flower_env(a.flwr_home), a.host, port, f"READY superlink port={port}")


if __name__ == "__main__":
    sys.exit(main())
