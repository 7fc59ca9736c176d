"""Device program: one Flower SuperNode with its node config.

Started with ``--isolation process`` (the default here): the SuperNode serves its Runtime
API on ``port`` and a warm ``superexec`` next to it runs the ClientApp tasks, instead of
the SuperNode starting a fresh ``flwr-clientapp`` interpreter for every message.
``--isolation subprocess`` restores Flower's default.

``--node-config`` is passed to Flower as is (``'partition-id=0 num-partitions=2
name="rpi-1"'``): any keys the app reads from ``context.node_config``.

``--fleet-poll``: Flower 1.41's SuperNode sleeps a hard-coded 3 s whenever a pull from the
SuperLink finds no message, so each phase of a round waits up to 3 s for nothing. The
SuperNode here is Flower's own ``flower-supernode`` entry point run in a child
interpreter whose module-level sleeps are capped at ``--fleet-poll`` seconds;
``--fleet-poll 3`` is stock Flower.

``--heartbeat``: the interval the SuperNode announces to the SuperLink (Flower: 30 s);
the SuperLink counts a node offline after two missed intervals, so a lost device stops
blocking the ServerApp after ~2x this instead of ~60 s.

Prints ``READY supernode name=<name> port=<port>`` once its Runtime API port is open.
"""

from __future__ import annotations

import argparse
import sys
import time
import types

from ._launch import check_flower, flower_bin, flower_env, free_port, supervise

FLOWER_ENTRY = "--run-flower-supernode"


def run_flower_supernode(poll: float, heartbeat: float, flower_args: list[str]) -> None:
    """Flower's ``flower-supernode`` with its poll sleeps capped at ``poll`` seconds and
    its heartbeat interval set to ``heartbeat`` seconds."""
    import flwr.supercore.heartbeat as beat
    import flwr.supernode.fleet_http_connection as fleet
    import flwr.supernode.start_client_internal as sci

    # announced to the SuperLink, and the sender's own period (both read the constant)
    fleet.HEARTBEAT_DEFAULT_INTERVAL = heartbeat  # type: ignore[assignment]
    beat.HEARTBEAT_DEFAULT_INTERVAL = heartbeat  # type: ignore[assignment]
    from flwr.supernode.cli.flower_supernode import flower_supernode

    capped = types.SimpleNamespace(**{k: getattr(time, k) for k in dir(time) if not k.startswith("__")})
    capped.sleep = lambda s: time.sleep(min(s, poll))
    sci.time = capped  # type: ignore[assignment]  # only this module's waits change
    sys.argv = ["flower-supernode", *flower_args]
    flower_supernode()


def main() -> int:
    if len(sys.argv) > 3 and sys.argv[1] == FLOWER_ENTRY:
        run_flower_supernode(float(sys.argv[2]), float(sys.argv[3]), sys.argv[4:])
        return 0
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--superlink", required=True, help="SuperLink host:port")
    ap.add_argument("--node-config", default="",
                    help="Flower node config, 'key=value key2=\"text\"'; default empty")
    ap.add_argument("--name", required=True, help="device name reported in results")
    ap.add_argument("--port", type=int, default=0,
                    help="local Runtime API port; 0 = pick a free one; default 0")
    ap.add_argument("--isolation", choices=("process", "subprocess"), default="process",
                    help="process: ClientApps run in superexec (start it next); subprocess: "
                         "the SuperNode starts one per message (slow); default process")
    ap.add_argument("--fleet-poll", type=float, default=0.25,
                    help="seconds between pulls from the SuperLink when idle (Flower: 3); "
                         "default 0.25")
    ap.add_argument("--heartbeat", type=float, default=10.0,
                    help="heartbeat interval announced to the SuperLink (Flower: 30); default 10")
    ap.add_argument("--flwr-home", default=None, help="Flower state folder; default a temp dir")
    a = ap.parse_args()
    check_flower()
    port = a.port or free_port("127.0.0.1")
    flower_args = ["--insecure", "--superlink", a.superlink, "--host", "127.0.0.1",
                   "--port", str(port), "--isolation", a.isolation]
    if a.node_config:
        flower_args += ["--node-config", a.node_config]
    stock = a.fleet_poll >= 3 and a.heartbeat == 30
    argv = ([flower_bin("flower-supernode")] if stock else
            [sys.executable, "-m", __spec__.name if __spec__ else __name__, FLOWER_ENTRY,
             str(a.fleet_poll), str(a.heartbeat)]) + flower_args
    return supervise(argv, flower_env(a.flwr_home), "127.0.0.1", port,
                     f"READY supernode name={a.name} port={port}")


if __name__ == "__main__":
    sys.exit(main())
