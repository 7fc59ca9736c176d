"""Device program: Flower SuperNode holding one data partition.

Prints ``READY supernode name=<name> port=<port>`` once its ClientApp API port is open.
"""

from __future__ import annotations

import argparse
import sys

from _launch import flower_bin, flower_env, free_port, supervise


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--superlink", required=True, help="SuperLink host:port")
    ap.add_argument("--partition-id", type=int, required=True)
    ap.add_argument("--num-partitions", type=int, required=True)
    ap.add_argument("--name", required=True, help="device name reported in results")
    ap.add_argument("--port", type=int, default=0,
                    help="local ClientApp API port; 0 = pick a free one; default 0")
    ap.add_argument("--flwr-home", default=None, help="Flower state folder; default a temp dir")
    a = ap.parse_args()
    port = a.port or free_port("127.0.0.1")
    node_config = (f'partition-id={a.partition_id} num-partitions={a.num_partitions} '
                   f'name="{a.name}"')
    argv = [flower_bin("flower-supernode"), "--insecure", "--superlink", a.superlink,
            "--host", "127.0.0.1", "--port", str(port), "--node-config", node_config]
    return supervise(argv, flower_env(a.flwr_home), "127.0.0.1", port,
                     f"READY supernode name={a.name} port={port}")


if __name__ == "__main__":
    sys.exit(main())
